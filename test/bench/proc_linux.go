package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// memory is a process's resident set: now and its peak (the high-water
// mark) since it started or since resetPeak, and its anonymous part now:
// the memory only the process holds, without the pages of its executable
// (a large binary maps much of its text, which the kernel can drop and
// read again).
type memory struct {
	RSS, HWM, Anon int64 // bytes
}

// readMemory reads VmRSS, VmHWM and RssAnon from /proc/<pid>/status.
func readMemory(pid int) (memory, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, fmt.Errorf("reading the memory of process %d: %w", pid, err)
	}
	var m memory
	for line := range strings.Lines(string(data)) {
		key, value, ok := strings.Cut(line, ":")
		if !ok || (key != "VmRSS" && key != "VmHWM" && key != "RssAnon") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return memory{}, fmt.Errorf("process %d status %s: %w", pid, key, err)
		}
		switch key {
		case "VmRSS":
			m.RSS = kb << 10
		case "VmHWM":
			m.HWM = kb << 10
		default:
			m.Anon = kb << 10
		}
	}
	return m, nil
}

// resetPeak makes the process's VmHWM its current VmRSS (Linux 4.0 and
// later; the process must be ours).
func resetPeak(pid int) error {
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		return fmt.Errorf("resetting the peak RSS of process %d: %w", pid, err)
	}
	return nil
}

// cpuTime returns the CPU time process pid has used, user and system, all
// threads, from /proc/<pid>/stat (clock ticks, taken as the USER_HZ of 100
// every Linux port uses). /proc/<pid>/schedstat would be finer but covers
// the main thread only.
func cpuTime(pid int) (time.Duration, error) {
	fields, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	// Fields after the command: state is field 3 of proc(5), utime 14 and
	// stime 15.
	if len(fields) < 13 {
		return 0, fmt.Errorf("process %d stat: %d fields", pid, len(fields))
	}
	var ticks int64
	for _, f := range fields[11:13] {
		t, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("process %d stat: %w", pid, err)
		}
		ticks += t
	}
	return time.Duration(ticks) * (time.Second / 100), nil
}

// hostBusy returns the CPU time every CPU of the machine has spent busy
// (not idle, not waiting for I/O) since boot, from /proc/stat.
func hostBusy() (time.Duration, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("reading /proc/stat: %w", err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line)
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	// user nice system idle iowait irq softirq steal; guest time is
	// already in user.
	var ticks int64
	for i, f := range fields[1:9] {
		if i == 3 || i == 4 {
			continue
		}
		t, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		ticks += t
	}
	return time.Duration(ticks) * (time.Second / 100), nil
}

// statFields returns the fields of /proc/<pid>/stat that follow the
// command name (which may itself hold spaces and parentheses).
func statFields(pid int) ([]string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, fmt.Errorf("reading process %d stat: %w", pid, err)
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return nil, fmt.Errorf("process %d stat: no command name", pid)
	}
	return strings.Fields(string(data[i+1:])), nil
}
