package kyverno_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/kyverno"
)

// compileWithExceptions compiles the good policies with the exceptions of
// dir, honoured in namespaces.
func compileWithExceptions(t *testing.T, dir string, namespaces ...string) (*kyverno.Evaluator, error) {
	t.Helper()
	return kyverno.Compile(context.Background(), load(t, "testdata"), kyverno.Options{
		ConfigMaps:          []map[string]any{environments},
		Exceptions:          load(t, dir),
		ExceptionNamespaces: namespaces,
	})
}

// judged summarises a decision as "policy|action|waived-by|message".
func judged(d *policies.Decision) []string {
	var out []string
	for _, f := range d.Findings {
		by := "-"
		if f.Exception != nil {
			by = f.Exception.Namespace + "/" + f.Exception.Name
		}
		out = append(out, f.Policy+"|"+string(f.Action)+"|"+by+"|"+f.Message)
	}
	return out
}

func namedPod(name string) map[string]any {
	p := pod(map[string]any{"environment": "prod"}, container("app", "registry.example.com/web:1"))
	p["metadata"].(map[string]any)["name"] = name
	p["spec"].(map[string]any)["serviceAccountName"] = "web"
	return p
}

func namedDeployment(name string, replicas int) map[string]any {
	return map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": name, "namespace": "apps"},
		"spec": map[string]any{
			"replicas": replicas,
			"selector": map[string]any{"matchLabels": map[string]any{"app": name}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": name, "team": "web", "environment": "prod"}},
				"spec":     map[string]any{"containers": []any{container("app", "registry.example.com/web:1")}},
			},
		},
	}
}

func TestExceptions(t *testing.T) {
	dir := filepath.Join("testdata", "exceptions")
	const teamMsg = "team-label: validation error: the label team is required. rule team-label failed at path /metadata/labels/team/"
	const replicasMsg = "replicas must be at most 5, not 9"
	tests := []struct {
		name       string
		namespaces []string
		object     map[string]any
		want       []string
	}{
		{
			name: "ClusterPolicy rule excused by an exception in a designated namespace", namespaces: []string{"policy-exceptions"},
			object: namedPod("legacy-web"),
			want:   []string{"ClusterPolicy/require-team|enforce|policy-exceptions/legacy-team|" + teamMsg},
		},
		{
			name: "designated by a glob", namespaces: []string{"policy-*"},
			object: namedPod("legacy-web"),
			want:   []string{"ClusterPolicy/require-team|enforce|policy-exceptions/legacy-team|" + teamMsg},
		},
		{
			name: "the exception does not match this pod", namespaces: []string{"policy-exceptions"},
			object: namedPod("web"),
			want:   []string{"ClusterPolicy/require-team|enforce|-|" + teamMsg},
		},
		{
			name: "no namespace designated: nothing excused", namespaces: nil,
			object: namedPod("legacy-web"),
			want:   []string{"ClusterPolicy/require-team|enforce|-|" + teamMsg},
		},
		{
			name: "the exception in the team's own namespace is ignored", namespaces: []string{"policy-exceptions", "other"},
			object: func() map[string]any {
				p := namedPod("web")
				return p
			}(),
			want: []string{"ClusterPolicy/require-team|enforce|-|" + teamMsg},
		},
		{
			name: "ValidatingPolicy excused in a designated namespace", namespaces: []string{"policy-exceptions"},
			object: namedDeployment("batch", 9),
			want:   []string{"ValidatingPolicy/max-replicas|enforce|policy-exceptions/batch-replicas|" + replicasMsg},
		},
		{
			name: "ValidatingPolicy: the exception does not match", namespaces: []string{"policy-exceptions"},
			object: namedDeployment("web", 9),
			want:   []string{"ValidatingPolicy/max-replicas|enforce|-|" + replicasMsg},
		},
		{
			name: "ValidatingPolicy: no namespace designated", namespaces: nil,
			object: namedDeployment("batch", 9),
			want:   []string{"ValidatingPolicy/max-replicas|enforce|-|" + replicasMsg},
		},
		{
			name: "excused but compliant: no finding", namespaces: []string{"policy-exceptions"},
			object: namedDeployment("batch", 3),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := compileWithExceptions(t, dir, tt.namespaces...)
			if err != nil {
				t.Fatal(err)
			}
			d := e.Evaluate(context.Background(), policies.ObjectInput(policies.SourceCheck, tt.object, appsNamespace))
			if len(d.Errors) > 0 {
				t.Fatalf("errors: %v", d.Errors)
			}
			if diff := cmp.Diff(tt.want, judged(d)); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
		})
	}
}

