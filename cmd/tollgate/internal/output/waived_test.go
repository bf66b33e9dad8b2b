package output

import (
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/policies"
)

// waivedReport has one enforce finding an exception waives and nothing
// else.
func waivedReport() *Report {
	r := cleanReport()
	r.Results = []Result{{
		File: "deploy.yaml", Line: 3, DocumentLine: 1, APIVersion: "apps/v1", Kind: "Deployment", Namespace: "apps", Name: "legacy-web",
		Finding: policies.Finding{
			Policy: "ClusterPolicy/require-team", Message: "team-label: the label team is required",
			Severity: policies.SeverityHigh, Action: policies.ActionEnforce,
			Exception: &policies.ExceptionRef{Namespace: "policy-exceptions", Name: "legacy-team", Reason: "being migrated"},
		},
	}}
	return r
}

// A waived finding is shown in every format, naming its exception, and
// never fails the check.
func TestWaivedFinding(t *testing.T) {
	r := waivedReport()
	s := r.Summary()
	if !s.Passed || s.Waived != 1 || s.ByAction.Enforce != 0 || s.Findings != 1 {
		t.Errorf("summary %+v, want passed with 1 waived", s)
	}
	for format, want := range map[Format][]string{
		FormatText: {
			"ENFORCE [high] ClusterPolicy/require-team: team-label: the label team is required (line 3) — waived by exception policy-exceptions/legacy-team (being migrated)",
			"2 objects checked in 1 file: 0 enforce, 0 warn, 0 audit findings, 1 waived — PASSED",
		},
		FormatJSON:   {`"exception": {`, `"name": "legacy-team"`, `"waived": 1`},
		FormatSARIF:  {`"suppressions": [`, `"justification": "waived by exception policy-exceptions/legacy-team (being migrated)"`},
		FormatGitHub: {"::notice file=deploy.yaml,line=3,title=ClusterPolicy/require-team::", "waived by exception policy-exceptions/legacy-team"},
	} {
		out := string(render(t, format, r))
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s output lacks %q:\n%s", format, w, out)
			}
		}
	}
	if out := string(render(t, FormatJUnit, r)); strings.Contains(out, "<failure") {
		t.Errorf("a waived finding fails the JUnit case:\n%s", out)
	}
}
