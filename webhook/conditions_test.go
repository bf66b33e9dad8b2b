package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	celplugin "k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/cel/environment"

	"github.com/tollgate-dev/tollgate/policies"
	core "github.com/tollgate-dev/tollgate/policies/review"
)

// completePod holds every value the default config's mutations add to a
// Pod in namespace shop: the four ownership labels, the pod and container
// security context, requests and limits.
const completePod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"done","namespace":"shop",
 "labels":{"team":"payments","owner":"alice","cost-center":"CC-1234","environment":"prod"}},
 "spec":{"securityContext":{"runAsNonRoot":true,"seccompProfile":{"type":"RuntimeDefault"}},
  "initContainers":[{"name":"i","image":"nginx:1.27","securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}},
   "resources":{"requests":{"cpu":"100m","memory":"128Mi"},"limits":{"memory":"256Mi"}}}],
  "containers":[{"name":"c","image":"nginx:1.27","securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}},
   "resources":{"requests":{"cpu":"100m","memory":"128Mi"},"limits":{"memory":"256Mi"}}}]}}`

// podVariants are completePod with one change each: what the condition
// must see through (a missing value sends the call) and what it must not
// be fooled by (a forged value is judged by validation).
var podVariants = map[string]func(p map[string]any){
	"complete":  func(map[string]any) {},
	"no labels": func(p map[string]any) { delete(podMeta(p), "labels") },
	"no environment label": func(p map[string]any) {
		delete(podMeta(p)["labels"].(map[string]any), "environment")
	},
	"no pod security context": func(p map[string]any) { delete(spec(p), "securityContext") },
	"no seccomp type": func(p map[string]any) {
		spec(p)["securityContext"].(map[string]any)["seccompProfile"] = map[string]any{}
	},
	"init container without resources": func(p map[string]any) { delete(container(p, "initContainers"), "resources") },
	"container without limits":         func(p map[string]any) { delete(container(p, "containers")["resources"].(map[string]any), "limits") },
	"container without drop": func(p map[string]any) {
		delete(container(p, "containers")["securityContext"].(map[string]any), "capabilities")
	},
	"ephemeral container without context": func(p map[string]any) {
		spec(p)["ephemeralContainers"] = []any{map[string]any{"name": "debug", "image": "busybox:1.36"}}
	},
	"second container bare": func(p map[string]any) {
		spec(p)["containers"] = append(spec(p)["containers"].([]any), map[string]any{"name": "bare", "image": "nginx:1.27"})
	},
	"forged: escalation, root, no drop, wrong team": func(p map[string]any) {
		podMeta(p)["labels"].(map[string]any)["team"] = "someone-else"
		spec(p)["securityContext"].(map[string]any)["runAsNonRoot"] = false
		sc := container(p, "containers")["securityContext"].(map[string]any)
		sc["allowPrivilegeEscalation"] = true
		sc["capabilities"] = map[string]any{"drop": []any{}, "add": []any{"SYS_ADMIN"}}
		sc["privileged"] = true
	},
	"forged injected annotation, nothing injected": func(p map[string]any) {
		podMeta(p)["annotations"] = map[string]any{policies.InjectedAnnotation: `{"labels":["team","owner","cost-center","environment"],"resources":["containers/c"],"securityContext":["pod","containers/c"]}`}
		delete(podMeta(p), "labels")
		delete(spec(p), "securityContext")
		c := container(p, "containers")
		delete(c, "securityContext")
		delete(c, "resources")
	},
}

func podMeta(p map[string]any) map[string]any { return p["metadata"].(map[string]any) }
func spec(p map[string]any) map[string]any    { return p["spec"].(map[string]any) }
func container(p map[string]any, list string) map[string]any {
	return spec(p)[list].([]any)[0].(map[string]any)
}

func decodePod(t *testing.T, s string) map[string]any {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// matcher compiles conditions as kube-apiserver does for a mutating
// webhook (its CEL environment, its failure policy), so the test judges
// the expressions the API server will run.
func matcher(t *testing.T, conds []admissionregistrationv1.MatchCondition) matchconditions.Matcher {
	t.Helper()
	exprs := make([]celplugin.ExpressionAccessor, len(conds))
	for i := range conds {
		mc := matchconditions.MatchCondition(conds[i])
		exprs[i] = &mc
	}
	compiler := celplugin.NewConditionCompiler(environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()))
	ignore := admissionregistrationv1.Ignore
	return matchconditions.NewMatcher(compiler.CompileCondition(exprs, celplugin.OptionalVariableDeclarations{HasAuthorizer: true}, environment.StoredExpressions),
		&ignore, "webhook", "admit", MutatingWebhookName)
}

// called reports whether the API server would call the mutating webhook
// for a request on obj; an evaluation error fails the test (with
// failurePolicy Ignore it would silently skip the call).
func called(t *testing.T, m matchconditions.Matcher, obj map[string]any, op admission.Operation, resource, subresource string) bool {
	t.Helper()
	u := &unstructured.Unstructured{Object: obj}
	gvk := schema.GroupVersionKind{Version: "v1", Kind: u.GetKind()}
	attr := admission.NewAttributesRecord(u, nil, gvk, u.GetNamespace(), u.GetName(),
		schema.GroupVersionResource{Version: "v1", Resource: resource}, subresource, op, nil, false, nil)
	va, err := admission.NewVersionedAttributes(attr, gvk, nil)
	if err != nil {
		t.Fatal(err)
	}
	allow := authorizer.AuthorizerFunc(func(context.Context, authorizer.Attributes) (authorizer.Decision, string, error) {
		return authorizer.DecisionAllow, "", nil
	})
	res := m.Match(context.Background(), va, nil, allow)
	if res.Error != nil {
		t.Fatalf("evaluating the match condition: %v", res.Error)
	}
	return res.Matches
}

// The soundness of the mutating webhook's match condition: whenever the
// API server would skip the call, the mutation would have been an empty
// patch, under the default config and configs that move what is
// injected; the complete Pod is skipped (so the condition does work); a
// forged "already injected" annotation skips nothing.
func TestMatchConditionSkipsOnlyEmptyMutations(t *testing.T) {
	nsWithEnv := teamNS("shop")
	podMeta(nsWithEnv)["labels"].(map[string]any)["environment"] = "prod"
	configs := map[string]string{
		"default": ``,
		"custom label keys and more defaults": `
