package proc

import "syscall"

// sysProcAttr puts a child in a process group of its own and has the kernel
// kill it if this process dies without stopping it, so an interrupted test
// run leaves nothing behind. (Pdeathsig fires when the thread that started
// the child exits; the Go runtime only ends threads whose goroutine locked
// them, which nothing here does.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
