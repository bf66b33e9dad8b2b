package policies

import (
	"strings"
	"testing"
	"time"
)

// labelled is a Deployment with labels, in a namespace with labels.
func labelled(ns string, labels, nsLabels map[string]any) *Input {
	return ObjectInput(SourceAdmission, map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "w", "namespace": ns, "labels": labels},
	}, map[string]any{"metadata": map[string]any{"name": ns, "labels": nsLabels}})
}

func TestExceptions(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	legacy := Exception{
		Namespace: "platform-exceptions", Name: "legacy-app",
		Policies: []string{"pss-baseline-privileged"},
		Match:    ExceptionMatch{Namespaces: []string{"shop"}, Names: []string{"legacy-app*"}},
		Reason:   "vendor agent needs it", Ticket: "SEC-42", Approver: "security@corp",
		Expires: now.Add(24 * time.Hour),
	}
	deployment := func(ns, name string) *Input {
		return ObjectInput(SourceAdmission, map[string]any{
			"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"name": name, "namespace": ns, "labels": map[string]any{"app": "legacy"}},
		}, nil)
	}
	cases := []struct {
		name   string
		x      func(Exception) Exception
		in     *Input
		policy string
		waived bool
	}{
		{"matching name glob, namespace and policy", nil, deployment("shop", "legacy-app-7d9c"), "pss-baseline-privileged", true},
		{"another policy", nil, deployment("shop", "legacy-app"), "pss-baseline-host-path", false},
		{"another namespace", nil, deployment("search", "legacy-app"), "pss-baseline-privileged", false},
		{"another name", nil, deployment("shop", "web"), "pss-baseline-privileged", false},
		{"expired", func(x Exception) Exception { x.Expires = now.Add(-time.Second); return x }, deployment("shop", "legacy-app"), "pss-baseline-privileged", false},
		{"expiring exactly now", func(x Exception) Exception { x.Expires = now; return x }, deployment("shop", "legacy-app"), "pss-baseline-privileged", false},
		{"label match", func(x Exception) Exception {
			x.Match = ExceptionMatch{Labels: map[string]string{"app": "legacy"}}
			return x
		}, deployment("search", "anything"), "pss-baseline-privileged", true},
		{"label mismatch", func(x Exception) Exception {
			x.Match = ExceptionMatch{Labels: map[string]string{"app": "other"}}
			return x
		}, deployment("shop", "legacy-app"), "pss-baseline-privileged", false},
		{"kind mismatch", func(x Exception) Exception { x.Match.Kinds = []string{"batch/Job"}; return x }, deployment("shop", "legacy-app"), "pss-baseline-privileged", false},
		// A workload cannot label itself into another team's exception:
		// a key its namespace sets is read from the namespace.
		{"label the namespace contradicts", func(x Exception) Exception {
			x.Match = ExceptionMatch{Labels: map[string]string{"team": "vendor"}}
			return x
		}, labelled("shop", map[string]any{"team": "vendor"}, map[string]any{"team": "payments"}), "pss-baseline-privileged", false},
		{"label the namespace sets", func(x Exception) Exception {
			x.Match = ExceptionMatch{Labels: map[string]string{"team": "vendor"}}
			return x
		}, labelled("vendor", nil, map[string]any{"team": "vendor"}), "pss-baseline-privileged", true},
		{"label the namespace leaves unset", func(x Exception) Exception {
			x.Match = ExceptionMatch{Labels: map[string]string{"app": "legacy"}}
			return x
		}, labelled("shop", map[string]any{"app": "legacy"}, map[string]any{"team": "payments"}), "pss-baseline-privileged", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := legacy
			if tc.x != nil {
				x = tc.x(x)
			}
			d := &Decision{Findings: []Finding{{Policy: tc.policy, Action: ActionEnforce}}}
			d.ApplyExceptions(tc.in, []Exception{x}, now)
			if got := d.Findings[0].Waived(); got != tc.waived {
				t.Fatalf("waived = %v, want %v", got, tc.waived)
			}
			if d.Denied() == tc.waived {
				t.Fatalf("denied = %v with waived = %v", d.Denied(), tc.waived)
			}
			if tc.waived && (d.Findings[0].Exception.Ticket != "SEC-42" || d.Findings[0].Exception.Approver != "security@corp") {
				t.Fatalf("exception ref = %+v", d.Findings[0].Exception)
			}
		})
	}
}

func TestExceptionValidate(t *testing.T) {
	x := Exception{Namespace: "ns", Name: "x", Policies: []string{"*"}, Match: ExceptionMatch{Names: []string{"["}}}
	err := x.Validate()
	for _, want := range []string{
		"spec.policies[0]: name a policy id; wildcards are not accepted",
		"spec.reason: required", "spec.approver: required", "spec.expiry: required",
		`spec.match.names[0]: "[" is not a glob`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
}
