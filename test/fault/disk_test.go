package fault

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDecisionLogDiskFull: the only replica serving writes its decision
// log to a 256 KiB tmpfs that is filled while pods are created, then
// freed. Admission goes on by the documented rule (a decision log write
// that fails does not fail the request); every decision is either in the
// file or counted where an operator sees it: an error line with the
// request's uid in the server log, and the decision-log error metric where
// the server exports one.
func TestDecisionLogDiskFull(t *testing.T) {
	ctx := context.Background()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root (CI runs as root)")
	}
	mnt := filepath.Join(env.dir, "full")
	if err := os.MkdirAll(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=256k"); err != nil {
		t.Skipf("mounting a 256 KiB tmpfs at %s: %v (needs root and CAP_SYS_ADMIN)", mnt, err)
	}
	defer func() {
		if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", mnt, err)
		}
	}()
	logPath := filepath.Join(mnt, "decisions.log")

	// One replica writes there, and is the only one haproxy sends to.
	if err := ensureReplicas(ctx, 2); err != nil {
		t.Fatal(err)
	}
	others := running()
	r, err := startReplica("--decision-log", logPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.waitReady(ctx, 90*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, o := range others {
		if err := o.proc.Stop(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		o.kill() // frees the slot; the process is gone already
	}
	defer func() {
		if err := ensureReplicas(ctx, 2); err != nil {
			t.Error(err)
		}
	}()
	if err := waitEnforcing(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}

	// Fill the disk, leaving nothing for the log.
	filler := filepath.Join(mnt, "filler")
	fillDisk(t, filler)
	stop := make(chan struct{})
	l, wait := runLoad(ctx, "load", "diskfull", 3, stop)
	time.Sleep(6 * time.Second)
	freedAt := time.Now()
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * time.Second)
	close(stop)
	wait()
	s := l.summarize()
	s.report(t, "decision log disk full", freedAt)
	l.checkAdmitted(ctx, t, s)
	if s.failed > 0 {
		t.Errorf("%d creates failed while the decision log's disk was full: admission must go on", s.failed)
	}

	// Every decision is in the file or counted as lost.
	_, metrics := r.get(ctx, "/metrics")
	expected := loggedDecisions(metrics)
	lost := logLines(r.log.String(), regexp.MustCompile(`^decision log write failed$`))
	entries, torn := readDecisionLog(t, logPath)
	t.Logf("decisions to log %d: %d in the file, %d write failures logged with their uid, %d torn lines", expected, entries, len(lost), torn)
	if len(lost) == 0 {
		t.Errorf("no write failed: the disk was never full")
	}
	// A write the full disk cut short leaves the start of its entry (its
	// failure is logged), and the next entry written is glued to it: a
	// torn line holds one whole entry that no reader can parse.
	if got := entries + len(lost) + torn; got < expected {
		t.Errorf("%d decisions to log, %d accounted for (%d in the file, %d failures logged, %d torn lines): entries vanished",
			expected, got, entries, len(lost), torn)
	}
	if torn > 0 {
		t.Logf("%d torn lines: each the start of an entry cut by the full disk and a whole entry glued after it, which a reader cannot parse", torn)
	}
	if strings.Contains(metrics, "tollgate_decision_log_errors_total") {
		if n := int(sumMetric(metrics, "tollgate_decision_log_errors_total")); n != len(lost) {
			t.Errorf("tollgate_decision_log_errors_total = %d, %d failures logged", n, len(lost))
		}
	} else {
		t.Logf("this server exports no decision-log error metric: the lost entries show in its log only")
	}
	// Writes resumed once space was freed.
	after := 0
	for _, ts := range entryTimes(t, logPath) {
		if ts.After(freedAt) {
			after++
		}
	}
	if after == 0 {
		t.Errorf("no decision was logged after the disk was freed")
	}
}

// fillDisk writes path until the filesystem is full.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	// Bytes that fit in a partly filled page.
	for {
		if _, err := f.Write(chunk[:1]); err != nil {
			return
		}
	}
}

// loggedDecisions counts the requests a replica's metrics say produced a
// decision-log entry: mutations that patched, validations that denied or
// warned, dry runs excluded.
func loggedDecisions(metrics string) int {
	n := 0.0
	for _, d := range []string{`decision="patched"`, `decision="denied"`, `decision="warned"`} {
		for line := range strings.SplitSeq(metrics, "\n") {
			if strings.HasPrefix(line, "tollgate_admission_requests_total{") && strings.Contains(line, d) && strings.Contains(line, `dry_run="false"`) {
				n += sumMetric(line, "tollgate_admission_requests_total{")
			}
		}
	}
	return int(n)
}

// readDecisionLog counts the entries that parse and the lines that do
// not (an entry cut short by the full disk).
func readDecisionLog(t *testing.T, path string) (entries, torn int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e struct {
			UID    string `json:"uid"`
			DryRun bool   `json:"dryRun"`
		}
		switch {
		case json.Unmarshal(sc.Bytes(), &e) != nil || e.UID == "":
			torn++
		case !e.DryRun: // the probes' dry runs are logged, not counted by the metric
			entries++
		}
	}
	return entries, torn
}

// entryTimes returns the time of every entry that parses.
func entryTimes(t *testing.T, path string) []time.Time {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []time.Time
	for line := range strings.SplitSeq(string(data), "\n") {
		var e struct {
			Time time.Time `json:"time"`
		}
		if json.Unmarshal([]byte(line), &e) == nil && !e.Time.IsZero() {
			out = append(out, e.Time)
		}
	}
	return out
}
