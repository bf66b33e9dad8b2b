package compliance

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestDecisionLog: dry runs and entries outside the period are left out,
// waived findings count for nothing, malformed lines are counted with
// their line numbers, and each request counts once per policy.
func TestDecisionLog(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "decisionlog.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var d Denials
	if err := d.ReadDecisionLog(f, DecisionLogOptions{From: fixtureNow.Add(-30 * 24 * time.Hour), To: fixtureNow, Source: "log"}); err != nil {
		t.Fatal(err)
	}
	if d.Lines != 9 || d.Requests != 4 || d.Denied != 2 || d.Warned != 1 || d.DryRun != 1 || d.OutsidePeriod != 1 || d.Malformed != 2 {
		t.Errorf("counts: lines %d requests %d denied %d warned %d dryRun %d outside %d malformed %d",
			d.Lines, d.Requests, d.Denied, d.Warned, d.DryRun, d.OutsidePeriod, d.Malformed)
	}
	var lines []int
	for _, l := range d.MalformedLines {
		lines = append(lines, l.Line)
	}
	if diff := cmp.Diff([]int{4, 6}, lines); diff != "" {
		t.Errorf("malformed lines (-want +got):\n%s", diff)
	}
	got := map[string][2]int{}
	for _, p := range d.ByPolicy {
		got[p.Policy] = [2]int{p.Denied, p.Warned}
	}
	want := map[string][2]int{
		"pss-baseline-privileged":      {1, 0}, // the dry run and the old denial left out
		"pss-baseline-host-namespaces": {1, 0},
		"images-no-latest":             {0, 1},
		"image-policy/corp-signed":     {1, 0},
		// pss-restricted-run-as-non-root was waived: no count.
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("by policy (-want +got):\n%s", diff)
	}
}

// TestDecisionLogWindowAndExamples: only the latest examples are kept,
// newest first; a second log adds to the first.
func TestDecisionLogWindowAndExamples(t *testing.T) {
	entry := func(ts time.Time, name string) string {
		return `{"time":"` + ts.Format(time.RFC3339) + `","uid":"u","operation":"CREATE","kind":"Pod","namespace":"ns","name":"` + name +
			`","dryRun":false,"allowed":false,"findings":[{"policy":"p","message":"no","severity":"high","action":"enforce"}],"authenticated":true}`
	}
	base := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	var lines []string
	for i := range 10 {
		lines = append(lines, entry(base.Add(time.Duration(i)*time.Hour), string(rune('a'+i))))
	}
	var d Denials
	opts := DecisionLogOptions{From: base.Add(2 * time.Hour), To: base.Add(7 * time.Hour), Examples: 2}
	if err := d.ReadDecisionLog(strings.NewReader(strings.Join(lines, "\n")), opts); err != nil {
		t.Fatal(err)
	}
	if d.Denied != 6 || d.OutsidePeriod != 4 {
		t.Errorf("denied %d outside %d", d.Denied, d.OutsidePeriod)
	}
	p := d.ByPolicy[0]
	if p.Denied != 6 || len(p.Latest) != 2 || p.Latest[0].Resource.Name != "h" || p.Latest[1].Resource.Name != "g" {
		t.Errorf("policy %+v", p)
	}
	if err := d.ReadDecisionLog(strings.NewReader(entry(base.Add(3*time.Hour), "z")+"\n"), opts); err != nil {
		t.Fatal(err)
	}
	if d.Denied != 7 || d.ByPolicy[0].Denied != 7 || len(d.Sources) != 2 {
		t.Errorf("second log: denied %d, %+v", d.Denied, d.ByPolicy)
	}
}

// TestDecisionLogLongLines: a line over the limit is malformed, in the
// middle and at the end of the log, and the lines around it still count.
func TestDecisionLogLongLines(t *testing.T) {
	ok := `{"time":"2025-06-01T00:00:00Z","allowed":false,"findings":[{"policy":"p","action":"enforce"}],"authenticated":true}`
	long := `{"x":"` + strings.Repeat("y", 200<<10) + `"}`
	for _, text := range []string{ok + "\n" + long + "\n" + ok + "\n", ok + "\n" + ok + "\r\n" + long} {
		var d Denials
		if err := d.ReadDecisionLog(strings.NewReader(text), DecisionLogOptions{MaxLineBytes: 64 << 10}); err != nil {
			t.Fatal(err)
		}
		if d.Denied != 2 || d.Malformed != 1 || d.Lines != 3 || !strings.Contains(d.MalformedLines[0].Error, "longer than 65536 bytes") {
			t.Errorf("denied %d malformed %d lines %d %+v", d.Denied, d.Malformed, d.Lines, d.MalformedLines)
		}
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

// TestDecisionLogReadError: a read error stops reading and says where.
func TestDecisionLogReadError(t *testing.T) {
	var d Denials
	err := d.ReadDecisionLog(failingReader{}, DecisionLogOptions{Source: "x.jsonl"})
	if err == nil || !strings.Contains(err.Error(), "x.jsonl: line 1: disk on fire") {
		t.Errorf("error %v", err)
	}
}