// A waived finding carries what the exception says of itself, as
// Tollgate's own exceptions do, and no longer denies.
func TestExceptionRef(t *testing.T) {
	e, err := compileWithExceptions(t, filepath.Join("testdata", "exceptions"), "policy-exceptions")
	if err != nil {
		t.Fatal(err)
	}
	d := e.Evaluate(context.Background(), policies.ObjectInput(policies.SourceCheck, namedPod("legacy-web"), appsNamespace))
	if len(d.Findings) != 1 {
		t.Fatalf("findings %v", judged(d))
	}
	want := &policies.ExceptionRef{Namespace: "policy-exceptions", Name: "legacy-team", Reason: "legacy workloads are being migrated", Ticket: "OPS-42", Approver: "platform-team"}
	if diff := cmp.Diff(want, d.Findings[0].Exception); diff != "" {
		t.Errorf("exception (-want +got):\n%s", diff)
	}
	if !d.Findings[0].Waived() || d.Denied() {
		t.Errorf("waived %v, denied %v", d.Findings[0].Waived(), d.Denied())
	}
}

// Every exception that does not count is a warning naming it and why.
func TestExceptionWarnings(t *testing.T) {
	warnings := func(namespaces ...string) []string {
		e, err := compileWithExceptions(t, filepath.Join("testdata", "exceptions"), namespaces...)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, w := range e.Warnings() {
			out = append(out, w.String())
		}
		return out
	}
	file := func(name string) string { return filepath.Join("testdata", "exceptions", name) }
	want := []string{
		file("self-service-replicas.yaml") + ": policy PolicyException/apps/self-service-replicas: not honoured: namespace apps is not one the config designates for exceptions (exceptions.namespaces: policy-exceptions)",
		file("self-service-team.yaml") + ": policy PolicyException/apps/self-service-team: not honoured: namespace apps is not one the config designates for exceptions (exceptions.namespaces: policy-exceptions)",
	}
	if diff := cmp.Diff(want, warnings("policy-exceptions")); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	got := warnings()
	if len(got) != 4 {
		t.Errorf("with no namespace designated, want every exception warned about: %v", got)
	}
	for _, w := range got {
		if !strings.Contains(w, "(exceptions.namespaces: none designated)") {
			t.Errorf("warning %q does not say nothing is designated", w)
		}
	}
}

