package vap

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/tollgate-dev/tollgate/policies"
)

// brief drops what most cases do not look at.
var brief = cmpopts.IgnoreFields(policies.Finding{}, "Controls", "Remediation")

type evalCase struct {
	name    string
	in      *policies.Input
	want    []policies.Finding
	applied int
}

func runEval(t *testing.T, e *Evaluator, cases []evalCase, opts ...cmp.Option) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := e.Evaluate(context.Background(), tc.in)
			if len(d.Errors) > 0 {
				t.Fatalf("Evaluate errors: %v", d.Errors)
			}
			want := tc.want
			if want == nil {
				want = []policies.Finding{}
			}
			if diff := cmp.Diff(want, d.Findings, opts...); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
			if d.Applied != tc.applied {
				t.Errorf("Applied = %d, want %d", d.Applied, tc.applied)
			}
		})
	}
}

func TestEvaluateSelectors(t *testing.T) {
	e := compile(t, Options{Namespaces: []map[string]any{
		namespace("prod", "env", "prod"),
		namespace("dev", "env", "dev"),
		namespace("kube-system", "env", "prod"),
	}}, "team-label.yaml")
	prod := policies.Finding{
		Policy:      "ValidatingAdmissionPolicy/require-team-label",
		Title:       "require-team-label (binding require-team-label-prod)",
		Message:     "every Deployment needs a team label",
		Severity:    policies.SeverityHigh,
		Action:      policies.ActionEnforce,
		Controls:    []policies.Control{{Framework: "cis", ID: "5.7.1"}, {Framework: "nsa", ID: "ownership"}},
		Remediation: "Add a metadata.labels.team naming the owning team.",
	}
	dev := prod
	dev.Title = "require-team-label (binding require-team-label-dev)"
	dev.Severity = policies.SeverityLow // the binding's annotation wins
	dev.Action = policies.ActionWarn

	runEval(t, e, []evalCase{
		{name: "prod denies", in: input(deployment("web", inNamespace("prod"))), want: []policies.Finding{prod}, applied: 1},
		{name: "labelled passes", in: input(deployment("web", inNamespace("prod"), withLabels("team", "shop"))), applied: 1},
		{name: "dev warns", in: input(deployment("web", inNamespace("dev"))), want: []policies.Finding{dev}, applied: 1},
		{name: "policy namespaceSelector excludes kube-system", in: input(deployment("web", inNamespace("kube-system")))},
		{name: "unknown namespace has no env label", in: input(deployment("web", inNamespace("staging")))},
		{
			name: "input namespace wins over options",
			in:   input(deployment("web", inNamespace("prod")), withNamespace(namespace("prod", "env", "dev"))),
			want: []policies.Finding{dev}, applied: 1,
		},
		{
			name: "object without namespace takes the input's",
			in:   input(deployment("web"), withNamespace(namespace("qa", "env", "prod"))),
			want: []policies.Finding{prod}, applied: 1,
		},
		{name: "object without namespace is judged in default", in: input(deployment("web"))},
		{name: "other kinds are not matched", in: input(obj("v1", "ConfigMap", "web", inNamespace("prod")))},
		{name: "delete is not matched", in: input(nil, withOld(deployment("web", inNamespace("prod"))), withOperation("DELETE"))},
		{
			name: "admission operation and user pass through",
			in:   input(deployment("web", inNamespace("prod")), withOperation("CREATE"), withUser("alice")),
			want: []policies.Finding{prod}, applied: 1,
		},
	})
}

