package cluster

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
)

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
