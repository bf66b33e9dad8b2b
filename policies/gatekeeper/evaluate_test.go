package gatekeeper_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/gatekeeper"
)

func TestPolicies(t *testing.T) {
	e := compile(t, load(t, "testdata/policies"), gatekeeper.Options{})
	labelsCommon := policies.Metadata{
		Title:       "Required labels",
		Description: "Objects carry the labels the platform relies on.",
		Severity:    policies.SeverityHigh,
		Scope:       policies.ScopeObject,
		Controls:    []policies.Control{{Framework: "cis", ID: "5.7.1"}, {Framework: "nsa", ID: "labels"}},
		Remediation: "Add the missing labels to metadata.labels.",
	}
	with := func(m policies.Metadata, set func(*policies.Metadata)) policies.Metadata {
		set(&m)
		return m
	}
	want := []policies.Metadata{
		{
			ID: "TgAllowedRegistries/internal-registry", Title: "Allowed registries",
			Severity: policies.SeverityMedium, Action: policies.ActionEnforce, Scope: policies.ScopeObject,
			Kinds:       []string{"Deployment", "Pod", "apps/Deployment", "apps/Pod"},
			Remediation: "Mirror the image to registry.internal.example.",
			Source:      "testdata/policies/registries.yaml:51",
		},
		{
			ID: "TgOwnerChange/owner-is-sticky", Title: "Owner changes",
			Severity: policies.SeverityMedium, Action: policies.ActionEnforce, Scope: policies.ScopeObject,
			Kinds:  []string{"ConfigMap"},
			Source: "testdata/policies/requestinfo.yaml:40",
		},
		{
			// The constraint's severity wins over the template's.
			ID: "TgReplicaLimit/max-five", Title: "Replica limit",
			Severity: policies.SeverityMedium, Action: policies.ActionEnforce, Scope: policies.ScopeObject,
			Kinds:  []string{"apps/Deployment"},
			Source: "testdata/policies/replicas.yaml:33",
		},
		with(labelsCommon, func(m *policies.Metadata) {
			m.ID, m.Action, m.Kinds, m.Source = "TgRequiredLabels/cost-center-warn", policies.ActionWarn, []string{"Pod"}, "testdata/policies/requiredlabels.yaml:53"
			m.Severity, m.Controls = policies.SeverityLow, []policies.Control{{Framework: "finops", ID: "tagging"}}
		}),
		with(labelsCommon, func(m *policies.Metadata) {
			// Scoped: the strongest action of any enforcement point.
			m.ID, m.Action, m.Kinds, m.Source = "TgRequiredLabels/namespace-contact", policies.ActionEnforce, []string{"Namespace"}, "testdata/policies/requiredlabels.yaml:92"
		}),
		with(labelsCommon, func(m *policies.Metadata) {
			m.ID, m.Action, m.Kinds, m.Source = "TgRequiredLabels/owner-dryrun", policies.ActionAudit, []string{"Pod"}, "testdata/policies/requiredlabels.yaml:73"
		}),
		with(labelsCommon, func(m *policies.Metadata) {
			m.ID, m.Action, m.Kinds, m.Source = "TgRequiredLabels/team-label", policies.ActionEnforce, []string{"Pod", "apps/Deployment"}, "testdata/policies/requiredlabels.yaml:38"
		}),
		{
			ID: "TgUniqueIngressHost/unique-hosts", Title: "Unique ingress host",
			Severity: policies.SeverityMedium, Action: policies.ActionEnforce, Scope: policies.ScopeObject,
			Kinds:  []string{"networking.k8s.io/Ingress"},
			Source: "testdata/policies/uniquehost.yaml:30",
		},
	}
	if diff := cmp.Diff(want, e.Policies(), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Policies() (-want +got):\n%s", diff)
	}

	wantKinds := []policies.GroupVersionKind{
		{Kind: "ConfigMap"}, {Kind: "Deployment"}, {Kind: "Namespace"}, {Kind: "Pod"},
		{Group: "apps", Kind: "Deployment"}, {Group: "apps", Kind: "Pod"},
		{Group: "networking.k8s.io", Kind: "Ingress"},
	}
	if diff := cmp.Diff(wantKinds, e.Kinds()); diff != "" {
		t.Errorf("Kinds() (-want +got):\n%s", diff)
	}
}

func TestKindsWildcard(t *testing.T) {
	e := compile(t, load(t, "testdata/echo"), gatekeeper.Options{})
	if diff := cmp.Diff([]policies.GroupVersionKind{{Group: "*", Kind: "*"}}, e.Kinds()); diff != "" {
		t.Errorf("Kinds() of a constraint without match (-want +got):\n%s", diff)
	}
}

// finding is what the tests compare of a policies.Finding.
type finding struct {
	Policy   string
	Action   policies.Action
	Severity policies.Severity
	Message  string
	Path     string
}

func findings(d *policies.Decision) []finding {
	out := []finding{}
	for _, f := range d.Findings {
		out = append(out, finding{f.Policy, f.Action, f.Severity, f.Message, f.Path})
	}
	return out
}