func TestEvaluateParams(t *testing.T) {
	e := compile(t, Options{Params: raw(t, "params.yaml")}, "replicas.yaml")
	const id = "ValidatingAdmissionPolicy/max-replicas"
	finding := func(binding, msg string, action policies.Action) policies.Finding {
		return policies.Finding{Policy: id, Title: "max-replicas (binding " + binding + ")", Message: msg, Severity: policies.SeverityMedium, Action: action}
	}
	cases := []evalCase{
		{
			name: "by name over the ceiling",
			in:   input(deployment("web", inNamespace("shop"), withLabels("tier", "web"), replicas(7))),
			want: []policies.Finding{finding("max-replicas-web", "replicas 7 exceed the ceiling of 5 set in web-limits", policies.ActionEnforce)}, applied: 1,
		},
		{name: "by name under the ceiling", in: input(deployment("web", inNamespace("shop"), withLabels("tier", "web"), replicas(3))), applied: 1},
		{
			name: "message defaults to the expression",
			in:   input(deployment("web", inNamespace("shop"), withLabels("tier", "web"), replicas(0))),
			want: []policies.Finding{finding("max-replicas-web", "failed expression: !has(object.spec.replicas) || object.spec.replicas > 0", policies.ActionEnforce)}, applied: 1,
		},
		{
			name: "by selector in the request namespace, one param fails",
			in:   input(deployment("etl", inNamespace("jobs"), withLabels("tier", "batch"), replicas(5))),
			want: []policies.Finding{finding("max-replicas-batch", "replicas 5 exceed the ceiling of 2 set in batch-small", policies.ActionAudit)}, applied: 1,
		},
		{name: "by selector, none found, Allow", in: input(deployment("etl", inNamespace("other"), withLabels("tier", "batch"), replicas(5)))},
		{
			name:    "by name, not found, Deny",
			in:      input(deployment("redis", inNamespace("shop"), withLabels("tier", "cache"), replicas(1))),
			want:    []policies.Finding{finding("max-replicas-cache", "could not be evaluated: failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction", policies.ActionEnforce)},
			applied: 1,
		},
		{name: "by name, not found, Allow", in: input(deployment("mq", inNamespace("shop"), withLabels("tier", "queue"), replicas(100)))},
	}
	runEval(t, e, cases)

	t.Run("SetParams", func(t *testing.T) {
		limits := obj("v1", "ConfigMap", "cache-limits", inNamespace("shop"))
		limits["data"] = map[string]any{"maxReplicas": "1"}
		e.SetParams(append(raw(t, "params.yaml"), limits))
		runEval(t, e, []evalCase{{
			name: "new param found",
			in:   input(deployment("redis", inNamespace("shop"), withLabels("tier", "cache"), replicas(3))),
			want: []policies.Finding{finding("max-replicas-cache", "replicas 3 exceed the ceiling of 1 set in cache-limits", policies.ActionEnforce)}, applied: 1,
		}})
		e.SetParams(nil)
		runEval(t, e, []evalCase{{
			name:    "old params gone",
			in:      input(deployment("web", inNamespace("shop"), withLabels("tier", "web"), replicas(3))),
			want:    []policies.Finding{finding("max-replicas-web", "could not be evaluated: failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction", policies.ActionEnforce)},
			applied: 1,
		}})
	})
}

