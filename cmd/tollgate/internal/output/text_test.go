package output

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/policies"
)

func TestText(t *testing.T) {
	enforce := policies.Finding{Policy: "p", Action: policies.ActionEnforce, Severity: policies.SeverityHigh, Message: "bad"}
	tests := []struct {
		name   string
		report *Report
		want   string
	}{
		{
			name:   "clean",
			report: &Report{Objects: 2, Files: 1},
			want:   "2 objects checked in 1 file: 0 enforce, 0 warn, 0 audit findings — PASSED\n",
		},
		{
			name: "grouped by file then object",
			report: &Report{Objects: 3, Files: 2, Results: []Result{
				{File: "b.yaml", Line: 2, Kind: "Pod", Namespace: "ns", Name: "x", Finding: enforce},
				{File: "a.yaml", Line: 9, DocumentLine: 5, Kind: "Namespace", Name: "y", Finding: policies.Finding{
					Policy: "q", Action: policies.ActionWarn, Severity: policies.SeverityLow, Message: "two\nlines",
					Path: "metadata.labels", Remediation: "add\nlabels",
				}},
				{File: "a.yaml", Line: 1, DocumentLine: 1, Kind: "Pod", Name: "z", Finding: enforce},
				{File: "a.yaml", Line: 7, DocumentLine: 5, Kind: "Namespace", Name: "y", Finding: enforce},
			}},
			want: `a.yaml
  Pod z (a.yaml:1)
    ENFORCE [high] p: bad (line 1)
  Namespace y (a.yaml:5)
    ENFORCE [high] p: bad (line 7)
    WARN    [low] q: two
      lines at metadata.labels (line 9)
      remediation: add
        labels

b.yaml
  Pod ns/x (b.yaml)
    ENFORCE [high] p: bad (line 2)

3 objects checked in 2 files: 3 enforce, 1 warn, 0 audit findings — FAILED
`,
		},
		{
			name: "problems",
			report: &Report{Files: 1, Problems: []Problem{
				{Policy: "slow", Message: "timed out"},
				{File: "x.yaml", Line: 3, Message: "bad yaml"},
			}},
			want: `problems:
  policy slow: timed out
  x.yaml:3: bad yaml

0 objects checked in 1 file: 0 enforce, 0 warn, 0 audit findings, 2 problems — FAILED
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, string(render(t, FormatText, tt.report))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestTextHasNoEscapeCodes(t *testing.T) {
	out := string(render(t, FormatText, fullReport()))
	if strings.ContainsRune(out, '\x1b') || strings.ContainsRune(out, '\r') {
		t.Errorf("text output contains raw control characters:\n%q", out)
	}
}
