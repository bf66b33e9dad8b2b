package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is a child started in a process group of its own, so that
// stopping it also stops anything it started.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and been reaped
	err  error         // what Wait returned; read only after done is closed
}

// startProcess starts path with args and env, its stdout and stderr going
// to out. The child also gets SIGKILL if this process dies first, where the
// platform allows (see sysProcAttr).
func startProcess(path string, args, env []string, out io.Writer) (*process, error) {
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
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exitErr describes how the process ended. Call it after done is closed.
func (p *process) exitErr() error {
	if p.err == nil {
		return errors.New("exit status 0")
	}
	return p.err
}

// stop sends SIGTERM to the process group, SIGKILL after grace if the
// process is still running, and waits until it has exited. A SIGKILL to the
// group follows in every case, for members that outlived the leader.
func (p *process) stop(grace time.Duration) error {
	pgid := p.cmd.Process.Pid
	select {
	case <-p.done:
	default:
		if err := signalGroup(pgid, syscall.SIGTERM); err != nil {
			return err
		}
		timer := time.NewTimer(grace)
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

// syncWriter serialises writes from the processes of one cluster to the
// caller's Log.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) writeLine(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = io.WriteString(s.w, line)
}

const (
	// tailLines is how many of a process's last lines error messages
	// quote.
	tailLines = 25
	// maxLine caps a line kept for the tail, and the bytes buffered while
	// waiting for a newline.
	maxLine = 4096
)

// output receives one process's stdout and stderr. It copies complete
// lines, prefixed with the process name, to the shared log and keeps the
// last tailLines of them for error messages. Writes never fail.
type output struct {
	name string
	log  *syncWriter

	mu      sync.Mutex
	partial []byte   // the unfinished last line
	tail    []string // the last complete lines, oldest first
}

func newOutput(name string, log *syncWriter) *output {
	return &output{name: name, log: log}
}

// Write implements io.Writer.
func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.partial = append(o.partial, p...)
	buf := o.partial
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		o.emit(string(buf[:i]))
		buf = buf[i+1:]
	}
	if len(buf) > maxLine {
		o.emit(string(buf))
		buf = nil
	}
	// A fresh copy, so the consumed lines are not kept alive behind it.
	o.partial = append([]byte(nil), buf...)
	return len(p), nil
}

// emit passes on one line; o.mu is held.
func (o *output) emit(line string) {
	o.log.writeLine(o.name + ": " + line + "\n")
	if len(line) > maxLine {
		line = line[:maxLine] + "..."
	}
	if len(o.tail) == tailLines {
		copy(o.tail, o.tail[1:])
		o.tail = o.tail[:tailLines-1]
	}
	o.tail = append(o.tail, line)
}

// lastLines returns the last lines written, the unfinished one included.
func (o *output) lastLines() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	lines := o.tail
	if len(o.partial) > 0 {
		lines = append(lines[:len(lines):len(lines)], string(o.partial))
	}
	return strings.Join(lines, "\n")
}

// annotate appends the process's last lines of output to err.
func (o *output) annotate(err error) error {
	tail := o.lastLines()
	if tail == "" {
		return err
	}
	return fmt.Errorf("%w\nlast output of %s:\n\t%s", err, o.name, strings.ReplaceAll(tail, "\n", "\n\t"))
}