func TestEvaluateConditionsAndVariables(t *testing.T) {
	e := compile(t, Options{}, "images.yaml")
	foreign := func(kind, name, msg string) policies.Finding {
		return policies.Finding{
			Policy:   "ValidatingAdmissionPolicy/trusted-registry",
			Title:    "Images come from registry.example.com (binding trusted-registry)",
			Message:  msg,
			Severity: policies.SeverityMedium,
			Action:   policies.ActionEnforce,
		}
	}
	daemonSet := func(name string, set ...func(map[string]any)) map[string]any {
		d := deployment(name, set...)
		d["kind"] = "DaemonSet"
		return d
	}
	withInit := func(image string) func(map[string]any) {
		return func(o map[string]any) {
			o["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["initContainers"] = []any{map[string]any{"name": "init", "image": image}}
		}
	}
	runEval(t, e, []evalCase{
		{
			name: "messageExpression over variables",
			in:   input(deployment("web", inNamespace("shop"), images("registry.example.com/web:2", "docker.io/nginx:1.27"))),
			want: []policies.Finding{foreign("Deployment", "web", "images outside registry.example.com: docker.io/nginx:1.27")}, applied: 1,
		},
		{
			name: "variables chain through init containers",
			in:   input(deployment("web", inNamespace("shop"), withInit("quay.io/busybox:1"))),
			want: []policies.Finding{foreign("Deployment", "web", "images outside registry.example.com: quay.io/busybox:1")}, applied: 1,
		},
		{name: "trusted images pass", in: input(deployment("web", inNamespace("shop"))), applied: 1},
		{
			name: "matchCondition skips exempt workloads",
			in:   input(deployment("web", inNamespace("shop"), annotate("tollgate.dev/exempt", "true"), images("docker.io/nginx:1.27"))),
		},
		{name: "excludeResourceRules by name", in: input(daemonSet("node-agent", inNamespace("kube-system"), images("docker.io/agent:1")))},
		{
			name: "same kind, other name",
			in:   input(daemonSet("log-agent", inNamespace("kube-system"), images("docker.io/agent:1"))),
			want: []policies.Finding{foreign("DaemonSet", "log-agent", "images outside registry.example.com: docker.io/agent:1")}, applied: 1,
		},
	}, brief)
	if diff := cmp.Diff([]policies.Control{{Framework: "cis", ID: "5.5.1"}}, e.Policies()[0].Controls); diff != "" {
		t.Errorf("Policies()[0].Controls (-want +got):\n%s", diff)
	}
}

func TestEvaluateUpdate(t *testing.T) {
	e := compile(t, Options{}, "scale.yaml")
	denied := func(msg string) []policies.Finding {
		return []policies.Finding{{
			Policy: "ValidatingAdmissionPolicy/scale-down-needs-sre", Title: "scale-down-needs-sre (binding scale-down-needs-sre)",
			Message: msg, Severity: policies.SeverityMedium, Action: policies.ActionEnforce,
		}}
	}
	old := deployment("web", inNamespace("shop"), replicas(5))
	runEval(t, e, []evalCase{
		{
			name: "scale down without sre",
			in:   input(deployment("web", inNamespace("shop"), replicas(2)), withOld(old), withOperation("UPDATE"), withUser("alice", "dev")),
			want: denied("alice may not scale web down from 5 to 2"), applied: 1,
		},
		{
			name:    "scale down by sre",
			in:      input(deployment("web", inNamespace("shop"), replicas(2)), withOld(old), withOperation("UPDATE"), withUser("bob", "dev", "sre")),
			applied: 1,
		},
		{name: "scale up", in: input(deployment("web", inNamespace("shop"), replicas(9)), withOld(old), withOperation("UPDATE")), applied: 1},
		{name: "create is not matched", in: input(deployment("web", inNamespace("shop"), replicas(2)), withOperation("CREATE"))},
		{
			name: "no operation with an old object is an update",
			in:   input(deployment("web", inNamespace("shop"), replicas(1)), withOld(old), withUser("carol", "dev")),
			want: denied("carol may not scale web down from 5 to 1"), applied: 1,
		},
		{
			// Offline there is no user; in a cluster every user is at least
			// in system:authenticated. request.userInfo.groups is absent.
			name:    "no user",
			in:      input(deployment("web", inNamespace("shop"), replicas(1)), withOld(old)),
			want:    denied("could not be evaluated: expression 'object.spec.replicas >= oldObject.spec.replicas || 'sre' in request.userInfo.groups' resulted in error: no such key: groups"),
			applied: 1,
		},
	})
}

func TestFailurePolicy(t *testing.T) {
	e := compile(t, Options{}, "failure.yaml")
	finding := func(policy string, action policies.Action, msg string) policies.Finding {
		return policies.Finding{
			Policy: "ValidatingAdmissionPolicy/" + policy, Title: policy + " (binding " + policy + ")",
			Message: msg, Severity: policies.SeverityMedium, Action: action,
		}
	}
	configMap := func(set ...func(map[string]any)) map[string]any {
		return obj("v1", "ConfigMap", "settings", append([]func(map[string]any){inNamespace("shop")}, set...)...)
	}
	runEval(t, e, []evalCase{
		{
			// Fail: the error takes the binding's action (Warn); Ignore: dropped.
			name: "runtime error",
			in:   input(configMap(withLabels("app", "web"))),
			want: []policies.Finding{finding("cost-center-fail", policies.ActionWarn,
				"could not be evaluated: expression 'object.metadata.labels['cost-center'].startsWith('cc-')' resulted in error: no such key: cost-center")},
			applied: 2,
		},
		{
			name: "validation fails in both",
			in:   input(configMap(withLabels("cost-center", "x-1"))),
			want: []policies.Finding{
				finding("cost-center-fail", policies.ActionWarn, "cost-center must start with cc-"),
				finding("cost-center-ignore", policies.ActionEnforce, "cost-center must start with cc-"),
			},
			applied: 2,
		},
		{name: "passes", in: input(configMap(withLabels("cost-center", "cc-1"))), applied: 2},
	})
}

func TestAuditAnnotations(t *testing.T) {
	e := compile(t, Options{}, "audit.yaml")
	finding := func(action policies.Action, msg string) policies.Finding {
		return policies.Finding{
			Policy: "ValidatingAdmissionPolicy/secret-owner", Title: "secret-owner (binding secret-owner)",
			Message: msg, Severity: policies.SeverityMedium, Action: action,
		}
	}
	secret := func(typ string, set ...func(map[string]any)) map[string]any {
		s := obj("v1", "Secret", "creds", append([]func(map[string]any){inNamespace("shop")}, set...)...)
		s["type"] = typ
		return s
	}
	runEval(t, e, []evalCase{
		{name: "annotation published", in: input(secret("Opaque", withLabels("owner", "alice"))), applied: 1},
		{
			name: "validation warns",
			in:   input(secret("kubernetes.io/basic-auth", withLabels("owner", "alice"))),
			want: []policies.Finding{finding(policies.ActionWarn, "basic-auth Secrets are not allowed")}, applied: 1,
		},
		{
			name: "failing annotation denies whatever the binding says",
			in:   input(secret("Opaque", withLabels("app", "web"))),
			want: []policies.Finding{finding(policies.ActionEnforce,
				"could not be evaluated: expression 'string(object.metadata.labels['owner'])' resulted in error: no such key: owner")},
			applied: 1,
		},
	})
}

// recordingAuthorizer allows what allow says and keeps what it was asked.
type recordingAuthorizer struct {
	allow bool
	mu    sync.Mutex
	asked []authorizer.Attributes
}

func (a *recordingAuthorizer) Authorize(_ context.Context, attr authorizer.Attributes) (authorizer.Decision, string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.asked = append(a.asked, attr)
	if a.allow {
		return authorizer.DecisionAllow, "", nil
	}
	return authorizer.DecisionDeny, "", nil
}

func TestNamespaceObjectAndAuthorizer(t *testing.T) {
	pod := func(ns string) map[string]any { return obj("v1", "Pod", "web", inNamespace(ns)) }
	finding := func(msg string) policies.Finding {
		return policies.Finding{
			Policy: "ValidatingAdmissionPolicy/owned-namespace", Title: "owned-namespace (binding owned-namespace)",
			Message: msg, Severity: policies.SeverityMedium, Action: policies.ActionEnforce,
		}
	}
	namespaces := []map[string]any{namespace("team-a", "owner", "alice")}
	noPermission := finding("the creator may not delete pods here")

	t.Run("offline", func(t *testing.T) {
		runEval(t, compile(t, Options{Namespaces: namespaces}, "context.yaml"), []evalCase{
			{name: "no authorizer says no", in: input(pod("team-a"), withUser("alice")), want: []policies.Finding{noPermission}, applied: 1},
		})
	})
	authz := &recordingAuthorizer{allow: true}
	e := compile(t, Options{Namespaces: namespaces, Authorizer: authz}, "context.yaml")
	runEval(t, e, []evalCase{
		{name: "owned namespace, allowed", in: input(pod("team-a"), withUser("alice", "dev")), applied: 1},
		{
			name: "namespaceObject of an unknown namespace",
			in:   input(pod("nobody"), withUser("alice", "dev")),
			want: []policies.Finding{finding("namespace nobody has no owner label")}, applied: 1,
		},
	})
	a := authz.asked[0]
	got := []string{a.GetUser().GetName(), strings.Join(a.GetUser().GetGroups(), ","), a.GetVerb(), a.GetNamespace(), a.GetResource()}
	if diff := cmp.Diff([]string{"alice", "dev", "delete", "team-a", "pods"}, got); diff != "" {
		t.Errorf("authorizer asked (-want +got):\n%s", diff)
	}
	authz.allow = false
	runEval(t, e, []evalCase{
		{name: "denied by the authorizer", in: input(pod("team-a"), withUser("mallory")), want: []policies.Finding{noPermission}, applied: 1},
	})
}

func TestCompileErrors(t *testing.T) {
	objs := load(t, "bad.yaml")
	e, err := Compile(context.Background(), objs, Options{})
	if e == nil {
		t.Fatal("Compile returned a nil Evaluator")
	}
	type loadErr struct{ Source, Object, Field, Err string }
	var got []loadErr
	for _, err := range err.(interface{ Unwrap() []error }).Unwrap() {
		var le *LoadError
		if !errors.As(err, &le) {
			t.Fatalf("error %v is not a *LoadError", err)
		}
		got = append(got, loadErr{le.Source, le.Object, le.Field, le.Err.Error()})
	}
	want := []loadErr{
		{"testdata/bad.yaml:2", "ValidatingAdmissionPolicy/bad-type", "spec.validations[1].expression",
			"Invalid value: \"object.metadata.name.size() > 'three'\": compilation failed: ERROR: <input>:1:29: found no matching overload for '_>_' applied to '(int, string)'\n | object.metadata.name.size() > 'three'\n | ............................^"},
		{"testdata/bad.yaml:17", "ValidatingAdmissionPolicy/bad-field", "spec.validations[0].expresion", "Forbidden: unknown field"},
		{"testdata/bad.yaml:31", "ValidatingAdmissionPolicy/bad-shape", "spec.validations", "Invalid value: \"string\": must be a list"},
		{"testdata/bad.yaml:44", "ValidatingAdmissionPolicy/bad-message", "spec.validations[0].messageExpression",
			"Invalid value: \"size(object.metadata.name)\": must evaluate to string but got int"},
		{"testdata/bad.yaml:59", "ValidatingAdmissionPolicyBinding/bad-actions", "spec.validationActions",
			"Invalid value: [\"Deny\",\"Warn\"]: must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)"},
		{"testdata/bad.yaml:67", "ValidatingAdmissionPolicyBinding/orphan", "spec.policyName",
			"ValidatingAdmissionPolicy \"not-there\" is not among the loaded objects; the binding does nothing without it"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("load errors (-want +got):\n%s", diff)
	}
	for _, le := range got {
		if !strings.Contains(err.Error(), le.Source+": "+le.Object+": "+le.Field+": ") {
			t.Errorf("error text does not name %s %s %s:\n%v", le.Source, le.Object, le.Field, err)
		}
	}

	// The good policy still loads and works.
	if got, want := len(e.Policies()), 1; got != want {
		t.Fatalf("%d policies loaded, want %d: %+v", got, want, e.Policies())
	}
	runEval(t, e, []evalCase{{
		name: "good policy",
		in:   input(obj("v1", "Pod", "web", inNamespace("shop"))),
		want: []policies.Finding{{
			Policy: "ValidatingAdmissionPolicy/good", Title: "good (binding good)", Message: "pod names start with app-",
			Severity: policies.SeverityMedium, Action: policies.ActionEnforce,
		}},
		applied: 1,
	}})
}

func TestCompileChecks(t *testing.T) {
	policy := func(set ...func(map[string]any)) Object {
		o := obj("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy", "p", set...)
		return Object{Source: "p.yaml", Object: o}
	}
	spec := func(s map[string]any) func(map[string]any) { return func(o map[string]any) { o["spec"] = s } }
	rules := map[string]any{"resourceRules": []any{map[string]any{
		"apiGroups": []any{""}, "apiVersions": []any{"v1"}, "operations": []any{"CREATE"}, "resources": []any{"pods"},
	}}}
	valid := []any{map[string]any{"expression": "true"}}
	cases := []struct {
		name  string
		obj   Object
		field string
		err   string
	}{
		{"no matchConstraints", policy(spec(map[string]any{"validations": valid})), "spec.matchConstraints", "Required value"},
		{"no validations", policy(spec(map[string]any{"matchConstraints": rules})), "spec.validations", "Required value: validations or auditAnnotations must contain at least one item"},
		{
			"variable used before it is declared",
			policy(spec(map[string]any{"matchConstraints": rules, "validations": []any{map[string]any{"expression": "variables.later"}}})),
			"spec.validations[0].expression", "undefined field 'later'",
		},
		{
			"matchConditions cannot see variables",
			policy(spec(map[string]any{
				"matchConstraints": rules, "validations": valid,
				"variables":       []any{map[string]any{"name": "v", "expression": "true"}},
				"matchConditions": []any{map[string]any{"name": "c", "expression": "variables.v"}},
			})),
			"spec.matchConditions[0].expression", "undeclared reference to 'variables'",
		},
		{
			"params without paramKind",
			policy(spec(map[string]any{"matchConstraints": rules, "validations": []any{map[string]any{"expression": "params.x == 1"}}})),
			"spec.validations[0].expression", "undeclared reference to 'params'",
		},
		{
			"bad selector",
			policy(spec(map[string]any{"matchConstraints": map[string]any{
				"resourceRules":     rules["resourceRules"],
				"namespaceSelector": map[string]any{"matchExpressions": []any{map[string]any{"key": "env", "operator": "Sometimes"}}},
			}, "validations": valid})),
			"spec.matchConstraints.namespaceSelector.matchExpressions[0].operator", "not a valid selector operator",
		},
		{"unsupported version", Object{Source: "p.yaml", Object: obj("admissionregistration.k8s.io/v1alpha1", "ValidatingAdmissionPolicy", "p")}, "apiVersion", "Unsupported value"},
		{
			"binding paramRef without parameterNotFoundAction",
			Object{Source: "p.yaml", Object: obj("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding", "b", spec(map[string]any{
				"policyName": "p", "validationActions": []any{"Deny"}, "paramRef": map[string]any{"name": "x"},
			}))},
			"spec.paramRef.parameterNotFoundAction", "Required value",
		},
		{
			"bad tollgate annotation",
			policy(spec(map[string]any{"matchConstraints": rules, "validations": valid}), annotate(AnnotationSeverity, "dire", AnnotationControls, "cis")),
			`metadata.annotations[tollgate.dev/severity]`, "unknown severity",
		},
		{
			"mutating policy returning the wrong type",
			Object{Source: "p.yaml", Object: obj("admissionregistration.k8s.io/v1", "MutatingAdmissionPolicy", "m", spec(map[string]any{
				"matchConstraints": rules, "reinvocationPolicy": "Never",
				"mutations": []any{map[string]any{"patchType": "JSONPatch", "jsonPatch": map[string]any{"expression": "'add'"}}},
			}))},
			"spec.mutations[0].jsonPatch.expression", "must evaluate to list(JSONPatch) but got string",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(context.Background(), []Object{tc.obj}, Options{})
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("Compile error = %v, want a *LoadError", err)
			}
			if le.Source != tc.obj.Source || le.Field != tc.field || !strings.Contains(le.Err.Error(), tc.err) {
				t.Errorf("got %q (field %q), want source %s, field %s, error containing %q", err, le.Field, tc.obj.Source, tc.field, tc.err)
			}
		})
	}
}

