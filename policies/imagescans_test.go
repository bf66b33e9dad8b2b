package policies_test

import (
	"context"
	"testing"

	"github.com/tollgate-dev/tollgate/policies"
)

const criticalScanPolicy = `# METADATA
# title: No critical vulnerability
# custom:
#   id: test-no-critical
#   action: warn
#   severity: high
#   scope: pod
package test.nocritical

violation contains {"msg": sprintf("%s has %d critical", [c.image, n]), "path": ["spec", "containers", i, "image"]} if {
	some i, c in input.object.spec.containers
	n := input.imageScans[c.image].counts.CRITICAL
	n > 0
}
`

// TestImageScansReachPoliciesAndKeyTheCache checks that input.imageScans
// is what policies see, and that a cached verdict is never served for the
// same object with a different scan (the scan is part of what the policy
// reads).
func TestImageScansReachPoliciesAndKeyTheCache(t *testing.T) {
	e := newEngine(t, map[string]string{"p.rego": criticalScanPolicy}, func(o *policies.Options) {
		o.VerdictCache = policies.DefaultVerdictCache
	})
	pod := func() map[string]any {
		return map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "p", "namespace": "shop"},
			"spec": map[string]any{"containers": []any{map[string]any{"name": "app", "image": "registry.example/app:1"}}}}
	}
	judge := func(scans map[string]any) int {
		in := policies.ObjectInput(policies.SourceAudit, pod(), nil)
		in.ImageScans = scans
		d := e.Evaluate(context.Background(), in)
		if len(d.Errors) > 0 {
			t.Fatal(d.Errors)
		}
		return len(d.Findings)
	}
	critical := map[string]any{"registry.example/app:1": map[string]any{"status": "scanned", "counts": map[string]any{"CRITICAL": int64(2)}}}
	clean := map[string]any{"registry.example/app:1": map[string]any{"status": "scanned", "counts": map[string]any{"CRITICAL": int64(0)}}}
	for round := range 2 { // the second round is served from the cache
		if n := judge(critical); n != 1 {
			t.Errorf("round %d: with a critical scan: %d findings, want 1", round, n)
		}
		if n := judge(clean); n != 0 {
			t.Errorf("round %d: with a clean scan: %d findings, want 0", round, n)
		}
		if n := judge(nil); n != 0 {
			t.Errorf("round %d: without scans: %d findings, want 0", round, n)
		}
	}
}

// TestPolicyReadingNoObjectOnAPodController is a policy that reads neither
// input.object nor input.pod, applied to a kind with a pod template: the
// engine builds no object, and must build no pod view from it either.
func TestPolicyReadingNoObjectOnAPodController(t *testing.T) {
	e := newEngine(t, map[string]string{"p.rego": `# METADATA
# title: Deletes are noted
# custom:
#   id: test-deletes
#   action: warn
#   severity: low
package test.deletes

violation contains "deleted" if input.operation == "DELETE"
`})
	job := map[string]any{"apiVersion": "batch/v1", "kind": "Job", "metadata": map[string]any{"name": "j", "namespace": "shop"},
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "c", "image": "busybox:1"}}}}}}
	in := &policies.Input{Kind: policies.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"}, Operation: "DELETE", OldObject: job, Source: policies.SourceAdmission}
	d := e.Evaluate(context.Background(), in)
	if len(d.Errors) > 0 || len(d.Findings) != 1 {
		t.Fatalf("findings %+v, errors %v; want the one DELETE finding", d.Findings, d.Errors)
	}
}
