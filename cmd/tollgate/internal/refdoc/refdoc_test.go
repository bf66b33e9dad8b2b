package refdoc

import (
	"context"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

var update = flag.Bool("update", false, "rewrite docs/reference from the code")

// refDir is docs/reference, from this package's directory.
const refDir = "../../../../docs/reference"

// handWritten are the files of docs/reference no code writes.
var handWritten = []string{"README.md"}

// Every page in docs/reference is what the code renders now, and every
// page there is one it renders.
func TestReferenceUpToDate(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "") // a default of tollgate serve's flags
	pages, err := Pages(context.Background(), os.DirFS("../../../.."))
	if err != nil {
		t.Fatal(err)
	}
	have := map[string][]byte{}
	err = fs.WalkDir(os.DirFS(refDir), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || slices.Contains(handWritten, p) {
			return err
		}
		b, err := os.ReadFile(filepath.Join(refDir, p))
		have[p] = b
		return err
	})
	if err != nil && !(*update && os.IsNotExist(err)) {
		t.Fatal(err)
	}
	const fix = "run go test ./cmd/tollgate/internal/refdoc -run TestReference -update (make docs)"
	if *update {
		for p := range have {
			if _, ok := pages[p]; !ok {
				if err := os.Remove(filepath.Join(refDir, p)); err != nil {
					t.Fatal(err)
				}
			}
		}
		for p, b := range pages {
			if err := os.MkdirAll(filepath.Dir(filepath.Join(refDir, p)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(refDir, p), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	for _, p := range sortedKeys(pages) {
		b, ok := have[p]
		if !ok {
			t.Errorf("docs/reference/%s is missing: %s", p, fix)
			continue
		}
		if diff := cmp.Diff(strings.Split(string(pages[p]), "\n"), strings.Split(string(b), "\n")); diff != "" {
			t.Errorf("docs/reference/%s is stale: %s\n(-want +have):\n%s", p, fix, shorten(diff, 40))
		}
	}
	for _, p := range sortedKeys(have) {
		if _, ok := pages[p]; !ok {
			t.Errorf("docs/reference/%s is rendered by nothing (a command removed?): %s, or list it in handWritten", p, fix)
		}
	}
}

// shorten keeps the first n lines of a diff.
func shorten(diff string, n int) string {
	lines := strings.Split(diff, "\n")
	if len(lines) <= n {
		return diff
	}
	return strings.Join(lines[:n], "\n") + "\n..."
}

// The pages say the same thing on every run.
func TestPagesStable(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "")
	repo := os.DirFS("../../../..")
	first, err := Pages(context.Background(), repo)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Pages(context.Background(), repo)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("two renderings differ (-first +second):\n%s", shorten(diff, 40))
	}
}

func TestParseDesc(t *testing.T) {
	for _, tc := range []struct {
		name string
		desc *prometheus.Desc
		want metric
	}{
		{"plain", prometheus.NewDesc("a_total", "A, \"quoted\".", nil, nil), metric{name: "a_total", help: "A, \"quoted\"."}},
		{"labels", prometheus.NewDesc("b", "B {x}, y=z.", []string{"kind", "result"}, prometheus.Labels{"cluster": `c,"d"}`}),
			metric{name: "b", help: "B {x}, y=z.", labels: []string{`cluster="c,\"d\"}"`, "kind", "result"}}},
		{"constrained", prometheus.V2.NewDesc("c", "C.", prometheus.ConstrainedLabels{{Name: "k", Constraint: strings.ToLower}}, nil),
			metric{name: "c", help: "C.", labels: []string{"k"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseDesc(tc.desc.String())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(metric{})); diff != "" {
				t.Errorf("parseDesc(%s) (-want +got):\n%s", tc.desc, diff)
			}
		})
	}
}

// A vector with no series yet is listed with its type and labels, and a
// collector of neither kind is refused rather than listed without a type.
func TestDescribe(t *testing.T) {
	vec := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "h_seconds", Help: "H."}, []string{"op"})
	gauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "g", Help: "G."})
	got, err := describe([]prometheus.Collector{vec, gauge})
	if err != nil {
		t.Fatal(err)
	}
	want := []metric{{name: "g", typ: "gauge", help: "G."}, {name: "h_seconds", typ: "histogram", help: "H.", labels: []string{"op"}}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(metric{})); diff != "" {
		t.Errorf("describe (-want +got):\n%s", diff)
	}
	custom := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "f", Help: "F."}, func() float64 { return 1 })
	if _, err := describe([]prometheus.Collector{custom}); err != nil {
		t.Errorf("a collector that collects: %v", err)
	}
	if _, err := describe([]prometheus.Collector{silent{prometheus.NewDesc("s", "S.", nil, nil)}}); err == nil {
		t.Error("a collector of unknown type that collects nothing was listed")
	}
}

type silent struct{ d *prometheus.Desc }

func (s silent) Describe(ch chan<- *prometheus.Desc) { ch <- s.d }
func (silent) Collect(chan<- prometheus.Metric)      {}