func TestIgnoresOtherObjects(t *testing.T) {
	e, err := Compile(context.Background(), []Object{
		{Source: "a.yaml", Object: deployment("web")},
		{Source: "b.yaml", Object: obj("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "hooks")},
		{Source: "c.yaml", Object: map[string]any{"kind": "ValidatingAdmissionPolicy"}},
	}, Options{})
	if err != nil || len(e.Policies()) != 0 {
		t.Fatalf("Compile = %v, %v; want nothing loaded and no error", e.Policies(), err)
	}
	d := e.Evaluate(context.Background(), input(deployment("web")))
	if len(d.Findings) != 0 || d.Applied != 0 {
		t.Errorf("Evaluate with no policies = %+v", d)
	}
}

func TestV1beta1(t *testing.T) {
	objs := load(t, "team-label.yaml", "mutating.yaml")
	for _, o := range objs {
		o.Object["apiVersion"] = "admissionregistration.k8s.io/v1beta1"
	}
	e, err := Compile(context.Background(), objs, Options{Namespaces: []map[string]any{namespace("prod", "env", "prod")}})
	if err != nil {
		t.Fatal(err)
	}
	if d := e.Evaluate(context.Background(), input(deployment("web", inNamespace("prod")))); len(d.Findings) != 1 {
		t.Errorf("v1beta1 policy: findings %+v, want one", d.Findings)
	}
	if ops, err := e.Mutate(context.Background(), input(deployment("web", inNamespace("prod")))); err != nil || len(ops) != 1 {
		t.Errorf("v1beta1 mutating policy: %+v, %v; want one op", ops, err)
	}
}

func TestPoliciesMetadata(t *testing.T) {
	e := compile(t, Options{}, "team-label.yaml", "images.yaml", "failure.yaml")
	var got []string
	for _, m := range e.Policies() {
		got = append(got, m.ID+" "+m.Title+" "+string(m.Severity)+" "+string(m.Action)+" "+m.Source)
	}
	want := []string{
		"ValidatingAdmissionPolicy/cost-center-fail cost-center-fail medium warn testdata/failure.yaml:3",
		"ValidatingAdmissionPolicy/cost-center-ignore cost-center-ignore medium enforce testdata/failure.yaml:27",
		"ValidatingAdmissionPolicy/require-team-label require-team-label high enforce testdata/team-label.yaml:3",
		"ValidatingAdmissionPolicy/trusted-registry Images come from registry.example.com medium enforce testdata/images.yaml:3",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Policies() (-want +got):\n%s", diff)
	}
}

// panickyMapper is a caller's RESTMapper gone wrong.
type panickyMapper struct{ meta.RESTMapper }

func (panickyMapper) RESTMapping(schema.GroupKind, ...string) (*meta.RESTMapping, error) {
	panic("mapper exploded")
}

func TestEvaluateErrors(t *testing.T) {
	e := compile(t, Options{}, "team-label.yaml", "failure.yaml")
	ids := func(d *policies.Decision) []string {
		var out []string
		for _, pe := range d.Errors {
			out = append(out, pe.Policy)
		}
		return out
	}
	all := []string{"ValidatingAdmissionPolicy/cost-center-fail", "ValidatingAdmissionPolicy/cost-center-ignore", "ValidatingAdmissionPolicy/require-team-label"}

	d := e.Evaluate(context.Background(), &policies.Input{Object: map[string]any{"metadata": map[string]any{"name": "x"}}})
	if diff := cmp.Diff(all, ids(d)); diff != "" {
		t.Errorf("object without kind: errors (-want +got):\n%s", diff)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d = e.Evaluate(ctx, input(deployment("web", inNamespace("prod")), withNamespace(namespace("prod", "env", "prod"))))
	if diff := cmp.Diff([]string{"ValidatingAdmissionPolicy/require-team-label"}, ids(d)); diff != "" {
		t.Errorf("cancelled context: errors (-want +got):\n%s", diff) // the binding that matched
	}
	for _, pe := range d.Errors {
		if !errors.Is(pe, context.Canceled) {
			t.Errorf("error %v does not wrap context.Canceled", pe)
		}
	}
	if len(d.Findings) != 0 {
		t.Errorf("cancelled context: findings %+v", d.Findings)
	}

	e = compile(t, Options{Mapper: panickyMapper{}}, "team-label.yaml", "failure.yaml")
	d = e.Evaluate(context.Background(), input(deployment("web", inNamespace("prod"))))
	if diff := cmp.Diff(all, ids(d)); diff != "" {
		t.Errorf("panicking mapper: errors (-want +got):\n%s", diff)
	}
	if len(d.Errors) > 0 && !strings.Contains(d.Errors[0].Error(), "panic: mapper exploded") {
		t.Errorf("panicking mapper: error %v", d.Errors[0])
	}
}

func TestDuplicateNames(t *testing.T) {
	objs := load(t, "failure.yaml")
	objs = append(objs, Object{Source: "again.yaml", Object: objs[0].Object})
	e, err := Compile(context.Background(), objs, Options{})
	var le *LoadError
	if !errors.As(err, &le) || le.Source != "again.yaml" || le.Field != "metadata.name" || !strings.Contains(le.Err.Error(), "first loaded from testdata/failure.yaml:3") {
		t.Errorf("Compile with a duplicate policy: %v", err)
	}
	if len(e.Policies()) != 2 {
		t.Errorf("%d policies loaded, want 2", len(e.Policies()))
	}
}

func TestConcurrentEvaluate(t *testing.T) {
	params := raw(t, "params.yaml")
	e := compile(t, Options{Params: params}, "replicas.yaml", "images.yaml")
	in := input(deployment("web", inNamespace("shop"), withLabels("tier", "web"), replicas(7)))
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				if i == 0 {
					e.SetParams(params)
					continue
				}
				d := e.Evaluate(context.Background(), in)
				if len(d.Findings) != 1 || len(d.Errors) != 0 {
					t.Errorf("concurrent Evaluate = %+v", d)
					return
				}
			}
		}()
	}
	wg.Wait()
}