labels: {team: {key: example.com/team, required: true}, environment: {key: example.com/env}}
mutations:
  resources: {requests: {ephemeral-storage: 1Gi}, limits: {cpu: "2"}}`,
		"override disables then enables": `
mutations:
  securityContext:
    enabled: false
    namespaces: [{namespaces: ["sh*"], enabled: true}]`,
	}
	for cname, cyaml := range configs {
		var cfg *policies.Config
		if cyaml != "" {
			var err error
			if cfg, err = policies.ParseConfig([]byte(cyaml)); err != nil {
				t.Fatal(err)
			}
		}
		f := newFixture(t, nil, cfg)
		st := f.reviewer.opts.State.Load()
		conds := MutateMatchConditions(st)
		if len(conds) != 1 {
			t.Fatalf("%s: %d conditions, want 1", cname, len(conds))
		}
		m := matcher(t, conds)
		for vname, change := range podVariants {
			for nsName, ns := range map[string]map[string]any{"namespace without environment": teamNS("shop"), "namespace with environment": nsWithEnv} {
				pod := decodePod(t, completePod)
				change(pod)
				sent := called(t, m, pod, admission.Create, "pods", "")
				in := &policies.Input{Kind: policies.GroupVersionKind{Version: "v1", Kind: "Pod"}, Operation: "CREATE", Object: pod, Namespace: ns, Source: policies.SourceAdmission}
				mut, err := st.Engine.Mutate(in)
				if err != nil {
					t.Fatal(err)
				}
				if !sent && !mut.Empty() {
					t.Errorf("%s, %s, %s: the call is skipped but the mutation would patch %v", cname, vname, nsName, mut.Patch)
				}
				if cname == "default" && vname == "complete" && sent {
					t.Errorf("%s, %s: a complete Pod is still sent to /mutate", cname, nsName)
				}
				if strings.HasPrefix(vname, "forged injected") && !sent {
					t.Errorf("%s, %s: a forged %s annotation skips the call", cname, nsName, policies.InjectedAnnotation)
				}
				// The same complete Pod is always sent as an update, as a
				// subresource and as another kind.
				if !called(t, m, pod, admission.Update, "pods", "") || !called(t, m, pod, admission.Create, "pods", "ephemeralcontainers") ||
					!called(t, m, pod, admission.Create, "podtemplates", "") {
					t.Errorf("%s, %s: skipped for an update, a subresource or another resource", cname, vname)
				}
			}
		}
	}
}

// Configs under which a Pod's own fields cannot show it complete send
// every call: values the user set are overwritten.
func TestMatchConditionOffWhenMutationOverwrites(t *testing.T) {
	for _, cyaml := range []string{
		`mutations: {ownership: {overwrite: true}}`,
		`mutations: {securityContext: {overwrite: true}}`,
		`mutations: {securityContext: {namespaces: [{namespaces: [team-*], overwrite: true}]}}`,
	} {
		cfg, err := policies.ParseConfig([]byte(cyaml))
		if err != nil {
			t.Fatal(err)
		}
		f := newFixture(t, nil, cfg)
		if conds := MutateMatchConditions(f.reviewer.opts.State.Load()); conds != nil {
			t.Errorf("%s: conditions %v, want none", cyaml, conds)
		}
	}
}

// Validation never skips: the generated validating webhook and the chart's
// carry no match condition, and a Pod whose /mutate call is skipped is
// judged on its values exactly as it is with the call made — the forged
// values are denied, and a forged annotation changes no verdict.
func TestValidationIgnoresWhatMutationSkips(t *testing.T) {
	f := newFixture(t, nil, nil)
	st := f.reviewer.opts.State.Load()
	mwc, vwc, err := Configurations(st, servedMapper(), ConfigurationOptions{Name: "tollgate", URL: "https://127.0.0.1:9443"})
	if err != nil {
		t.Fatal(err)
	}
	if len(mwc.Webhooks[0].MatchConditions) != 1 {
		t.Errorf("mutating webhook: %d match conditions, want 1", len(mwc.Webhooks[0].MatchConditions))
	}
	if n := len(vwc.Webhooks[0].MatchConditions); n != 0 {
		t.Errorf("validating webhook: %d match conditions, want none", n)
	}

	judge := func(pod map[string]any) (allowed bool, message string, warnings []string) {
		b, err := json.Marshal(pod)
		if err != nil {
			t.Fatal(err)
		}
		rec := post(f.validate, review(t, "CREATE", "Pod", "shop", "done", string(b), ""), "application/json")
		if rec.Code != http.StatusOK {
			t.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
		}
		_, resp := decodeResponse(t, rec)
		if resp.Result != nil {
			message = resp.Result.Message
		}
		return resp.Allowed, message, resp.Warnings
	}
	m := matcher(t, mwc.Webhooks[0].MatchConditions)

	forged := decodePod(t, completePod)
	podVariants["forged: escalation, root, no drop, wrong team"](forged)
	if called(t, m, forged, admission.Create, "pods", "") {
		t.Fatal("the forged values were expected to skip /mutate")
	}
	allowed, msg, _ := judge(forged)
	if allowed {
		t.Fatal("a Pod with forged values was allowed")
	}
	for _, policy := range []string{"pss-baseline-privileged", "pss-restricted-privilege-escalation", "pss-restricted-run-as-non-root"} {
		if !strings.Contains(msg, policy) {
			t.Errorf("denial does not name %s:\n%s", policy, msg)
		}
	}

	bare := decodePod(t, completePod)
	podVariants["forged injected annotation, nothing injected"](bare)
	withMarker := decodePod(t, completePod)
	podVariants["forged injected annotation, nothing injected"](withMarker)
	delete(podMeta(bare), "annotations")
	a1, m1, w1 := judge(bare)
	a2, m2, w2 := judge(withMarker)
	if a1 || a2 {
		t.Fatalf("a Pod lacking every default was allowed (without the annotation %v, with it %v)", a1, a2)
	}
	if diff := cmp.Diff([]any{m1, w1}, []any{m2, w2}); diff != "" {
		t.Errorf("the forged annotation changes the verdict (-without +with):\n%s", diff)
	}
}

// With image policies in force a Pod is complete only with every image
// pinned to a digest, so the digest validation verifies is the one
// admitted.
func TestMatchConditionWithImagePoliciesWantsDigests(t *testing.T) {
	f := newFixture(t, nil, nil)
	st := *f.reviewer.opts.State.Load()
	st.Images = []core.ImagePolicy{{Name: "signed"}}
	m := matcher(t, MutateMatchConditions(&st))
	pod := decodePod(t, completePod)
	if !called(t, m, pod, admission.Create, "pods", "") {
		t.Error("a complete Pod with tagged images skips /mutate while image policies are in force")
	}
	for _, list := range []string{"initContainers", "containers"} {
		container(pod, list)["image"] = "ghcr.io/corp/web@sha256:" + strings.Repeat("a", 64)
	}
	if called(t, m, pod, admission.Create, "pods", "") {
		t.Error("a complete Pod with every image pinned is still sent to /mutate")
	}
}

// pluginMutator is a plugin that mutates every object it sees.
type pluginMutator struct{}

func (pluginMutator) Evaluate(context.Context, *policies.Input) *policies.Decision {
	return &policies.Decision{}
}

func (pluginMutator) Mutate(context.Context, *policies.Input) ([]policies.PatchOperation, error) {
	return []policies.PatchOperation{{Op: "add", Path: "/metadata/labels/plugin", Value: "yes"}}, nil
}

// A plugin that mutates at admission could change any Pod: nothing is
// skipped. One that skips admission (MutatingAdmissionPolicies, which the
// API server applies itself) changes nothing here.
func TestMatchConditionWithMutatingPlugins(t *testing.T) {
	f := newFixture(t, nil, nil)
	st := *f.reviewer.opts.State.Load()
	st.Plugins = []core.Plugin{{Name: "mutates", Evaluator: pluginMutator{}}}
	if conds := MutateMatchConditions(&st); conds != nil {
		t.Errorf("with a plugin mutating at admission: %v, want none", conds)
	}
	st.Plugins = []core.Plugin{{Name: "vap", Evaluator: pluginMutator{}, SkipSources: []string{policies.SourceAdmission}}}
	if conds := MutateMatchConditions(&st); len(conds) != 1 {
		t.Errorf("with a plugin that skips admission: %v, want the condition", conds)
	}
}
