//go:build unix && !linux

package proc

import "syscall"

// sysProcAttr puts a child in a process group of its own, so that Stop can
// signal it together with anything it started.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
