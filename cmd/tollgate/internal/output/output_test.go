package output

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/policies"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// fullReport is a check with several files and objects, all three actions,
// a policy missing from Policies, standard input, problems with and without
// a file, and characters every format has to escape. Results are out of
// order on purpose: the formats sort them.
func fullReport() *Report {
	privileged := policies.Metadata{
		ID:          "pss-baseline-privileged",
		Title:       "Privileged containers are not allowed",
		Description: "Privileged containers can do almost anything the host can.",
		Severity:    policies.SeverityCritical,
		Action:      policies.ActionEnforce,
		Scope:       policies.ScopePod,
		Controls:    []policies.Control{{Framework: "pss", ID: "baseline"}, {Framework: "cis", ID: "5.2.1"}, {Framework: "cis", ID: "5.2.2"}},
		Remediation: "Remove securityContext.privileged or set it to false.",
	}
	nonRoot := policies.Metadata{
		ID:          "pss-restricted-run-as-non-root",
		Title:       "Containers must run as non-root",
		Severity:    policies.SeverityHigh,
		Action:      policies.ActionWarn,
		Scope:       policies.ScopePod,
		Controls:    []policies.Control{{Framework: "pss", ID: "restricted"}},
		Remediation: "Set securityContext.runAsNonRoot: true.",
	}
	latest := policies.Metadata{
		ID:       "best-practice-latest-tag",
		Title:    "Images should not use the latest tag",
		Severity: policies.SeverityLow,
		Action:   policies.ActionAudit,
		Scope:    policies.ScopePod,
	}
	limits := policies.Metadata{
		ID:          "resources-limits",
		Title:       "Containers set resource limits",
		Description: "Limits keep one workload from starving the node.",
		Severity:    policies.SeverityMedium,
		Action:      policies.ActionEnforce,
		Scope:       policies.ScopePod,
	}
	slow := policies.Metadata{
		ID:       "custom-slow",
		Severity: policies.SeverityInfo,
		Action:   policies.ActionAudit,
		Scope:    policies.ScopeObject,
	}
	web := Result{File: "deploy/web.yaml", DocumentLine: 1, APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: "web"}
	nightly := Result{File: "deploy/web.yaml", DocumentLine: 40, APIVersion: "batch/v1", Kind: "CronJob", Namespace: "default", Name: "nightly"}
	ns := Result{File: "weird dir/a,b:c%.yaml", DocumentLine: 1, APIVersion: "v1", Kind: "Namespace", Name: "prod"}
	pod := Result{File: "<stdin>", DocumentLine: 1, APIVersion: "v1", Kind: "Pod", Namespace: "kube-system", Name: "debug"}
	at := func(obj Result, line int, m policies.Metadata, path, msg string) Result {
		obj.Line = line
		obj.Finding = policies.Finding{
			Policy: m.ID, Title: m.Title, Message: msg, Severity: m.Severity, Action: m.Action,
			Path: path, Controls: m.Controls, Remediation: m.Remediation,
		}
		return obj
	}
	return &Report{
		Tool:     "tollgate",
		Version:  "1.2.3",
		Files:    4,
		Objects:  7,
		Policies: []policies.Metadata{slow, limits, nonRoot, privileged, latest},
		Results: []Result{
			at(nightly, 55, latest, "spec.jobTemplate.spec.template.spec.containers[0].image",
				"image \"busybox:latest\" uses the latest tag\nPin a version or a digest."),
			at(ns, 4, policies.Metadata{
				ID: "namespace-labels", Title: "Namespaces declare a Pod Security level",
				Severity: policies.SeverityMedium, Action: policies.ActionWarn,
			}, `metadata.labels["pod-security.kubernetes.io/enforce"]`, "label is \x1b[31mmissing\x1b[0m, 100% sure: add it"),
			at(web, 24, privileged, "spec.template.spec.containers[0].securityContext.privileged",
				`container "app" is privileged: <b>root</b> & 'host' access`),
			at(pod, 9, privileged, "spec.containers[0].securityContext.privileged", `container "shell" is privileged`),
			at(web, 20, nonRoot, "spec.template.spec.containers[0].securityContext.runAsNonRoot",
				"runAsNonRoot is not set — setzen Sie es auf true ✓"),
		},
		Problems: []Problem{
			{File: "deploy/web.yaml", Line: 40, Policy: "custom-slow", Message: `rego_type_error: "x" & <y> undefined`},
			{Policy: "custom-slow", Message: "evaluation timed out after 2s"},
			{File: "broken.yaml", Line: 3, Message: "yaml: line 3: mapping values are not allowed in this context"},
		},
	}
}

// cleanReport is a check that passed.
func cleanReport() *Report {
	return &Report{
		Tool:    "tollgate",
		Version: "1.2.3",
		Files:   1,
		Objects: 2,
		Policies: []policies.Metadata{{
			ID: "pss-baseline-privileged", Title: "Privileged containers are not allowed",
			Severity: policies.SeverityCritical, Action: policies.ActionEnforce, Scope: policies.ScopePod,
		}},
	}
}

func render(t *testing.T, f Format, r *Report) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, f, r); err != nil {
		t.Fatalf("Write(%s): %v", f, err)
	}
	return buf.Bytes()
}

