// Package proc runs and inspects the processes Tollgate's tests, demo and
// benchmark start beside themselves — the control plane, tollgate serve, a
// registry, Prometheus: each in a process group of its own that stops as a
// whole, on a free loopback port, with its output safe to read while it
// runs.
package proc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Process is a child started in a process group of its own, so that
// stopping it also stops anything it started. Where the platform allows,
// the kernel also kills it should this process die first (see
// sysProcAttr).
type Process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and been reaped
	err  error         // what Wait returned; read only after done is closed

	stopOnce sync.Once
	stopErr  error
}

// Start starts path with args, its stdout and stderr going to out. A nil
// env inherits this process's environment.
func Start(path string, args, env []string, out io.Writer) (*Process, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	// Wait also waits for the output to be copied; a grandchild that
	// outlived the group kill must not hold it up.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process's id, which is also its process group's.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitErr describes how the process ended. Call it after Done is closed.
func (p *Process) ExitErr() error {
	if p.err == nil {
		return errors.New("exit status 0")
	}
	return p.err
}

// Stop sends SIGTERM to the process group, SIGKILL after grace if the
// process is still running (at once when grace is 0), and waits until it
// has exited. A SIGKILL to the group follows in every case, for members
// that outlived the leader. Only the first call acts; later ones return
// its result.
func (p *Process) Stop(grace time.Duration) error {
	p.stopOnce.Do(func() { p.stopErr = p.stop(grace) })
	return p.stopErr
}

func (p *Process) stop(grace time.Duration) error {
	pgid := p.Pid()
	select {
	case <-p.done:
	default:
		sig := syscall.SIGTERM
		if grace <= 0 {
			sig = syscall.SIGKILL
		}
		if err := signalGroup(pgid, sig); err != nil {
			return err
		}
		timer := time.NewTimer(max(grace, 0))
		defer timer.Stop()
		select {
		case <-p.done:
		case <-timer.C:
			if err := signalGroup(pgid, syscall.SIGKILL); err != nil {
				return err
			}
			<-p.done
		}
	}
	return signalGroup(pgid, syscall.SIGKILL)
}

// signalGroup sends sig to every process in the group pgid; a group that
// no longer exists is not an error.
func signalGroup(pgid int, sig syscall.Signal) error {
	if err := syscall.Kill(-pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("sending %v to process group %d: %w", sig, pgid, err)
	}
	return nil
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}

// Buffer is a bytes.Buffer that a process may write while a test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Eventually retries f until it returns nil, failing the test with f's
// last error when timeout passes: for what a server does a moment after
// it is asked (a watch, a queue, a counter written after the response).
func Eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("after %s: %v", timeout, err)
}