func errorsOf(d *policies.Decision) map[string]string {
	out := map[string]string{}
	for _, e := range d.Errors {
		out[e.Policy] = e.Err.Error()
	}
	return out
}

// teamMissing is TgRequiredLabels/team-label's finding.
func teamMissing() finding {
	return finding{"TgRequiredLabels/team-label", policies.ActionEnforce, policies.SeverityHigh, "label team is missing", "metadata.labels.team"}
}

func TestEvaluate(t *testing.T) {
	e := compile(t, load(t, "testdata/policies"), gatekeeper.Options{})
	billing := namespace("prod-a", "billing", "enabled")
	plain := namespace("staging")
	goodPod := object("v1", "Pod", "web", in("prod-a"), labels("team", "shop", "cost-center", "42", "owner", "ann", "tier", "frontend"), images("registry.internal.example/web:1"))
	const (
		team       = "TgRequiredLabels/team-label"
		costCenter = "TgRequiredLabels/cost-center-warn"
		owner      = "TgRequiredLabels/owner-dryrun"
		contact    = "TgRequiredLabels/namespace-contact"
		registry   = "TgAllowedRegistries/internal-registry"
		replicas   = "TgReplicaLimit/max-five"
		sticky     = "TgOwnerChange/owner-is-sticky"
	)
	teamMissing := teamMissing()

	tests := []struct {
		name    string
		in      *policies.Input
		want    []finding
		applied int
	}{
		{
			name: "every action: deny, warn, dryrun; path from details",
			in: checked(object("v1", "Pod", "web", in("prod-a"), labels("tier", "frontend"), images("registry.internal.example/a", "docker.io/nginx")),
				billing),
			want: []finding{
				{registry, policies.ActionEnforce, policies.SeverityMedium, `container c1: image docker.io/nginx is not from ["registry.internal.example/"]`, "spec.containers[1].image"},
				{costCenter, policies.ActionWarn, policies.SeverityLow, "label cost-center must be set for chargeback", "metadata.labels.cost-center"},
				{owner, policies.ActionAudit, policies.SeverityHigh, "label owner is missing", "metadata.labels.owner"},
				teamMissing,
			},
			applied: 4,
		},
		{
			name:    "a compliant pod: nothing found, four constraints passed",
			in:      audited(goodPod, billing),
			want:    []finding{},
			applied: 4,
		},
		{
			name:    "excludedNamespaces prefix glob kube-*",
			in:      checked(object("v1", "Pod", "dns", in("kube-system"), images("registry.internal.example/dns")), namespace("kube-system")),
			want:    []finding{},
			applied: 1,
		},
		{
			name:    "excludedNamespaces suffix glob *-system",
			in:      checked(object("v1", "Pod", "ctl", in("gatekeeper-system"), images("registry.internal.example/ctl")), namespace("gatekeeper-system")),
			want:    []finding{},
			applied: 1,
		},
		{
			name:    "namespaceSelector: a namespace without billing is not selected",
			in:      checked(object("v1", "Pod", "web", in("staging"), labels("team", "shop"), images("registry.internal.example/web")), plain),
			want:    []finding{},
			applied: 2,
		},
		{
			name:    "labelSelector: tier=frontend only",
			in:      checked(object("v1", "Pod", "db", in("prod-a"), labels("team", "shop", "cost-center", "1", "tier", "backend"), images("registry.internal.example/db")), billing),
			want:    []finding{},
			applied: 3,
		},
		{
			name:    "namespaces glob prod-*",
			in:      checked(object("v1", "Pod", "web", in("dev"), labels("team", "shop", "tier", "frontend"), images("registry.internal.example/web")), namespace("dev")),
			want:    []finding{},
			applied: 2,
		},
		{
			// Gatekeeper takes an object without a namespace for a
			// cluster-scoped one: scope Namespaced skips it, and a
			// namespaceSelector selects it.
			name: "scope Namespaced: a pod with no namespace is not selected by internal-registry",
			in:   checked(object("v1", "Pod", "web", images("docker.io/nginx")), nil),
			want: []finding{
				{costCenter, policies.ActionWarn, policies.SeverityLow, "label cost-center must be set for chargeback", "metadata.labels.cost-center"},
				teamMissing,
			},
			applied: 2,
		},
		{
			name: "kinds: a Deployment, its pod template and a CEL template",
			in:   checked(object("apps/v1", "Deployment", "web", in("staging"), images("docker.io/nginx"), field("replicas", 7)), plain),
			want: []finding{
				{registry, policies.ActionEnforce, policies.SeverityMedium, `container c0: image docker.io/nginx is not from ["registry.internal.example/"]`, "spec.template.spec.containers[0].image"},
				{replicas, policies.ActionEnforce, policies.SeverityMedium, "replicas 7 exceed the limit of 5", ""},
				teamMissing,
			},
			applied: 3,
		},
		{
			name:    "CEL: within the limit",
			in:      checked(object("apps/v1", "Deployment", "web", in("staging"), labels("team", "a"), images("registry.internal.example/w"), field("replicas", 5)), plain),
			want:    []finding{},
			applied: 3,
		},
		{
			name:    "CEL sees namespaceObject and request.operation in admission",
			in:      admitted("UPDATE", object("apps/v1", "Deployment", "web", in("ice"), labels("team", "a"), images("registry.internal.example/w")), object("apps/v1", "Deployment", "web", in("ice")), namespace("ice", "frozen", "yes"), "bob"),
			want:    []finding{{replicas, policies.ActionEnforce, policies.SeverityMedium, "the namespace is frozen", ""}},
			applied: 3,
		},
		{
			name:    "CEL: a frozen namespace still admits a CREATE",
			in:      admitted("CREATE", object("apps/v1", "Deployment", "web", in("ice"), labels("team", "a"), images("registry.internal.example/w")), nil, namespace("ice", "frozen", "yes"), "bob"),
			want:    []finding{},
			applied: 3,
		},
		{
			name:    "scoped: deny at the webhook",
			in:      admitted("CREATE", namespace("team-a"), nil, nil, "bob"),
			want:    []finding{{contact, policies.ActionEnforce, policies.SeverityHigh, "label contact is missing", "metadata.labels.contact"}},
			applied: 1,
		},
		{
			name:    "scoped: warn in gator (check)",
			in:      checked(namespace("team-a"), nil),
			want:    []finding{{contact, policies.ActionWarn, policies.SeverityHigh, "label contact is missing", "metadata.labels.contact"}},
			applied: 1,
		},
		{
			name:    "scoped: the audit is not listed, so the constraint does not apply there",
			in:      audited(namespace("team-a"), nil),
			want:    []finding{},
			applied: 0,
		},
		{
			name:    "name glob team-*",
			in:      admitted("CREATE", namespace("shop"), nil, nil, "bob"),
			want:    []finding{},
			applied: 0,
		},
		{
			name: "input.review: operation, userInfo and oldObject in admission",
			in: admitted("UPDATE", object("v1", "ConfigMap", "cfg", in("staging"), labels("owner", "bob")),
				object("v1", "ConfigMap", "cfg", in("staging"), labels("owner", "ann")), plain, "bob"),
			want:    []finding{{sticky, policies.ActionEnforce, policies.SeverityMedium, `bob may not change owner ann to "bob"`, ""}},
			applied: 1,
		},
		{
			name: "input.review: an admin may change the owner",
			in: admitted("UPDATE", object("v1", "ConfigMap", "cfg", in("staging"), labels("owner", "bob")),
				object("v1", "ConfigMap", "cfg", in("staging"), labels("owner", "ann")), plain, "platform-admin"),
			want:    []finding{},
			applied: 1,
		},
		{
			name:    "template operations: an UPDATE-only template is not run on CREATE at the webhook",
			in:      admitted("CREATE", object("v1", "ConfigMap", "cfg", in("staging"), labels("owner", "bob")), nil, plain, "bob"),
			want:    []finding{},
			applied: 0,
		},
		{
			name:    "DELETE reviews the old object",
			in:      admitted("DELETE", nil, object("v1", "Pod", "web", in("staging"), images("registry.internal.example/w")), plain, "bob"),
			want:    []finding{teamMissing},
			applied: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := e.Evaluate(context.Background(), tt.in)
			if len(d.Errors) > 0 {
				t.Errorf("Errors: %v", errorsOf(d))
			}
			if diff := cmp.Diff(tt.want, findings(d)); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
			if d.Applied != tt.applied {
				t.Errorf("Applied = %d, want %d", d.Applied, tt.applied)
			}
		})
	}
}

