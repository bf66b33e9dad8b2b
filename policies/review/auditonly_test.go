package review_test

import (
	"context"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/library"
	"github.com/tollgate-dev/tollgate/policies/review"
)

// The library's policies about the cluster's own configuration that only
// the audit runs add no kind to the webhooks (a Node or an EndpointSlice
// write never waits on Tollgate), while the audit lists them; the RBAC
// policies warn at admission.
func TestAuditOnlyPolicies(t *testing.T) {
	mods, err := policies.ReadFS(library.FS(), "library", false)
	if err != nil {
		t.Fatal(err)
	}
	e, err := policies.New(context.Background(), policies.Options{Modules: mods})
	if err != nil {
		t.Fatal(err)
	}
	set := review.NewSet(e, nil, 1)
	_, webhook := review.Kinds(set)
	audited := review.AuditedKinds(set)
	for _, gk := range []schema.GroupKind{{Kind: "Node"}, {Kind: "Endpoints"}, {Group: "discovery.k8s.io", Kind: "EndpointSlice"}, {Kind: "ConfigMap"}, {Group: "tollgate.dev", Kind: "ClusterFacts"}, {Group: "certificates.k8s.io", Kind: "CertificateSigningRequest"}} {
		if slices.Contains(webhook, gk) {
			t.Errorf("the webhooks intercept %s for an audit-only policy", gk)
		}
		if !slices.Contains(audited, gk) {
			t.Errorf("the audit does not list %s", gk)
		}
	}
	// Tollgate never lists Secrets.
	if slices.Contains(audited, schema.GroupKind{Kind: "Secret"}) || slices.Contains(webhook, schema.GroupKind{Kind: "Secret"}) {
		t.Error("Secrets are audited or intercepted")
	}
	for _, gk := range []schema.GroupKind{{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}, {Group: "rbac.authorization.k8s.io", Kind: "RoleBinding"}, {Kind: "ServiceAccount"}} {
		if !slices.Contains(webhook, gk) {
			t.Errorf("the webhooks do not intercept %s: its RBAC policies warn at admission", gk)
		}
	}

	binding := map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
		"metadata": map[string]any{"name": "ci-admin"},
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
		"subjects": []any{map[string]any{"kind": "ServiceAccount", "name": "deployer", "namespace": "ci"}},
	}
	node := map[string]any{"apiVersion": "v1", "kind": "Node", "metadata": map[string]any{"name": "n1"},
		"status": map[string]any{"addresses": []any{map[string]any{"type": "ExternalIP", "address": "203.0.113.7"}}}}
	for _, tc := range []struct {
		obj    map[string]any
		source string
		want   string
	}{
		{binding, policies.SourceAdmission, "rbac-cluster-admin"},
		{binding, policies.SourceAudit, "rbac-cluster-admin"},
		{node, policies.SourceAdmission, ""},
		{node, policies.SourceAudit, "nodes-segmentation"},
	} {
		in := policies.ObjectInput(tc.source, tc.obj, nil)
		if tc.source == policies.SourceAdmission {
			in.Operation = "CREATE"
		}
		d := e.Evaluate(context.Background(), in)
		var got []string
		for _, f := range d.Findings {
			got = append(got, f.Policy)
		}
		if tc.want == "" && len(got) > 0 || tc.want != "" && !slices.Contains(got, tc.want) {
			t.Errorf("%s %s: findings %v, want %q", tc.source, tc.obj["kind"], got, tc.want)
		}
	}
}
