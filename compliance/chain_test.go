package compliance_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/compliance"
	"github.com/tollgate-dev/tollgate/compliance/logchain"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/webhook"
)

var chainAt = time.Date(2025, 6, 30, 12, 0, 0, 0, time.UTC)

func chainEntry(uid string, authenticated bool) *webhook.DecisionEntry {
	return &webhook.DecisionEntry{Time: chainAt, UID: uid, User: "alice", Operation: "CREATE", Kind: "v1/Pod", Namespace: "ns", Name: uid,
		Allowed: false, Authenticated: authenticated, Client: map[bool]string{true: "kube-apiserver"}[authenticated],
		Findings: []policies.Finding{{Policy: "pss-baseline-privileged", Message: "privileged", Action: policies.ActionEnforce}}}
}

// chainLog writes a start record, four authenticated entries and an end
// record: six lines.
func chainLog(t *testing.T, key []byte) []string {
	t.Helper()
	var buf bytes.Buffer
	l := webhook.NewChainedDecisionLog(&buf, webhook.DecisionLogOptions{Key: key, Writer: "test", Now: func() time.Time { return chainAt }})
	for _, uid := range []string{"a", "b", "c", "d"} {
		if err := l.Write(chainEntry(uid, true)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
}

func readChain(t *testing.T, text string, key []byte) *compliance.Denials {
	t.Helper()
	var d compliance.Denials
	if err := d.ReadDecisionLog(strings.NewReader(text), compliance.DecisionLogOptions{Source: "log", Key: key}); err != nil {
		t.Fatal(err)
	}
	return &d
}

// problemLines are the line numbers of a log's problems.
func problemLines(d *compliance.Denials) []int {
	var n []int
	for _, p := range d.Integrity[0].Problems {
		n = append(n, p.Line)
	}
	return n
}

// TestChainIntact: a log as the server writes it verifies, and counts all
// its entries as evidence.
func TestChainIntact(t *testing.T) {
	lines := chainLog(t, nil)
	if len(lines) != 6 {
		t.Fatalf("%d lines:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	d := readChain(t, strings.Join(lines, "\n")+"\n", nil)
	in := d.Integrity[0]
	if in.Status != compliance.IntegrityVerified || in.Chained != 6 || in.Chains != 1 || len(in.Problems) != 0 || d.Denied != 4 || d.Malformed != 0 {
		t.Errorf("integrity %+v, denied %d, malformed %d", in, d.Denied, d.Malformed)
	}
}

// TestChainTampering: each way of changing a log is found, with the line.
func TestChainTampering(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	tests := []struct {
		name   string
		key    []byte
		change func(lines []string) []string
		// want are the lines flagged; status the log's status.
		want        []int
		status      string
		denied      int
		wantMessage string
	}{
		{name: "edit one line", change: func(l []string) []string {
			l[2] = strings.Replace(l[2], `"allowed":false`, `"allowed":true`, 1)
			return l
		}, want: []int{3}, status: compliance.IntegrityBroken, denied: 3, wantMessage: "line 3 was edited"},
		{name: "edit one line and its hash", change: func(l []string) []string {
			l[2] = rehash(strings.Replace(l[2], `"allowed":false`, `"allowed":true`, 1), nil)
			return l
		}, want: []int{4}, status: compliance.IntegrityBroken, denied: 3, wantMessage: "line 4 does not follow line 3"},
		{name: "delete one line", change: func(l []string) []string {
			return append(l[:2:2], l[3:]...)
		}, want: []int{3}, status: compliance.IntegrityBroken, denied: 3, wantMessage: "1 line(s) missing before it"},
		{name: "swap two lines", change: func(l []string) []string {
			l[2], l[3] = l[3], l[2]
			return l
		}, want: []int{3, 4, 5}, status: compliance.IntegrityBroken, denied: 4, wantMessage: "reordered"},
		{name: "insert a copied line", change: func(l []string) []string {
			return append(l[:3:3], append([]string{l[1]}, l[3:]...)...)
		}, want: []int{4, 5}, status: compliance.IntegrityBroken, denied: 5, wantMessage: "inserted"},
		{name: "truncate mid-line", change: func(l []string) []string {
			l[4] = l[4][:len(l[4])/2]
			return l[:5]
		}, want: []int{5}, status: compliance.IntegrityBroken, denied: 3, wantMessage: "cut short"},
		{name: "truncate whole lines", change: func(l []string) []string {
			return l[:4]
		}, want: nil, status: compliance.IntegrityOpen, denied: 3},
		{name: "append a forged line", change: func(l []string) []string {
			return append(l, strings.Replace(l[4], `"uid":"d"`, `"uid":"forged"`, 1))
		}, want: []int{7, 7}, status: compliance.IntegrityBroken, denied: 4, wantMessage: "line 7 was edited"},
		{name: "append a forged line with a recomputed chain", change: func(l []string) []string {
			return append(l, forge(l[len(l)-1], strings.Replace(l[4], `"uid":"d"`, `"uid":"forged"`, 1), nil))
		}, want: []int{7}, status: compliance.IntegrityBroken, denied: 5, wantMessage: "without a start record: appended"},
		{name: "keyed: forge in the middle with a recomputed chain", key: key, change: func(l []string) []string {
			f := forge(l[2], strings.Replace(l[3], `"uid":"c"`, `"uid":"forged"`, 1), nil)
			return append(l[:3:3], append([]string{f}, l[3:]...)...)
		}, want: []int{4, 5}, status: compliance.IntegrityBroken, denied: 4, wantMessage: "line 4 was edited"},
		{name: "an unchained line inserted", change: func(l []string) []string {
			return append(l[:2:2], append([]string{`{"time":"2025-06-30T12:00:00Z","allowed":false,"authenticated":true}`}, l[2:]...)...)
		}, want: []int{3}, status: compliance.IntegrityBroken, denied: 4, wantMessage: "no chain fields inside a chained log"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := tt.change(chainLog(t, tt.key))
			d := readChain(t, strings.Join(lines, "\n")+"\n", tt.key)
			in := d.Integrity[0]
			if diff := cmp.Diff(tt.want, problemLines(d)); diff != "" {
				t.Errorf("lines flagged (-want +got):\n%s\n%+v", diff, in.Problems)
			}
			if in.Status != tt.status || d.Denied != tt.denied {
				t.Errorf("status %q denied %d; want %q %d", in.Status, d.Denied, tt.status, tt.denied)
			}
			said := tt.wantMessage == ""
			for _, p := range in.Problems {
				said = said || strings.Contains(p.Error, tt.wantMessage)
			}
			if !said {
				t.Errorf("problems %+v; want one to say %q", in.Problems, tt.wantMessage)
			}
		})
	}
}

// rehash recomputes a line's own hash after an edit.
func rehash(line string, key []byte) string {
	content, _, ok := logchain.SplitHash([]byte(line))
	if !ok {
		panic("not a chained line: " + line)
	}
	return string(content) + `,"hash":"` + logchain.LineHash(key, content) + `"}`
}

// forge makes line follow prev: the sequence number and prev hash of a
// line after it, and its own hash recomputed with key.
func forge(prev, line string, key []byte) string {
	_, prevSum, _ := logchain.SplitHash([]byte(prev))
	var seq int
	if i := strings.Index(prev, `"seq":`); i >= 0 {
		rest := prev[i+6:]
		for j := 0; j < len(rest) && rest[j] >= '0' && rest[j] <= '9'; j++ {
			seq = seq*10 + int(rest[j]-'0')
		}
	}
	content, _, _ := logchain.SplitHash([]byte(line))
	s := string(content)
	i := strings.Index(s, `"seq":`)
	s = s[:i] + `"seq":` + itoa(seq+1) + `,"prev":"` + prevSum + `"`
	return rehash(s+`,"hash":"`+strings.Repeat("0", logchain.HashLen)+`"}`, key)
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// TestChainOldLog: a log written before the chain is not verifiable, not
// rejected, and its entries (without an authenticated field) are left out
// as unauthenticated, counted.
func TestChainOldLog(t *testing.T) {
	old := `{"time":"2025-06-30T12:00:00Z","uid":"1","allowed":false,"findings":[{"policy":"p","action":"enforce"}]}` + "\n" +
		`{"time":"2025-06-30T12:00:01Z","uid":"2","allowed":false,"findings":[{"policy":"p","action":"enforce"}]}` + "\n"
	d := readChain(t, old, nil)
	in := d.Integrity[0]
	if in.Status != compliance.IntegrityUnverifiable || in.Unchained != 2 || len(in.Problems) != 0 || d.Unauthenticated != 2 || d.Denied != 0 {
		t.Errorf("integrity %+v unauthenticated %d denied %d", in, d.Unauthenticated, d.Denied)
	}
}

// TestChainUnauthenticated: entries of callers that were not
// authenticated are left out of the evidence and counted.
func TestChainUnauthenticated(t *testing.T) {
	var buf bytes.Buffer
	l := webhook.NewDecisionLog(&buf)
	for i, auth := range []bool{true, false, false} {
		if err := l.Write(chainEntry(string(rune('a'+i)), auth)); err != nil {
			t.Fatal(err)
		}
	}
	d := readChain(t, buf.String(), nil)
	if d.Denied != 1 || d.Unauthenticated != 2 || d.Integrity[0].Status != compliance.IntegrityOpen {
		t.Errorf("denied %d unauthenticated %d integrity %+v", d.Denied, d.Unauthenticated, d.Integrity[0])
	}
}

// flakyWriter fails while full is set; with partial it writes half of
// the line first, as a disk filling up does.
type flakyWriter struct {
	buf           bytes.Buffer
	full, partial bool
}

func (w *flakyWriter) Write(p []byte) (int, error) {
	if !w.full {
		return w.buf.Write(p)
	}
	if w.partial {
		n, _ := w.buf.Write(p[:len(p)/2])
		return n, errors.New("no space left on device")
	}
	return 0, errors.New("no space left on device")
}

// TestChainGap: entries that could not be written are counted, and the
// first line written afterwards is a gap record the report shows; the
// lines the failures cut short are counted by the gap record, so they are
// told from damage: one more such line inserted breaks the chain.
func TestChainGap(t *testing.T) {
	for _, partial := range []bool{false, true} {
		w := &flakyWriter{}
		l := webhook.NewChainedDecisionLog(w, webhook.DecisionLogOptions{Now: func() time.Time { return chainAt }})
		write := func(uid string) error { return l.Write(chainEntry(uid, true)) }
		if err := write("a"); err != nil {
			t.Fatal(err)
		}
		w.full, w.partial = true, partial
		for _, uid := range []string{"b", "c", "d"} {
			if err := write(uid); err == nil {
				t.Fatal("a write to a full disk succeeded")
			}
		}
		if l.Lost() != 3 {
			t.Errorf("lost %d, want 3", l.Lost())
		}
		w.full = false
		if err := write("e"); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		d := readChain(t, w.buf.String(), nil)
		in := d.Integrity[0]
		if d.Lost != 3 || in.Lost != 3 || in.Status != compliance.IntegrityIncomplete || d.Denied != 2 {
			t.Errorf("partial %v: lost %d status %q denied %d\n%s", partial, d.Lost, in.Status, d.Denied, w.buf.String())
		}
		gap, cut := false, 0
		for _, p := range in.Problems {
			gap = gap || strings.Contains(p.Error, "could not write 3 entries")
			if strings.Contains(p.Error, "cut short by a failed write, accounted for") {
				cut++
			}
		}
		if !gap {
			t.Errorf("partial %v: no gap listed: %+v", partial, in.Problems)
		}
		if want := map[bool]int{false: 0, true: 3}[partial]; cut != want {
			t.Errorf("partial %v: %d lines accounted for as cut short, want %d: %+v", partial, cut, want, in.Problems)
		}
		if !partial {
			continue
		}
		// A fragment more than the gap record counts is damage.
		lines := strings.Split(w.buf.String(), "\n")
		forged := slices.Concat(lines[:2], []string{`{"time":"2025-06-30T12:00:00Z","uid":"x`}, lines[2:])
		d = readChain(t, strings.Join(forged, "\n"), nil)
		if in := d.Integrity[0]; in.Status != compliance.IntegrityBroken {
			t.Errorf("an extra fragment before the gap record: status %q, want broken: %+v", in.Status, in.Problems)
		}
	}
}

// TestChainAcrossRestarts: a file reopened by a restarted server
// continues its chain, after a clean stop and after a crash that cut a
// line short; removing a whole run of the middle is found.
func TestChainAcrossRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	run := func(uids []string, closeIt bool) {
		l, f, err := webhook.OpenDecisionLog(path, webhook.DecisionLogOptions{Now: func() time.Time { return chainAt }})
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, uid := range uids {
			if err := l.Write(chainEntry(uid, true)); err != nil {
				t.Fatal(err)
			}
		}
		if closeIt {
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	run([]string{"a", "b"}, true)
	run([]string{"c"}, false) // a crash: no end record
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"time":"2025-06-30T12:00:00Z","uid":"half`); err != nil { // cut short by the crash
		t.Fatal(err)
	}
	f.Close()
	run([]string{"d"}, true)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := readChain(t, string(data), nil)
	in := d.Integrity[0]
	// start a b end start c <cut> start d end
	if in.Chains != 3 || d.Denied != 4 || d.Malformed != 1 || in.Status != compliance.IntegrityBroken {
		t.Errorf("chains %d denied %d malformed %d status %q\n%s", in.Chains, d.Denied, d.Malformed, in.Status, data)
	}
	if diff := cmp.Diff([]int{7, 8}, problemLines(d)); diff != "" {
		t.Errorf("lines flagged (-want +got):\n%s\n%+v", diff, in.Problems)
	}
	// The second run removed whole: the third's start does not link.
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	cut := slices.Concat(lines[:4], lines[6:])
	d = readChain(t, strings.Join(cut, "\n")+"\n", nil)
	if d.Integrity[0].Status != compliance.IntegrityBroken {
		t.Errorf("a removed run was not found: %+v", d.Integrity[0])
	}
}

// TestChainClusterFields: entries carry the cluster (from the log's
// options) and the policy set; the chain covers them, so changing either
// shows; the reader counts requests per cluster with their policy sets.
func TestChainClusterFields(t *testing.T) {
	const setA, setB = "sha256:aaaa", "sha256:bbbb"
	write := func(cluster string, sets ...string) []string {
		var buf bytes.Buffer
		l := webhook.NewChainedDecisionLog(&buf, webhook.DecisionLogOptions{Cluster: cluster, Writer: "test", Now: func() time.Time { return chainAt }})
		for i, set := range sets {
			e := chainEntry(cluster+itoa(i), true)
			e.PolicySet = set
			if err := l.Write(e); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	}
	a := write("a", setA, setA, setB)
	b := write("b", setA)
	if !strings.Contains(a[1], `"cluster":"a","policySet":"sha256:aaaa"`) {
		t.Fatalf("entry lacks the fields: %s", a[1])
	}

	var d compliance.Denials
	for name, lines := range map[string][]string{"a.jsonl": a, "b.jsonl": b} {
		if err := d.ReadDecisionLog(strings.NewReader(strings.Join(lines, "\n")+"\n"), compliance.DecisionLogOptions{Source: name}); err != nil {
			t.Fatal(err)
		}
	}
	for _, in := range d.Integrity {
		if in.Status != compliance.IntegrityVerified {
			t.Errorf("%s: %s %+v", in.Source, in.Status, in.Problems)
		}
	}
	want := []compliance.ClusterDecisions{
		{Cluster: "a", Requests: 3, Denied: 3, PolicySets: []string{setA, setB}},
		{Cluster: "b", Requests: 1, Denied: 1, PolicySets: []string{setA}},
	}
	if diff := cmp.Diff(want, d.Clusters); diff != "" {
		t.Errorf("per cluster (-want +got):\n%s", diff)
	}
	for _, x := range d.ByPolicy[0].Latest {
		if x.Cluster == "" || x.PolicySet == "" {
			t.Errorf("example %+v lacks its cluster or policy set", x)
		}
	}

	// A line moved to another cluster, or to another policy set, no
	// longer matches its hash.
	for _, edit := range []func(string) string{
		func(s string) string { return strings.Replace(s, `"cluster":"a"`, `"cluster":"b"`, 1) },
		func(s string) string { return strings.Replace(s, setA, setB, 1) },
	} {
		edited := slices.Clone(a)
		edited[1] = edit(edited[1])
		got := readChain(t, strings.Join(edited, "\n")+"\n", nil)
		if got.Integrity[0].Status != compliance.IntegrityBroken || got.Tampered != 1 || !slices.Equal(problemLines(got), []int{2}) {
			t.Errorf("edited line 2: %s, tampered %d, problems on %v", got.Integrity[0].Status, got.Tampered, problemLines(got))
		}
	}

	// Lines of a server that names no cluster count under none.
	old := chainLog(t, nil)
	var mixed compliance.Denials
	for _, lines := range [][]string{old, b} {
		if err := mixed.ReadDecisionLog(strings.NewReader(strings.Join(lines, "\n")+"\n"), compliance.DecisionLogOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff([]compliance.ClusterDecisions{{Requests: 4, Denied: 4}, {Cluster: "b", Requests: 1, Denied: 1, PolicySets: []string{setA}}}, mixed.Clusters); diff != "" {
		t.Errorf("mixed logs (-want +got):\n%s", diff)
	}
}
