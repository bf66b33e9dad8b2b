package proc

import (
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStopKillsTheGroup(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	// The shell and its child ignore SIGTERM, so only the SIGKILL to the
	// whole group can end both.
	var out Buffer
	p, err := Start("/bin/sh", []string{"-c", `trap "" TERM; sleep 300 & echo "child $!"; wait`}, nil, &out)
	if err != nil {
		t.Fatal(err)
	}
	var child int
	for deadline := time.Now().Add(10 * time.Second); child == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the shell never printed its child's PID; output: %q", out.String())
		}
		if s, ok := strings.CutPrefix(out.String(), "child "); ok {
			child, _ = strconv.Atoi(strings.TrimSpace(s))
		}
	}
	if procs, err := Processes(); err != nil || procs[child].PPID != p.Pid() {
		t.Fatalf("the sleep (%d) is not the shell's child: %+v, %v", child, procs[child], err)
	}

	start := time.Now()
	if err := p.Stop(300 * time.Millisecond); err != nil {
		t.Fatalf("Stop() = %v", err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("Stop() took %s; the shell ignores SIGTERM, so it should have waited for the grace period", took)
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("Stop() returned before the process was reaped")
	}
	if err := p.ExitErr(); !strings.Contains(err.Error(), "killed") {
		t.Errorf("ExitErr() = %v, want killed", err)
	}
	if err := p.Stop(time.Hour); err != nil {
		t.Errorf("a second Stop() = %v", err)
	}
	waitGone(t, []int{p.Pid(), child})
}

// TestStopWithoutGraceKills: grace 0 is a SIGKILL at once, even to a
// process that ignores SIGTERM.
func TestStopWithoutGraceKills(t *testing.T) {
	var out Buffer
	p, err := Start("/bin/sh", []string{"-c", `trap "" TERM; echo up; sleep 300`}, nil, &out)
	if err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(out.String(), "up") {
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	if err := p.Stop(0); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Stop(0) took %s", took)
	}
	waitGone(t, []int{p.Pid()})
}

func TestStartFailsForAMissingBinary(t *testing.T) {
	if _, err := Start("/nonexistent/tollgate", nil, nil, &Buffer{}); err == nil || !strings.Contains(err.Error(), "/nonexistent/tollgate") {
		t.Errorf("Start of a missing binary: %v", err)
	}
}

func TestFreePort(t *testing.T) {
	port, err := FreePort()
	if err != nil || port <= 0 || port > 65535 {
		t.Errorf("FreePort() = %d, %v", port, err)
	}
}

// waitGone fails the test unless every process in pids has exited within
// five seconds.
func waitGone(t *testing.T, pids []int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for syscall.Kill(pid, 0) == nil {
			if time.Now().After(deadline) {
				t.Errorf("process %d still exists", pid)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
