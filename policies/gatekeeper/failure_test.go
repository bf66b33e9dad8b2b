package gatekeeper_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/gatekeeper"
)

// TestEvaluateFailures checks that a constraint that cannot be evaluated is
// an error of its own while the others still report.
func TestEvaluateFailures(t *testing.T) {
	e := compile(t, load(t, "testdata/policies", "testdata/faulty"), gatekeeper.Options{})
	pod := object("v1", "Pod", "web", in("staging"), images("registry.internal.example/w"))

	tests := []struct {
		name    string
		in      *policies.Input
		want    []finding
		errs    map[string]string // policy: part of the error
		applied int
	}{
		{
			name: "a Rego conflict and a CEL runtime error are errors; the other constraints report",
			in:   checked(pod, namespace("staging")),
			want: []finding{teamMissing()},
			errs: map[string]string{
				"TgConflict/conflict":      "line 9: eval_conflict_error",
				"TgCELRuntime/cel-runtime": "expression 'variables.anyObject.spec.missing == 1' resulted in error: no such key: missing",
			},
			// team-label, internal-registry, conflict, cel-runtime and
			// cel-ignored (failurePolicy Ignore: it passes).
			applied: 5,
		},
		{
			name: "a namespaceSelector for a namespaced object whose Namespace is not known",
			in:   checked(object("v1", "Pod", "web", in("prod-b"), labels("team", "a"), images("registry.internal.example/w")), nil),
			want: []finding{},
			errs: map[string]string{
				"TgConflict/conflict":               "eval_conflict_error",
				"TgCELRuntime/cel-runtime":          "no such key: missing",
				"TgRequiredLabels/cost-center-warn": "namespace selector for namespace-scoped object but missing Namespace",
			},
			applied: 6,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := e.Evaluate(context.Background(), tt.in)
			if diff := cmp.Diff(tt.want, findings(d)); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
			got := errorsOf(d)
			if diff := cmp.Diff(keys(tt.errs), keys(got)); diff != "" {
				t.Errorf("policies in error (-want +got):\n%s", diff)
			}
			for p, msg := range tt.errs {
				if !strings.Contains(got[p], msg) {
					t.Errorf("error of %s = %q, want it to say %q", p, got[p], msg)
				}
			}
			if d.Applied != tt.applied {
				t.Errorf("Applied = %d, want %d", d.Applied, tt.applied)
			}
		})
	}
}

func keys(m map[string]string) []string {
	out := []string{}
	for k := range m {
		out = append(out, k)
	}
	slicesSort(out)
	return out
}

func TestEvaluateInvalidInput(t *testing.T) {
	e := compile(t, load(t, "testdata/echo"), gatekeeper.Options{})
	tests := []struct {
		name string
		in   *policies.Input
		msg  string
	}{
		{"an unknown source", &policies.Input{Source: "cron", Object: object("v1", "Pod", "p")}, `input source "cron"`},
		{"no object in the audit", &policies.Input{Source: policies.SourceAudit}, "no object to review"},
		{"a DELETE without the old object", &policies.Input{Source: policies.SourceAdmission, Operation: "DELETE", Kind: policies.GroupVersionKind{Version: "v1", Kind: "Pod"}}, "oldObject cannot be nil for DELETE"},
		{"a Namespace that is not one", checked(object("v1", "Pod", "p", in("a")), map[string]any{"metadata": "a string"}), "reading the Namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := e.Evaluate(context.Background(), tt.in)
			if len(d.Findings) != 0 {
				t.Errorf("findings %+v", d.Findings)
			}
			if len(d.Errors) != 1 || d.Errors[0].Policy != "TgReviewEcho/echo" || !strings.Contains(d.Errors[0].Error(), tt.msg) {
				t.Errorf("errors %v, want one for TgReviewEcho/echo saying %q", errorsOf(d), tt.msg)
			}
		})
	}
}

func TestEvaluateTimeout(t *testing.T) {
	e := compile(t, load(t, "testdata/slow", "testdata/echo"), gatekeeper.Options{PolicyTimeout: 50 * time.Millisecond})
	start := time.Now()
	d := e.Evaluate(context.Background(), checked(object("v1", "Pod", "web"), nil))
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Evaluate took %s with a 50ms timeout", took)
	}
	var slow *policies.PolicyError
	for _, err := range d.Errors {
		if err.Policy == "TgSlow/slow" {
			slow = err
		}
	}
	if slow == nil {
		t.Fatalf("no error for TgSlow/slow: findings %+v, errors %v", d.Findings, errorsOf(d))
	}
	if !errors.Is(slow, context.DeadlineExceeded) {
		t.Errorf("error %v is not context.DeadlineExceeded", slow)
	}
	for _, f := range d.Findings {
		if f.Policy == "TgSlow/slow" {
			t.Errorf("a timed-out constraint reported %+v", f)
		}
	}
}
