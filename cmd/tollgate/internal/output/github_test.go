package output

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/policies"
)

func TestGitHubEscaping(t *testing.T) {
	tests := []struct {
		name, in, data, property string
	}{
		{"plain", "plain text", "plain text", "plain text"},
		{"percent first", "100%0A", "100%250A", "100%250A"},
		{"newlines", "a\r\nb\nc", "a%0D%0Ab%0Ac", "a%0D%0Ab%0Ac"},
		{"delimiters", "a:b,c::d", "a:b,c::d", "a%3Ab%2Cc%3A%3Ad"},
		{"command injection", "x\n::error::forged", "x%0A::error::forged", "x%0A%3A%3Aerror%3A%3Aforged"},
		{"unicode", "ü — ✓", "ü — ✓", "ü — ✓"},
		{"terminal escape", "\x1b[31m", `\x1b[31m`, `\x1b[31m`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := escapeData(tt.in); got != tt.data {
				t.Errorf("escapeData(%q) = %q, want %q", tt.in, got, tt.data)
			}
			if got := escapeProperty(tt.in); got != tt.property {
				t.Errorf("escapeProperty(%q) = %q, want %q", tt.in, got, tt.property)
			}
		})
	}
}

func TestGitHubCommands(t *testing.T) {
	tests := []struct {
		name   string
		report *Report
		want   []string
	}{
		{
			name: "one per action",
			report: &Report{Objects: 1, Files: 1, Results: []Result{
				{File: "a.yaml", Line: 3, Kind: "Pod", Name: "p", Finding: policies.Finding{Policy: "e", Action: policies.ActionEnforce, Message: "enforced"}},
				{File: "a.yaml", Line: 4, Kind: "Pod", Name: "p", Finding: policies.Finding{Policy: "w", Action: policies.ActionWarn, Message: "warned", Path: "spec.x"}},
				{File: "a.yaml", Line: 5, Kind: "Pod", Name: "p", Finding: policies.Finding{Policy: "u", Action: policies.ActionAudit, Message: "audited", Remediation: "fix"}},
			}},
			want: []string{
				"::error file=a.yaml,line=3,title=e::Pod p: enforced",
				"::warning file=a.yaml,line=4,title=w::Pod p: warned%0Aat spec.x",
				"::notice file=a.yaml,line=5,title=u::Pod p: audited%0Aremediation: fix",
				"1 object checked in 1 file: 1 enforce, 1 warn, 1 audit findings — FAILED",
			},
		},
		{
			name: "odd file names and stdin",
			report: &Report{Results: []Result{
				{File: "a,b:c.yaml", Finding: policies.Finding{Policy: "p", Action: policies.ActionWarn, Message: "m"}},
				{File: "<stdin>", Line: 2, Finding: policies.Finding{Policy: "p", Action: policies.ActionWarn, Message: "m"}},
			}},
			want: []string{
				"::warning title=p::object (unnamed): m",
				"::warning file=a%2Cb%3Ac.yaml,title=p::object (unnamed): m",
				"0 objects checked in 0 files: 0 enforce, 2 warn, 0 audit findings — PASSED",
			},
		},
		{
			name: "problems are errors",
			report: &Report{Problems: []Problem{
				{File: "x.yaml", Line: 7, Message: "bad\nyaml"},
				{Policy: "slow", Message: "timed out"},
			}},
			want: []string{
				"::error title=tollgate policy error%3A slow::timed out",
				"::error file=x.yaml,line=7,title=tollgate input error::bad%0Ayaml",
				"0 objects checked in 0 files: 0 enforce, 0 warn, 0 audit findings, 2 problems — FAILED",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Split(strings.TrimSuffix(string(render(t, FormatGitHub, tt.report)), "\n"), "\n")
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("commands (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGitHubOneLinePerCommand checks no message can break out of its
// command: the fixture's multi-line and odd messages still give exactly
// one line per finding and problem, plus the summary.
func TestGitHubOneLinePerCommand(t *testing.T) {
	r := fullReport()
	lines := strings.Split(strings.TrimSuffix(string(render(t, FormatGitHub, r)), "\n"), "\n")
	if want := len(r.Results) + len(r.Problems) + 1; len(lines) != want {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), want, strings.Join(lines, "\n"))
	}
	for _, l := range lines[:len(lines)-1] {
		if !strings.HasPrefix(l, "::error ") && !strings.HasPrefix(l, "::warning ") && !strings.HasPrefix(l, "::notice ") {
			t.Errorf("line is not a workflow command: %q", l)
		}
	}
}
