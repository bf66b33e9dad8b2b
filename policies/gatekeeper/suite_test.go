package gatekeeper_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/policies/gatekeeper"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// durations are the run times gator prints, which vary.
var durations = regexp.MustCompile(`\d+(\.\d+)?(ns|µs|ms|s)\b`)

func TestRunSuites(t *testing.T) {
	suites := os.DirFS("testdata/suites")
	tests := []struct {
		name           string
		fsys           fstest.MapFS // nil: testdata/suites
		root           string
		passed, failed int
		golden         string
	}{
		{name: "labels", root: "labels", passed: 3, golden: "labels.golden"},
		{name: "CEL", root: "replicas", passed: 2},
		{name: "failing assertions", root: "failing", passed: 1, failed: 2, golden: "failing.golden"},
		{name: "every suite", root: ".", passed: 6, failed: 2},
		{
			name: "a test whose template is missing",
			fsys: fstest.MapFS{"s/suite.yaml": {Data: []byte(`apiVersion: test.gatekeeper.sh/v1alpha1
kind: Suite
tests:
  - name: nothing-there
    template: template.yaml
    constraint: constraint.yaml
    cases:
      - name: c
        object: o.yaml
        assertions: [{violations: no}]
`)}},
			root:   "s",
			failed: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := suites
			if tt.fsys != nil {
				fsys = tt.fsys
			}
			var out bytes.Buffer
			passed, failed, err := gatekeeper.RunSuites(context.Background(), fsys, tt.root, &out)
			if err != nil {
				t.Fatal(err)
			}
			if passed != tt.passed || failed != tt.failed {
				t.Errorf("passed %d, failed %d; want %d and %d\n%s", passed, failed, tt.passed, tt.failed, out.String())
			}
			if tt.golden == "" {
				return
			}
			got := durations.ReplaceAllString(out.String(), "TIME")
			golden := filepath.Join("testdata", tt.golden)
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunSuitesErrors(t *testing.T) {
	var out bytes.Buffer
	_, _, err := gatekeeper.RunSuites(context.Background(), fstest.MapFS{}, "nowhere", &out)
	if err == nil || !strings.Contains(err.Error(), "nowhere") {
		t.Errorf("RunSuites on a missing root: %v", err)
	}
	_, _, err = gatekeeper.RunSuites(context.Background(), fstest.MapFS{"bad.yaml": {Data: []byte("apiVersion: test.gatekeeper.sh/v1alpha1\nkind: Suite\ntests: {not: a list}\n")}}, ".", &out)
	if err == nil {
		t.Error("RunSuites accepted a malformed suite")
	}
}
