package output

import (
	"encoding/xml"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The test reads the XML into its own structs, not the writer's, so a
// mistake in the writer's tags cannot cancel out.
type parsedSuites struct {
	XMLName  xml.Name      `xml:"testsuites"`
	Tests    int           `xml:"tests,attr"`
	Failures int           `xml:"failures,attr"`
	Errors   int           `xml:"errors,attr"`
	Suites   []parsedSuite `xml:"testsuite"`
}

type parsedSuite struct {
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Cases    []parsedCase `xml:"testcase"`
}

type parsedCase struct {
	Name      string          `xml:"name,attr"`
	ClassName string          `xml:"classname,attr"`
	Failures  []parsedFailure `xml:"failure"`
	Errors    []parsedFailure `xml:"error"`
	SystemOut string          `xml:"system-out"`
}

type parsedFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

func parseJUnit(t *testing.T, r *Report) parsedSuites {
	t.Helper()
	var got parsedSuites
	if err := xml.Unmarshal(render(t, FormatJUnit, r), &got); err != nil {
		t.Fatalf("output is not XML: %v", err)
	}
	return got
}

func TestJUnitStructure(t *testing.T) {
	got := parseJUnit(t, fullReport())

	type caseRow struct {
		Suite, Name, Class string
		Failures, Errors   []string // types
		HasOut             bool
	}
	var rows []caseRow
	for _, s := range got.Suites {
		for _, c := range s.Cases {
			row := caseRow{Suite: s.Name, Name: c.Name, Class: c.ClassName, HasOut: c.SystemOut != ""}
			for _, f := range c.Failures {
				row.Failures = append(row.Failures, f.Type)
			}
			for _, e := range c.Errors {
				row.Errors = append(row.Errors, e.Type)
			}
			rows = append(rows, row)
		}
	}
	want := []caseRow{
		{Suite: "<stdin>", Name: "Pod kube-system/debug", Class: "<stdin>", Failures: []string{"pss-baseline-privileged"}},
		{Suite: "broken.yaml", Name: "input (line 3)", Class: "broken.yaml", Errors: []string{"input-error"}},
		{Suite: "deploy/web.yaml", Name: "Deployment default/web", Class: "deploy/web.yaml", Failures: []string{"pss-baseline-privileged"}, HasOut: true},
		{Suite: "deploy/web.yaml", Name: "CronJob default/nightly", Class: "deploy/web.yaml", HasOut: true},
		{Suite: "deploy/web.yaml", Name: "policy custom-slow (line 40)", Class: "deploy/web.yaml", Errors: []string{"policy-error"}},
		{Suite: "tollgate", Name: "policy custom-slow", Class: "tollgate", Errors: []string{"policy-error"}},
		{Suite: "weird dir/a,b:c%.yaml", Name: "Namespace prod", Class: "weird dir/a,b:c%.yaml", HasOut: true},
	}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("test cases (-want +got):\n%s", diff)
	}

	type counts struct{ Tests, Failures, Errors int }
	gotCounts := map[string]counts{"": {got.Tests, got.Failures, got.Errors}}
	for _, s := range got.Suites {
		gotCounts[s.Name] = counts{s.Tests, s.Failures, s.Errors}
	}
	wantCounts := map[string]counts{
		"":                      {Tests: 7, Failures: 2, Errors: 3},
		"<stdin>":               {Tests: 1, Failures: 1},
		"broken.yaml":           {Tests: 1, Errors: 1},
		"deploy/web.yaml":       {Tests: 3, Failures: 1, Errors: 1},
		"tollgate":              {Tests: 1, Errors: 1},
		"weird dir/a,b:c%.yaml": {Tests: 1},
	}
	if diff := cmp.Diff(wantCounts, gotCounts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

// TestJUnitCountsMatchCases recomputes the counts from the elements, for
// reports of different shapes.
func TestJUnitCountsMatchCases(t *testing.T) {
	for name, r := range map[string]*Report{"full": fullReport(), "clean": cleanReport(), "empty": {}} {
		t.Run(name, func(t *testing.T) {
			got := parseJUnit(t, r)
			var tests, failures, errs int
			for _, s := range got.Suites {
				var st, sf, se int
				for _, c := range s.Cases {
					st++
					switch {
					case len(c.Errors) > 0:
						se++
					case len(c.Failures) > 0:
						sf++
					}
				}
				if st != s.Tests || sf != s.Failures || se != s.Errors {
					t.Errorf("suite %s says tests=%d failures=%d errors=%d, has %d, %d, %d", s.Name, s.Tests, s.Failures, s.Errors, st, sf, se)
				}
				tests, failures, errs = tests+st, failures+sf, errs+se
			}
			if tests != got.Tests || failures != got.Failures || errs != got.Errors {
				t.Errorf("testsuites says tests=%d failures=%d errors=%d, has %d, %d, %d", got.Tests, got.Failures, got.Errors, tests, failures, errs)
			}
		})
	}
}

// TestJUnitEscaping round-trips text with XML's special characters, quotes
// and non-ASCII through the output: what a parser reads back must be what
// went in.
func TestJUnitEscaping(t *testing.T) {
	got := parseJUnit(t, fullReport())
	find := func(suite, name string) parsedCase {
		for _, s := range got.Suites {
			for _, c := range s.Cases {
				if s.Name == suite && c.Name == name {
					return c
				}
			}
		}
		t.Fatalf("no test case %s in suite %s", name, suite)
		return parsedCase{}
	}
	tests := []struct {
		name, got, want string
	}{
		{
			name: "failure message attribute",
			got:  find("deploy/web.yaml", "Deployment default/web").Failures[0].Message,
			want: `container "app" is privileged: <b>root</b> & 'host' access`,
		},
		{
			name: "failure text",
			got:  find("deploy/web.yaml", "Deployment default/web").Failures[0].Text,
			want: "ENFORCE [critical] pss-baseline-privileged: container \"app\" is privileged: <b>root</b> & 'host' access at spec.template.spec.containers[0].securityContext.privileged (line 24)\nremediation: Remove securityContext.privileged or set it to false.",
		},
		{
			name: "system-out with unicode and newlines",
			got:  find("deploy/web.yaml", "CronJob default/nightly").SystemOut,
			want: "AUDIT [low] best-practice-latest-tag: image \"busybox:latest\" uses the latest tag\nPin a version or a digest. at spec.jobTemplate.spec.template.spec.containers[0].image (line 55)",
		},
		{
			name: "warn finding is output, not failure",
			got:  find("deploy/web.yaml", "Deployment default/web").SystemOut,
			want: "WARN [high] pss-restricted-run-as-non-root: runAsNonRoot is not set — setzen Sie es auf true ✓ at spec.template.spec.containers[0].securityContext.runAsNonRoot (line 20)\nremediation: Set securityContext.runAsNonRoot: true.",
		},
		{
			// XML 1.0 cannot carry ESC at all: it is shown escaped.
			name: "control characters",
			got:  find("weird dir/a,b:c%.yaml", "Namespace prod").SystemOut,
			want: `WARN [medium] namespace-labels: label is \x1b[31mmissing\x1b[0m, 100% sure: add it at metadata.labels["pod-security.kubernetes.io/enforce"] (line 4)`,
		},
		{
			name: "error message attribute",
			got:  find("deploy/web.yaml", "policy custom-slow (line 40)").Errors[0].Message,
			want: `rego_type_error: "x" & <y> undefined`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	raw := string(render(t, FormatJUnit, fullReport()))
	if !strings.HasPrefix(raw, `<?xml version="1.0" encoding="UTF-8"?>`) {
		t.Errorf("output lacks the XML declaration: %.60q", raw)
	}
}