func TestExceptionsBad(t *testing.T) {
	e, err := compileWithExceptions(t, filepath.Join("testdata", "exceptions", "bad"), "policy-exceptions")
	if err == nil {
		t.Fatal("no error")
	}
	file := func(name string) string { return filepath.Join("testdata", "exceptions", "bad", name) }
	type want struct{ source, policy, text string }
	wants := []want{
		{file("malformed.yaml"), "PolicyException/policy-exceptions/malformed", `unknown field "spec.exception"`},
		{file("no-refs.yaml"), "PolicyException/policy-exceptions/no-refs", "spec.policyRefs: Invalid value: null: must specify at least one policy ref"},
		{file("bad-condition.yaml"), "PolicyException/policy-exceptions/bad-condition", "does not compile for ValidatingPolicy/max-replicas"},
	}
	var loadErrs []*kyverno.LoadError
	for _, one := range err.(interface{ Unwrap() []error }).Unwrap() {
		var le *kyverno.LoadError
		if !errors.As(one, &le) {
			t.Errorf("not a LoadError: %v", one)
			continue
		}
		loadErrs = append(loadErrs, le)
	}
	if len(loadErrs) != len(wants) {
		t.Errorf("%d errors, want %d: %v", len(loadErrs), len(wants), err)
	}
	for _, w := range wants {
		if !slices.ContainsFunc(loadErrs, func(le *kyverno.LoadError) bool {
			return le.Source == w.source && le.Policy == w.policy && strings.Contains(le.Error(), w.text)
		}) {
			t.Errorf("no error for %s (%s, %q) in:\n%v", w.source, w.policy, w.text, err)
		}
	}
	if !strings.Contains(err.Error(), "found no matching overload for '_+_' applied to '(int, string)'") {
		t.Errorf("the CEL error is not shown: %v", err)
	}
	var warned []string
	for _, w := range e.Warnings() {
		warned = append(warned, w.String())
	}
	wantWarn := []string{file("unknown-policy.yaml") + `: policy PolicyException/policy-exceptions/typo: spec.exceptions[0]: policy "require-teams" is not loaded (a ClusterPolicy is named by its name, a Policy by namespace/name); this entry excuses nothing`}
	if diff := cmp.Diff(wantWarn, warned); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	// The policies stay in force, the one the broken exception names too.
	d := e.Evaluate(context.Background(), policies.ObjectInput(policies.SourceCheck, namedDeployment("batch", 9), appsNamespace))
	if diff := cmp.Diff([]string{"ValidatingPolicy/max-replicas|enforce|-|replicas must be at most 5, not 9"}, judged(d)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	d = e.Evaluate(context.Background(), policies.ObjectInput(policies.SourceCheck, namedPod("legacy-web"), appsNamespace))
	if len(d.Findings) != 1 || d.Findings[0].Policy != "ClusterPolicy/require-team" || d.Findings[0].Waived() {
		t.Errorf("findings %v", judged(d))
	}
}

func TestExceptionsMalformed(t *testing.T) {
	tests := []struct {
		name string
		opts kyverno.Options
		want string
	}{
		{"not an exception", kyverno.Options{Exceptions: []kyverno.Object{{Source: "x.yaml", Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "c"}}}}},
			"x.yaml: policy ConfigMap/c: v1 ConfigMap is not a Kyverno PolicyException"},
		{"nil object", kyverno.Options{Exceptions: []kyverno.Object{{Source: "x.yaml"}}}, "x.yaml: not an object"},
		{"unknown version", kyverno.Options{Exceptions: []kyverno.Object{{Source: "x.yaml", Object: map[string]any{"apiVersion": "kyverno.io/v9", "kind": "PolicyException", "metadata": map[string]any{"name": "p", "namespace": "n"}}}}},
			"x.yaml: policy PolicyException/n/p: unknown version kyverno.io/v9"},
		{"no exceptions listed", kyverno.Options{Exceptions: []kyverno.Object{{Source: "x.yaml", Object: map[string]any{"apiVersion": "kyverno.io/v2", "kind": "PolicyException", "metadata": map[string]any{"name": "p", "namespace": "n"}, "spec": map[string]any{}}}}},
			"spec.exceptions: Required value"},
		{"no name", kyverno.Options{ExceptionNamespaces: []string{"n"}, Exceptions: []kyverno.Object{{Source: "x.yaml", Object: map[string]any{"apiVersion": "policies.kyverno.io/v1", "kind": "PolicyException", "metadata": map[string]any{"namespace": "n"}, "spec": map[string]any{"policyRefs": []any{map[string]any{"name": "p", "kind": "ValidatingPolicy"}}}}}}},
			"metadata.name is required"},
		{"bad namespace glob", kyverno.Options{ExceptionNamespaces: []string{"["}}, `exceptionNamespaces[0]: "[" is not a namespace name or glob`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := kyverno.Compile(context.Background(), nil, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
			if e == nil {
				t.Error("nil evaluator")
			}
		})
	}
}

