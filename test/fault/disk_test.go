package fault

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/compliance"
)

// TestDecisionLogDiskFull: the only replica serving writes its decision
// log to a 16 MiB tmpfs that is filled while pods are created, then
// freed. Admission goes on by the documented rule (a decision log write
// that fails does not fail the request); every decision is either in the
// file or counted where an operator sees it: an error line with the
// request's uid in the server log, the decision-log error metric, and
// the gap records `tollgate report` verifies.
func TestDecisionLogDiskFull(t *testing.T) {
	ctx := context.Background()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root (CI runs as root)")
	}
	mnt := filepath.Join(env.dir, "full")
	if err := os.MkdirAll(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=16m"); err != nil {
		t.Skipf("mounting a 16 MiB tmpfs at %s: %v (needs root and CAP_SYS_ADMIN)", mnt, err)
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

	// Every decision is in the file or counted as lost: in the server's
	// log, in the error metric, and in the file's own gap records, which
	// `tollgate report` reads.
	_, metrics := r.get(ctx, "/metrics")
	expected := loggedDecisions(metrics)
	failed := logLines(r.log.String(), regexp.MustCompile(`^decision log write failed$`))
	errorsTotal := int(sumMetric(metrics, "tollgate_decision_log_errors_total"))
	entries, integrity := readDecisionLog(t, logPath)
	t.Logf("decisions to log %d: %d in the file, %d write failures logged, tollgate_decision_log_errors_total %d; report: %s, %d lost in gap records, %d notes",
		expected, entries, len(failed), errorsTotal, integrity.Status, integrity.Lost, len(integrity.Problems))
	if len(failed) == 0 {
		t.Errorf("no write failed: the disk was never full")
	}
	if errorsTotal != len(failed) {
		t.Errorf("tollgate_decision_log_errors_total = %d, %d failures logged", errorsTotal, len(failed))
	}
	if integrity.Lost != errorsTotal {
		t.Errorf("gap records count %d entries lost, the error metric %d", integrity.Lost, errorsTotal)
	}
	if integrity.Status != compliance.IntegrityIncomplete {
		t.Errorf("the report reads the log as %q, want %q (lines cut short by the full disk are accounted for by the gap records): %+v",
			integrity.Status, compliance.IntegrityIncomplete, integrity.Problems)
	}
	if got := entries + integrity.Lost; got < expected {
		t.Errorf("%d decisions to log, %d accounted for (%d in the file, %d lost in gap records): entries vanished",
			expected, got, entries, integrity.Lost)
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

// readDecisionLog counts the entries of requests that were not dry runs
// (the probes' dry runs are logged, not counted by the metric) and
// verifies the log's chain as `tollgate report` does.
func readDecisionLog(t *testing.T, path string) (entries int, integrity compliance.LogIntegrity) {
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
			Record string `json:"record"`
			DryRun bool   `json:"dryRun"`
		}
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Record == "" && e.UID != "" && !e.DryRun {
			entries++
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	var d compliance.Denials
	if err := d.ReadDecisionLog(f, compliance.DecisionLogOptions{Source: path}); err != nil {
		t.Fatal(err)
	}
	return entries, d.Integrity[0]
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