func TestWriteGolden(t *testing.T) {
	reports := []struct {
		name   string
		report func() *Report
	}{
		{"full", fullReport},
		{"clean", cleanReport},
	}
	for _, rep := range reports {
		for _, f := range Formats() {
			t.Run(rep.name+"/"+string(f), func(t *testing.T) {
				got := render(t, f, rep.report())
				golden := filepath.Join("testdata", rep.name+"."+string(f)+".golden")
				if *update {
					if err := os.WriteFile(golden, got, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("reading golden file (run go test -update to create it): %v", err)
				}
				if diff := cmp.Diff(string(want), string(got)); diff != "" {
					t.Errorf("output differs from %s (-want +got):\n%s", golden, diff)
				}
			})
		}
	}
}

// TestWriteIgnoresInputOrder checks every format sorts: reversing the
// results and problems must not change a byte.
func TestWriteIgnoresInputOrder(t *testing.T) {
	for _, f := range Formats() {
		t.Run(string(f), func(t *testing.T) {
			r := fullReport()
			want := render(t, f, r)
			slices.Reverse(r.Results)
			slices.Reverse(r.Problems)
			slices.Reverse(r.Policies)
			if diff := cmp.Diff(string(want), string(render(t, f, r))); diff != "" {
				t.Errorf("output depends on input order (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in      string
		want    Format
		wantErr string
	}{
		{in: "text", want: FormatText},
		{in: "json", want: FormatJSON},
		{in: "sarif", want: FormatSARIF},
		{in: "junit", want: FormatJUnit},
		{in: "github", want: FormatGitHub},
		{in: " SARIF ", want: FormatSARIF},
		{in: "xml", wantErr: `unknown output format "xml" (want text, json, sarif, junit or github)`},
		{in: "", wantErr: `unknown output format "" (want text, json, sarif, junit or github)`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseFormat(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ParseFormat(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseFormat(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseFormat(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteErrors(t *testing.T) {
	tests := []struct {
		name    string
		format  Format
		report  *Report
		wantErr string
	}{
		{name: "unknown format", format: "yaml", report: cleanReport(), wantErr: `writing output: unknown format "yaml" (want text, json, sarif, junit or github)`},
		{name: "nil report", format: FormatText, wantErr: "writing text output: no report"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Write(&buf, tt.format, tt.report)
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Write error = %v, want %q", err, tt.wantErr)
			}
			if buf.Len() != 0 {
				t.Errorf("Write wrote %q on error", buf.String())
			}
		})
	}
	t.Run("writer fails", func(t *testing.T) {
		for _, f := range Formats() {
			err := Write(failingWriter{}, f, fullReport())
			if err == nil || !strings.Contains(err.Error(), "disk full") || !strings.HasPrefix(err.Error(), "writing "+string(f)+" output: ") {
				t.Errorf("Write(%s) to a failing writer: error = %v", f, err)
			}
		}
	})
}

func TestSummary(t *testing.T) {
	tests := []struct {
		name   string
		report *Report
		want   Summary
	}{
		{
			name:   "full",
			report: fullReport(),
			want: Summary{
				Objects: 7, Files: 4, Findings: 5,
				ByAction:   ActionCounts{Enforce: 2, Warn: 2, Audit: 1},
				BySeverity: SeverityCounts{Critical: 2, High: 1, Medium: 1, Low: 1},
				Problems:   3,
			},
		},
		{
			name:   "clean",
			report: cleanReport(),
			want:   Summary{Objects: 2, Files: 1, Passed: true},
		},
		{
			name: "warnings only pass",
			report: &Report{Objects: 1, Files: 1, Results: []Result{
				{Finding: policies.Finding{Action: policies.ActionWarn, Severity: policies.SeverityHigh}},
				{Finding: policies.Finding{Action: policies.ActionAudit, Severity: policies.SeverityInfo}},
			}},
			want: Summary{
				Objects: 1, Files: 1, Findings: 2,
				ByAction:   ActionCounts{Warn: 1, Audit: 1},
				BySeverity: SeverityCounts{High: 1, Info: 1},
				Passed:     true,
			},
		},
		{
			name:   "a problem alone fails",
			report: &Report{Problems: []Problem{{File: "x.yaml", Message: "bad"}}},
			want:   Summary{Problems: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.report.Summary()); diff != "" {
				t.Errorf("Summary() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSummaryLine(t *testing.T) {
	tests := []struct {
		name string
		s    Summary
		want string
	}{
		{
			name: "failed",
			s:    Summary{Objects: 3, Files: 2, ByAction: ActionCounts{Enforce: 2, Warn: 1}},
			want: "3 objects checked in 2 files: 2 enforce, 1 warn, 0 audit findings — FAILED",
		},
		{
			name: "passed singular",
			s:    Summary{Objects: 1, Files: 1, Passed: true},
			want: "1 object checked in 1 file: 0 enforce, 0 warn, 0 audit findings — PASSED",
		},
		{
			name: "problems",
			s:    Summary{Objects: 0, Files: 1, Problems: 1},
			want: "0 objects checked in 1 file: 0 enforce, 0 warn, 0 audit findings, 1 problem — FAILED",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := summaryLine(tt.s); got != tt.want {
				t.Errorf("summaryLine() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPrintable(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"plain text", "plain text"},
		{"tabs\tand\nnewlines", "tabs\tand\nnewlines"},
		{"unicode — ü ✓", "unicode — ü ✓"},
		{"\x1b[31mred\x1b[0m", `\x1b[31mred\x1b[0m`},
		{"carriage\rreturn", `carriage\x0dreturn`},
		{"bidi \u202eevil", `bidi \u202eevil`},
		{"bad \xff utf8", "bad \uFFFD utf8"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := printable(tt.in); got != tt.want {
				t.Errorf("printable(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