// An expired policies.kyverno.io exception does not count.
func TestExceptionExpired(t *testing.T) {
	x := func(expires time.Time) kyverno.Object {
		return kyverno.Object{Source: "x.yaml", Object: map[string]any{
			"apiVersion": "policies.kyverno.io/v1", "kind": "PolicyException",
			"metadata": map[string]any{"name": "batch", "namespace": "policy-exceptions"},
			"spec": map[string]any{
				"policyRefs": []any{map[string]any{"name": "max-replicas", "kind": "ValidatingPolicy"}},
				"expiresAt":  expires.UTC().Format(time.RFC3339),
			},
		}}
	}
	for _, tt := range []struct {
		expires time.Time
		waived  bool
	}{{time.Now().Add(-time.Hour), false}, {time.Now().Add(time.Hour), true}} {
		e, err := kyverno.Compile(context.Background(), load(t, "testdata"), kyverno.Options{
			ConfigMaps: []map[string]any{environments}, Exceptions: []kyverno.Object{x(tt.expires)}, ExceptionNamespaces: []string{"policy-exceptions"},
		})
		if err != nil {
			t.Fatal(err)
		}
		d := e.Evaluate(context.Background(), policies.ObjectInput(policies.SourceCheck, namedDeployment("web", 9), appsNamespace))
		if len(d.Findings) != 1 || d.Findings[0].Waived() != tt.waived {
			t.Errorf("expires %v: findings %v, want waived %v", tt.expires, judged(d), tt.waived)
		}
		if tt.waived && !d.Findings[0].Exception.Expires.Equal(tt.expires.Truncate(time.Second)) {
			t.Errorf("expiry %v, want %v", d.Findings[0].Exception.Expires, tt.expires)
		}
		if !tt.waived && (len(e.Warnings()) != 1 || !strings.Contains(e.Warnings()[0].Message, "not honoured: expired at")) {
			t.Errorf("warnings %v", e.Warnings())
		}
	}
}

// Evaluate and Mutate are safe for concurrent use, excused rules and
// MutatingPolicies included (run with -race).
func TestConcurrentUse(t *testing.T) {
	e, err := compileWithExceptions(t, filepath.Join("testdata", "exceptions"), "policy-exceptions")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan []string)
	for i := 0; i < 8; i++ {
		go func() {
			var out []string
			for j := 0; j < 5; j++ {
				in := policies.ObjectInput(policies.SourceCheck, namedPod("legacy-web"), appsNamespace)
				out = append(out, judged(e.Evaluate(context.Background(), in))...)
				ops, err := e.Mutate(context.Background(), in)
				if err != nil || len(ops) == 0 {
					out = append(out, "mutation: "+strings.TrimSpace(toJSON(ops)))
				}
			}
			done <- out
		}()
	}
	want := "ClusterPolicy/require-team|enforce|policy-exceptions/legacy-team|team-label: validation error: the label team is required. rule team-label failed at path /metadata/labels/team/"
	for i := 0; i < 8; i++ {
		for _, got := range <-done {
			if got != want {
				t.Errorf("got %q", got)
			}
		}
	}
}

// A policies.kyverno.io exception stops a MutatingPolicy mutating what it
// matches, where it counts.
func TestExceptionMutatingPolicy(t *testing.T) {
	mpol := load(t, "testdata")
	mpol = slices.DeleteFunc(mpol, func(o kyverno.Object) bool { return filepath.Base(o.Source) != "non-root-mpol.yaml" })
	x := func(namespace string) kyverno.Object {
		return kyverno.Object{Source: "x.yaml", Object: map[string]any{
			"apiVersion": "policies.kyverno.io/v1", "kind": "PolicyException",
			"metadata": map[string]any{"name": "legacy-root", "namespace": namespace},
			"spec": map[string]any{
				"policyRefs":      []any{map[string]any{"name": "run-as-non-root", "kind": "MutatingPolicy"}},
				"matchConditions": []any{map[string]any{"name": "legacy", "expression": "object.metadata.name.startsWith('legacy-')"}},
			},
		}}
	}
	for _, tt := range []struct {
		namespace, pod string
		mutated        bool
	}{
		{"policy-exceptions", "legacy-web", false},
		{"policy-exceptions", "web", true},
		{"apps", "legacy-web", true},
	} {
		e, err := kyverno.Compile(context.Background(), mpol, kyverno.Options{Exceptions: []kyverno.Object{x(tt.namespace)}, ExceptionNamespaces: []string{"policy-exceptions"}})
		if err != nil {
			t.Fatal(err)
		}
		ops, err := e.Mutate(context.Background(), policies.ObjectInput(policies.SourceCheck, namedPod(tt.pod), appsNamespace))
		if err != nil || (len(ops) > 0) != tt.mutated {
			t.Errorf("exception in %s, pod %s: patch %v (%v), want mutated %v", tt.namespace, tt.pod, ops, err, tt.mutated)
		}
	}
}