func TestFindingMetadata(t *testing.T) {
	e := compile(t, load(t, "testdata/policies"), gatekeeper.Options{})
	d := e.Evaluate(context.Background(), checked(object("v1", "Pod", "web", in("prod-a"), images("registry.internal.example/a")), namespace("prod-a", "billing", "enabled")))
	want := []policies.Finding{
		{
			Policy: "TgRequiredLabels/cost-center-warn", Title: "Required labels",
			Message: "label cost-center must be set for chargeback", Severity: policies.SeverityLow, Action: policies.ActionWarn,
			Path: "metadata.labels.cost-center", Controls: []policies.Control{{Framework: "finops", ID: "tagging"}},
			Remediation: "Add the missing labels to metadata.labels.",
		},
		{
			Policy: "TgRequiredLabels/team-label", Title: "Required labels",
			Message: "label team is missing", Severity: policies.SeverityHigh, Action: policies.ActionEnforce,
			Path: "metadata.labels.team", Controls: []policies.Control{{Framework: "cis", ID: "5.7.1"}, {Framework: "nsa", ID: "labels"}},
			Remediation: "Add the missing labels to metadata.labels.",
		},
	}
	if diff := cmp.Diff(want, d.Findings); diff != "" {
		t.Errorf("Findings (-want +got):\n%s", diff)
	}
	if !d.Denied() {
		t.Error("Denied() = false with an enforcing finding")
	}
}
