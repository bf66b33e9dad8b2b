package proc

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Proc is one running process as /proc shows it.
type Proc struct {
	PID, PPID int
	// Name is the base name of the executable the process was started
	// with (argv[0]), or its command name when argv is unreadable.
	Name string
}

// Processes lists the machine's processes from /proc, for tests that must
// prove a process tree was started or stopped. Processes that exit while
// it reads are left out.
func Processes() (map[int]Proc, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	procs := map[int]Proc{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		open, closing := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
		if open < 0 || closing < open {
			continue
		}
		fields := bytes.Fields(stat[closing+1:])
		if len(fields) < 2 {
			continue
		}
		ppid, err := strconv.Atoi(string(fields[1]))
		if err != nil {
			continue
		}
		p := Proc{PID: pid, PPID: ppid, Name: string(stat[open+1 : closing])}
		if cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil {
			if argv0, _, _ := bytes.Cut(cmdline, []byte{0}); len(argv0) > 0 {
				p.Name = filepath.Base(string(argv0))
			}
		}
		procs[pid] = p
	}
	return procs, nil
}

// Descendants returns the processes below pid in procs: its children,
// theirs, and so on.
func Descendants(procs map[int]Proc, pid int) map[int]Proc {
	out := map[int]Proc{}
	for p, proc := range procs {
		for q := proc.PPID; q > 1; q = procs[q].PPID {
			if q == pid {
				out[p] = proc
				break
			}
			if _, known := procs[q]; !known {
				break
			}
		}
	}
	return out
}