// A namespaced Policy is named namespace/name in an exception, as in
// Kyverno.
func TestExceptionNamespacedPolicy(t *testing.T) {
	p := kyverno.Object{Source: "p.yaml", Object: map[string]any{
		"apiVersion": "kyverno.io/v1", "kind": "Policy",
		"metadata": map[string]any{"name": "team", "namespace": "apps"},
		"spec": map[string]any{"rules": []any{map[string]any{
			"name":  "team-label",
			"match": map[string]any{"any": []any{map[string]any{"resources": map[string]any{"kinds": []any{"Pod"}}}}},
			"validate": map[string]any{
				"failureAction": "Enforce", "message": "the label team is required",
				"pattern": map[string]any{"metadata": map[string]any{"labels": map[string]any{"team": "?*"}}},
			},
		}}},
	}}
	x := func(policyName string) kyverno.Object {
		return kyverno.Object{Source: "x.yaml", Object: map[string]any{
			"apiVersion": "kyverno.io/v2", "kind": "PolicyException",
			"metadata": map[string]any{"name": "legacy", "namespace": "policy-exceptions"},
			"spec": map[string]any{
				"exceptions": []any{map[string]any{"policyName": policyName, "ruleNames": []any{"*"}}},
				"match":      map[string]any{"any": []any{map[string]any{"resources": map[string]any{"kinds": []any{"Pod"}}}}},
			},
		}}
	}
	for name, want := range map[string]string{"apps/team": "policy-exceptions/legacy", "team": "-"} {
		e, err := kyverno.Compile(context.Background(), []kyverno.Object{p}, kyverno.Options{Exceptions: []kyverno.Object{x(name)}, ExceptionNamespaces: []string{"policy-exceptions"}})
		if err != nil {
			t.Fatal(err)
		}
		got := judged(e.Evaluate(context.Background(), policies.ObjectInput(policies.SourceCheck, namedPod("web"), appsNamespace)))
		if len(got) != 1 || strings.Split(got[0], "|")[2] != want {
			t.Errorf("policyName %s: %v, want waived by %s", name, got, want)
		}
		if want == "-" && (len(e.Warnings()) != 1 || !strings.Contains(e.Warnings()[0].Message, `policy "team" is not loaded`)) {
			t.Errorf("policyName %s: warnings %v", name, e.Warnings())
		}
	}
}

// An exception without a namespace counts only where every namespace is
// designated ("*"), as a Kyverno test suite's exceptions need.
func TestExceptionWithoutNamespace(t *testing.T) {
	x := kyverno.Object{Source: "x.yaml", Object: map[string]any{
		"apiVersion": "policies.kyverno.io/v1", "kind": "PolicyException",
		"metadata": map[string]any{"name": "batch"},
		"spec":     map[string]any{"policyRefs": []any{map[string]any{"name": "max-replicas", "kind": "ValidatingPolicy"}}},
	}}
	for _, tt := range []struct {
		namespaces []string
		waived     bool
	}{{[]string{"policy-exceptions"}, false}, {[]string{"*"}, true}, {nil, false}} {
		e, err := kyverno.Compile(context.Background(), load(t, "testdata"), kyverno.Options{
			ConfigMaps: []map[string]any{environments}, Exceptions: []kyverno.Object{x}, ExceptionNamespaces: tt.namespaces,
		})
		if err != nil {
			t.Fatal(err)
		}
		d := e.Evaluate(context.Background(), policies.ObjectInput(policies.SourceCheck, namedDeployment("web", 9), appsNamespace))
		if len(d.Findings) != 1 || d.Findings[0].Waived() != tt.waived {
			t.Errorf("%v: findings %v, want waived %v", tt.namespaces, judged(d), tt.waived)
		}
		if !tt.waived && (len(e.Warnings()) != 1 || !strings.Contains(e.Warnings()[0].Message, "it has no metadata.namespace")) {
			t.Errorf("%v: warnings %v", tt.namespaces, e.Warnings())
		}
	}
}
