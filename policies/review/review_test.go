package review_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/review"
)

// A Rego policy that flags pods labelled bad=true, in Warn by default.
const badLabel = `# METADATA
# custom:
#   id: bad-label
#   severity: low
#   action: warn
#   scope: object
package test.badlabel

violation contains {"msg": "labelled bad", "path": "metadata.labels.bad"} if input.object.metadata.labels.bad == "true"
`

func engine(t *testing.T) *policies.Engine {
	t.Helper()
	e, err := policies.New(context.Background(), policies.Options{Modules: []policies.Module{{Name: "bad.rego", Text: badLabel}}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// fixed is a plugin with a fixed answer, listing its policies.
type fixed struct {
	decision policies.Decision
	metas    []policies.Metadata
	calls    *int
}

func (f fixed) Evaluate(context.Context, *policies.Input) *policies.Decision {
	*f.calls++
	d := f.decision
	return &d
}

func (f fixed) Policies() []policies.Metadata { return f.metas }

func (f fixed) Kinds() []policies.GroupVersionKind {
	return []policies.GroupVersionKind{{Group: "example.com", Kind: "Widget"}, {Kind: "*"}}
}

func pod(labels map[string]any) map[string]any {
	return map[string]any{"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": "p", "namespace": "shop", "labels": labels},
		"spec":     map[string]any{"containers": []any{map[string]any{"name": "c", "image": "registry.example/app:1"}}}}
}

func TestReviewDecides(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	calls := 0
	gk := fixed{calls: &calls,
		decision: policies.Decision{Applied: 2,
			Findings: []policies.Finding{
				{Policy: "K8sRequiredLabels/team", Message: "needs team", Action: policies.ActionEnforce},
				{Policy: "K8sAudit/only", Message: "recorded", Action: policies.ActionAudit},
			},
			Errors: []*policies.PolicyError{
				{Policy: "K8sBroken/enforced", Err: errors.New("boom")},
				{Policy: "K8sBroken/warned", Err: errors.New("bang")},
			}},
		metas: []policies.Metadata{
			{ID: "K8sBroken/enforced", Action: policies.ActionEnforce},
			{ID: "K8sBroken/warned", Action: policies.ActionWarn},
		},
	}
	waiver := policies.Exception{Namespace: "exceptions", Name: "team", Policies: []string{"K8sRequiredLabels/team"},
		Match: policies.ExceptionMatch{Namespaces: []string{"legacy"}}, Reason: "migrating", Ticket: "T-1", Approver: "bob", Expires: now.Add(time.Hour)}

	cases := []struct {
		name          string
		in            *policies.Input
		denials, warn []string
		calls         int
	}{
		{
			name: "every source adds up",
			in:   policies.ObjectInput(policies.SourceCheck, pod(map[string]any{"bad": "true"}), nil),
			denials: []string{
				"[K8sRequiredLabels/team] needs team",
				"[K8sBroken/enforced] could not be evaluated: boom",
			},
			warn: []string{
				"[bad-label] metadata.labels.bad: labelled bad",
				"[K8sBroken/warned] could not be evaluated: bang",
			},
			calls: 1,
		},
		{
			name:  "a plugin skips the sources it does not judge",
			in:    &policies.Input{Kind: policies.GroupVersionKind{Version: "v1", Kind: "Pod"}, Object: pod(nil), Source: policies.SourceAdmission, Operation: "CREATE"},
			calls: 0,
		},
		{
			name: "an exception waives a finding: it neither denies nor warns",
			in: policies.ObjectInput(policies.SourceAudit, func() map[string]any {
				p := pod(nil)
				p["metadata"].(map[string]any)["namespace"] = "legacy"
				return p
			}(), nil),
			denials: []string{"[K8sBroken/enforced] could not be evaluated: boom"},
			warn:    []string{"[K8sBroken/warned] could not be evaluated: bang"},
			calls:   1,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			calls = 0
			set := review.NewSet(engine(t), []policies.Exception{waiver}, 3,
				review.Plugin{Name: "gatekeeper", Evaluator: gk, SkipSources: []string{policies.SourceAdmission}})
			v := review.New(review.Options{Now: func() time.Time { return now }}).Review(context.Background(), set, tc.in)
			if diff := cmp.Diff(tc.denials, v.Denials); diff != "" {
				t.Errorf("denials (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.warn, v.Warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			if calls != tc.calls {
				t.Errorf("plugin called %d times, want %d", calls, tc.calls)
			}
			if v.Allowed() != (len(tc.denials) == 0) {
				t.Errorf("Allowed() = %v with denials %v", v.Allowed(), v.Denials)
			}
		})
	}
	// The waived finding stays in the verdict, with who waived it.
	set := review.NewSet(engine(t), []policies.Exception{waiver}, 3, review.Plugin{Name: "gatekeeper", Evaluator: gk})
	p := pod(nil)
	p["metadata"].(map[string]any)["namespace"] = "legacy"
	v := review.New(review.Options{Now: func() time.Time { return now }}).Review(context.Background(), set, policies.ObjectInput(policies.SourceAudit, p, nil))
	var waived *policies.Finding
	for i := range v.Findings {
		if v.Findings[i].Policy == "K8sRequiredLabels/team" {
			waived = &v.Findings[i]
		}
	}
	if waived == nil || waived.Exception == nil || waived.Exception.Approver != "bob" {
		t.Fatalf("waived finding: %+v", waived)
	}
	// An expired exception waives nothing.
	late := review.New(review.Options{Now: func() time.Time { return now.Add(2 * time.Hour) }}).Review(context.Background(), set, policies.ObjectInput(policies.SourceAudit, p, nil))
	if late.Allowed() || late.Denials[0] != "[K8sRequiredLabels/team] needs team" {
		t.Errorf("expired exception still waives: %v", late.Denials)
	}
	if v.Applied < 3 {
		t.Errorf("Applied = %d: the engine's and the plugin's policies both count", v.Applied)
	}
}

// Gates run on every input; an ephemeral-containers update is judged on
// what it adds only.
func TestGatesAndEphemeralContainers(t *testing.T) {
	gate := review.EvaluatorFunc(func(_ context.Context, in *policies.Input) *policies.Decision {
		return &policies.Decision{Findings: []policies.Finding{
			{Policy: "budget/shop/monthly", Message: "over budget", Action: policies.ActionEnforce, Path: "spec.containers[0]"},
			{Policy: "debug", Message: "privileged debug container", Action: policies.ActionEnforce, Path: "spec.ephemeralContainers[0].securityContext"},
		}}
	})
	set := review.NewSet(engine(t), nil, 1)
	core := review.New(review.Options{Gates: []review.Evaluator{gate}})
	in := policies.ObjectInput(policies.SourceAdmission, pod(nil), nil)
	if v := core.Review(context.Background(), set, in); len(v.Denials) != 2 {
		t.Errorf("gate findings: %v", v.Denials)
	}
	in.SubResource = "ephemeralcontainers"
	v := core.Review(context.Background(), set, in)
	if diff := cmp.Diff([]string{"[debug] spec.ephemeralContainers[0].securityContext: privileged debug container"}, v.Denials); diff != "" {
		t.Errorf("kubectl debug judges what it adds (-want +got):\n%s", diff)
	}
}

func TestSetCataloguesAndKinds(t *testing.T) {
	calls := 0
	set := review.NewSet(engine(t), nil, 1, review.Plugin{Name: "gatekeeper", Evaluator: fixed{calls: &calls,
		metas: []policies.Metadata{{ID: "K8sX/y", Action: policies.ActionAudit}}}})
	if got := set.Action("bad-label"); got != policies.ActionWarn {
		t.Errorf("engine policy action %q", got)
	}
	if got := set.Action("K8sX/y"); got != policies.ActionAudit {
		t.Errorf("plugin policy action %q", got)
	}
	var ids []string
	for _, m := range set.Policies() {
		ids = append(ids, m.ID)
	}
	if diff := cmp.Diff([]string{"bad-label", "K8sX/y"}, ids); diff != "" {
		t.Errorf("policies (-want +got):\n%s", diff)
	}
	_, validate := review.Kinds(set)
	found := false
	for _, gk := range validate {
		if gk.Group == "example.com" && gk.Kind == "Widget" {
			found = true
		}
		if gk.Kind == "*" {
			t.Errorf("a plugin's \"*\" became intercepting everything")
		}
	}
	if !found {
		t.Errorf("a plugin's kinds are not judged: %v", validate)
	}
}

// mutating is a plugin that mutates ConfigMaps.
type mutating struct{ fixed }

func (mutating) MutatedKinds() []policies.GroupVersionKind {
	return []policies.GroupVersionKind{{Kind: "ConfigMap"}, {Kind: "*"}, {Group: "*", Kind: "Widget"}}
}

// TestMutatedKinds: the kinds a plugin mutates are intercepted by the
// mutating webhook (and judged); wildcards never are.
func TestMutatedKinds(t *testing.T) {
	calls := 0
	set := review.NewSet(engine(t), nil, 1, review.Plugin{Name: "kyverno", Evaluator: mutating{fixed{calls: &calls}}})
	mutate, validate := review.Kinds(set)
	cm := schema.GroupKind{Kind: "ConfigMap"}
	if !slices.Contains(mutate, cm) || !slices.Contains(validate, cm) {
		t.Errorf("ConfigMap: mutated %v, judged %v", slices.Contains(mutate, cm), slices.Contains(validate, cm))
	}
	for _, gk := range mutate {
		if gk.Kind == "*" || gk.Group == "*" {
			t.Errorf("a wildcard is intercepted: %v", gk)
		}
	}
	plain, _ := review.Kinds(review.NewSet(engine(t), nil, 1))
	if slices.Contains(plain, cm) {
		t.Error("ConfigMaps are mutated without a plugin that mutates them")
	}
}

func TestMutateAndApply(t *testing.T) {
	set := review.NewSet(engine(t), nil, 1)
	core := review.New(review.Options{})
	obj := pod(nil)
	in := policies.ObjectInput(policies.SourceCheck, obj, nil)
	m, notes, err := core.Mutate(context.Background(), set, in)
	if err != nil || len(notes) != 0 || m.Empty() {
		t.Fatalf("mutate: %v %v %+v", err, notes, m)
	}
	stored, err := review.Apply(obj, m)
	if err != nil {
		t.Fatal(err)
	}
	sc, _ := stored["spec"].(map[string]any)["securityContext"].(map[string]any)
	if sc["runAsNonRoot"] != true {
		t.Errorf("the stored object lacks the injected security context: %v", stored["spec"])
	}
	if _, ok := obj["spec"].(map[string]any)["securityContext"]; ok {
		t.Errorf("Apply changed its input")
	}
	// Applying again changes nothing: the mutation is idempotent.
	again, _, err := core.Mutate(context.Background(), set, policies.ObjectInput(policies.SourceCheck, stored, nil))
	if err != nil || !again.Empty() {
		t.Errorf("a second mutation patches %v (%v)", again.Patch, err)
	}
	// A patch that does not apply is an error, not a silent no-op.
	if _, err := review.Apply(obj, &policies.Mutation{Patch: []policies.PatchOperation{{Op: "replace", Path: "/spec/nothing/here", Value: 1}}}); err == nil {
		t.Errorf("a patch to a missing path applied")
	}
}
