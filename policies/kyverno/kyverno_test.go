package kyverno_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/kyverno"
	"github.com/tollgate-dev/tollgate/policies/review"
)

// load reads every YAML file of dir as one object each.
func load(t *testing.T, dir string) []kyverno.Object {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []kyverno.Object
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var obj map[string]any
		if err := yaml.Unmarshal(raw, &obj); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, kyverno.Object{Source: f, Object: obj})
	}
	return out
}

var environments = map[string]any{
	"apiVersion": "v1", "kind": "ConfigMap",
	"metadata": map[string]any{"name": "environments", "namespace": "platform"},
	"data":     map[string]any{"allowed": `["dev","prod"]`},
}

func compileGood(t *testing.T) *kyverno.Evaluator {
	t.Helper()
	e, err := kyverno.Compile(context.Background(), load(t, "testdata"), kyverno.Options{ConfigMaps: []map[string]any{environments}})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return e
}

// pod builds a Pod in namespace apps with labels and containers given as
// name=image.
func pod(labels map[string]any, containers ...map[string]any) map[string]any {
	cs := make([]any, len(containers))
	for i, c := range containers {
		cs[i] = c
	}
	return map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": "web", "namespace": "apps", "labels": labels},
		"spec":     map[string]any{"containers": cs},
	}
}

func container(name, image string) map[string]any {
	return map[string]any{"name": name, "image": image}
}

var appsNamespace = map[string]any{
	"apiVersion": "v1", "kind": "Namespace",
	"metadata": map[string]any{"name": "apps", "labels": map[string]any{"team": "web"}},
}

// findings summarises a decision as "policy|action|message prefix".
func findings(d *policies.Decision) []string {
	var out []string
	for _, f := range d.Findings {
		out = append(out, f.Policy+"|"+string(f.Action)+"|"+f.Message)
	}
	return out
}

func TestCompileGood(t *testing.T) {
	e := compileGood(t)
	var ids []string
	actions := map[string]policies.Action{}
	for _, m := range e.Policies() {
		ids = append(ids, m.ID)
		actions[m.ID] = m.Action
	}
	want := []string{
		"ClusterPolicy/allowed-environments", "ClusterPolicy/container-ports", "ClusterPolicy/default-owner",
		"ClusterPolicy/image-source", "ClusterPolicy/no-default-sa", "ClusterPolicy/pss-baseline",
		"ClusterPolicy/require-team", "MutatingPolicy/managed-label", "MutatingPolicy/run-as-non-root",
		"ValidatingPolicy/max-replicas",
	}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("policies (-want +got):\n%s", diff)
	}
	for id, a := range map[string]policies.Action{
		"ClusterPolicy/require-team":    policies.ActionEnforce,
		"ClusterPolicy/image-source":    policies.ActionAudit,
		"ClusterPolicy/default-owner":   policies.ActionAudit,
		"ValidatingPolicy/max-replicas": policies.ActionEnforce,
	} {
		if actions[id] != a {
			t.Errorf("%s: action %q, want %q", id, actions[id], a)
		}
	}
	for _, m := range e.Policies() {
		switch m.ID {
		case "ClusterPolicy/require-team":
			want := policies.Metadata{
				ID: m.ID, Title: "Workloads name their team", Severity: policies.SeverityHigh,
				Action: policies.ActionEnforce, Scope: policies.ScopeObject,
				Controls:    []policies.Control{{Framework: "soc2", ID: "CC6.1"}},
				Remediation: "Set metadata.labels.team.", Source: filepath.Join("testdata", "require-team.yaml"),
			}
			if diff := cmp.Diff(want, m); diff != "" {
				t.Errorf("metadata (-want +got):\n%s", diff)
			}
		case "ClusterPolicy/pss-baseline":
			if diff := cmp.Diff([]policies.Control{{Framework: "pss", ID: "baseline"}}, m.Controls); diff != "" {
				t.Errorf("pss-baseline controls (-want +got):\n%s", diff)
			}
		case "ValidatingPolicy/max-replicas":
			if m.Severity != policies.SeverityLow {
				t.Errorf("max-replicas severity %q, want low", m.Severity)
			}
		}
	}
	if w := e.Warnings(); len(w) != 0 {
		t.Errorf("warnings: %v", w)
	}
}

func TestEvaluate(t *testing.T) {
	e := compileGood(t)
	good := func() map[string]any {
		p := pod(map[string]any{"team": "web", "environment": "prod"}, container("app", "registry.example.com/web:1"))
		p["spec"].(map[string]any)["serviceAccountName"] = "web"
		return p
	}
	tests := []struct {
		name    string
		object  func() map[string]any
		want    []string
		applied int
	}{
		{name: "compliant", object: good},
		{
			name: "pattern: no team label",
			object: func() map[string]any {
				p := good()
				delete(p["metadata"].(map[string]any)["labels"].(map[string]any), "team")
				return p
			},
			want: []string{"ClusterPolicy/require-team|enforce|team-label: validation error: the label team is required. rule team-label failed at path /metadata/labels/team/"},
		},
		{
			name: "anyPattern: neither registry nor digest (audit)",
			object: func() map[string]any {
				p := good()
				p["spec"].(map[string]any)["containers"] = []any{container("app", "docker.io/web:1")}
				return p
			},
			want: []string{"ClusterPolicy/image-source|audit|registry-or-digest: validation error: images come from registry.example.com or are pinned by digest. rule registry-or-digest[0] failed at path /spec/containers/0/image/ rule registry-or-digest[1] failed at path /spec/containers/0/image/"},
		},
		{
			name: "deny with preconditions: backend on the default service account",
			object: func() map[string]any {
				p := good()
				p["metadata"].(map[string]any)["labels"].(map[string]any)["tier"] = "backend"
				delete(p["spec"].(map[string]any), "serviceAccountName")
				return p
			},
			want:    []string{"ClusterPolicy/no-default-sa|enforce|named-service-account: backend pods run as their own service account, not default"},
			applied: 6,
		},
		{
			name: "preconditions not met: frontend on the default service account",
			object: func() map[string]any {
				p := good()
				p["metadata"].(map[string]any)["labels"].(map[string]any)["tier"] = "frontend"
				delete(p["spec"].(map[string]any), "serviceAccountName")
				return p
			},
		},
		{
			name: "foreach: a container on port 22",
			object: func() map[string]any {
				p := good()
				c := container("ssh", "registry.example.com/ssh:1")
				c["ports"] = []any{map[string]any{"containerPort": 22}}
				p["spec"].(map[string]any)["containers"] = append(p["spec"].(map[string]any)["containers"].([]any), c)
				return p
			},
			want: []string{"ClusterPolicy/container-ports|enforce|no-port-22: validation failure: no container listens on port 22"},
		},
		{
			name: "podSecurity baseline: privileged",
			object: func() map[string]any {
				p := good()
				p["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)["securityContext"] = map[string]any{"privileged": true}
				return p
			},
			want: []string{"ClusterPolicy/pss-baseline|enforce|baseline: Validation rule 'baseline' failed. It violates PodSecurity \"baseline:latest\": (Forbidden reason: privileged, field error list: [spec.containers[0].securityContext.privileged is forbidden, forbidden values found: true])"},
		},
		{
			name: "ConfigMap context: environment not listed",
			object: func() map[string]any {
				p := good()
				p["metadata"].(map[string]any)["labels"].(map[string]any)["environment"] = "staging"
				return p
			},
			want: []string{`ClusterPolicy/allowed-environments|enforce|environment-listed: environment staging is not one of ["dev","prod"]`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := policies.ObjectInput(policies.SourceCheck, tt.object(), appsNamespace)
			d := e.Evaluate(context.Background(), in)
			if len(d.Errors) > 0 {
				t.Fatalf("errors: %v", d.Errors)
			}
			if diff := cmp.Diff(tt.want, findings(d)); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
			// Every validating Pod policy applied, but no-default-sa
			// where its preconditions do not hold.
			want := tt.applied
			if want == 0 {
				want = 5
			}
			if d.Applied != want {
				t.Errorf("applied %d, want %d", d.Applied, want)
			}
		})
	}
}

func TestEvaluateExclude(t *testing.T) {
	e := compileGood(t)
	p := pod(map[string]any{"environment": "dev"}, container("app", "registry.example.com/web:1"))
	p["metadata"].(map[string]any)["namespace"] = "kube-system"
	d := e.Evaluate(context.Background(), policies.ObjectInput(policies.SourceCheck, p, nil))
	for _, f := range d.Findings {
		if f.Policy == "ClusterPolicy/require-team" {
			t.Errorf("excluded namespace judged: %v", f)
		}
	}
}

func TestEvaluateValidatingPolicy(t *testing.T) {
	e := compileGood(t)
	deploy := func(replicas int) map[string]any {
		return map[string]any{
			"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"name": "web", "namespace": "apps"},
			"spec": map[string]any{
				"replicas": replicas,
				"selector": map[string]any{"matchLabels": map[string]any{"app": "web"}},
				"template": map[string]any{
					"metadata": map[string]any{"labels": map[string]any{"app": "web", "team": "web", "environment": "prod"}},
					"spec":     map[string]any{"containers": []any{container("app", "registry.example.com/web:1")}},
				},
			},
		}
	}
	for _, source := range []string{policies.SourceCheck, policies.SourceAudit, policies.SourceAdmission} {
		in := policies.ObjectInput(source, deploy(9), appsNamespace)
		if source == policies.SourceAdmission {
			in.Operation = "CREATE"
			in.UserInfo = &policies.UserInfo{Username: "alice"}
		}
		d := e.Evaluate(context.Background(), in)
		want := []string{"ValidatingPolicy/max-replicas|enforce|replicas must be at most 5, not 9"}
		if diff := cmp.Diff(want, findings(d)); diff != "" || len(d.Errors) > 0 {
			t.Errorf("%s: findings (-want +got):\n%s errors %v", source, diff, d.Errors)
		}
		d = e.Evaluate(context.Background(), policies.ObjectInput(source, deploy(3), appsNamespace))
		if len(d.Findings) > 0 || len(d.Errors) > 0 {
			t.Errorf("%s: compliant Deployment: %v %v", source, d.Findings, d.Errors)
		}
	}
}

// The ClusterPolicies written for Pods judge Deployments' pod templates
// too (Kyverno's autogen).
func TestEvaluatePodControllers(t *testing.T) {
	e := compileGood(t)
	d := map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web", "namespace": "apps"},
		"spec": map[string]any{
			"replicas": 1,
			"selector": map[string]any{"matchLabels": map[string]any{"app": "web"}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": "web", "environment": "dev"}},
				"spec":     map[string]any{"containers": []any{container("app", "registry.example.com/web:1")}},
			},
		},
	}
	got := e.Evaluate(context.Background(), policies.ObjectInput(policies.SourceCheck, d, appsNamespace))
	if !slices.ContainsFunc(got.Findings, func(f policies.Finding) bool {
		return f.Policy == "ClusterPolicy/require-team" && strings.HasPrefix(f.Message, "autogen-team-label:")
	}) {
		t.Errorf("no autogen finding for the template's missing team label: %v", findings(got))
	}
}

func TestMutate(t *testing.T) {
	e := compileGood(t)
	p := pod(map[string]any{"team": "web"}, container("app", "registry.example.com/web:1"), container("side", "registry.example.com/side:1"))
	p["metadata"].(map[string]any)["annotations"] = map[string]any{"other": "x"}
	kept := pod(map[string]any{"team": "web"}, container("app", "registry.example.com/web:1"))
	kept["metadata"].(map[string]any)["annotations"] = map[string]any{"example.com/owner": "team-a"}
	in := policies.ObjectInput(policies.SourceCheck, p, appsNamespace)
	ops, err := e.Mutate(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := review.Apply(p, &policies.Mutation{Patch: ops})
	if err != nil {
		t.Fatal(err)
	}
	meta := got["metadata"].(map[string]any)
	if ann, _ := meta["annotations"].(map[string]any); ann["example.com/owner"] != "platform" {
		t.Errorf("owner annotation not added: %v", meta)
	}
	cs := got["spec"].(map[string]any)["containers"].([]any)
	escalation := func(i int) any {
		sc, _ := cs[i].(map[string]any)["securityContext"].(map[string]any)
		return sc["allowPrivilegeEscalation"]
	}
	if v := escalation(0); v != false {
		t.Errorf("container 0 allowPrivilegeEscalation %v, want false added", v)
	}
	if v := escalation(1); v != false {
		t.Errorf("container 1 allowPrivilegeEscalation %v, want false added", v)
	}
	// +(key) adds only what is not there: an owner the user set stays.
	ops, err = e.Mutate(context.Background(), policies.ObjectInput(policies.SourceCheck, kept, appsNamespace))
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		if strings.HasPrefix(op.Path, "/metadata/annotations") {
			t.Errorf("the user's owner annotation changed: %v", op)
		}
	}
	// Idempotent: the mutated object mutates to nothing more.
	again, err := e.Mutate(context.Background(), policies.ObjectInput(policies.SourceCheck, got, appsNamespace))
	if err != nil || len(again) != 0 {
		t.Errorf("second mutation: %v %v", again, err)
	}
	// Deleted objects are not mutated.
	del := policies.ObjectInput(policies.SourceAdmission, p, appsNamespace)
	del.Operation = "DELETE"
	if ops, err := e.Mutate(context.Background(), del); err != nil || len(ops) != 0 {
		t.Errorf("DELETE mutated: %v %v", ops, err)
	}
}

func TestCompileBad(t *testing.T) {
	objs := append(load(t, "testdata"), load(t, filepath.Join("testdata", "bad"))...)
	e, err := kyverno.Compile(context.Background(), objs, kyverno.Options{ConfigMaps: []map[string]any{environments}})
	if err == nil {
		t.Fatal("no error")
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
	type want struct{ file, policy, rule, text string }
	wants := []want{
		{"wrong-type.yaml", "ClusterPolicy/wrong-type", "", "cannot unmarshal string"},
		{"unknown-field.yaml", "ClusterPolicy/unknown-field", "", `unknown field "spec.rules[0].validate.patern"`},
		{"bad-cel.yaml", "ValidatingPolicy/bad-cel", "validations[1]", "no matching overload"},
		{"bad-variable.yaml", "ClusterPolicy/bad-variable", "broken-jmespath", ""},
		{"bad-mpol-cel.yaml", "MutatingPolicy/bad-mpol-cel", "mutations[0]", "found no matching overload for '_+_' applied to '(int, string)'"},
	}
	if len(loadErrs) != len(wants) {
		t.Errorf("%d errors, want %d: %v", len(loadErrs), len(wants), err)
	}
	for _, w := range wants {
		if !slices.ContainsFunc(loadErrs, func(le *kyverno.LoadError) bool {
			return filepath.Base(le.Source) == w.file && le.Policy == w.policy && le.Rule == w.rule && strings.Contains(le.Error(), w.text)
		}) {
			t.Errorf("no error for %s (policy %s rule %q, %q) in:\n%v", w.file, w.policy, w.rule, w.text, err)
		}
	}
	// The good policies still load, and so do the good ones among the bad.
	var ids []string
	for _, m := range e.Policies() {
		ids = append(ids, m.ID)
	}
	for _, id := range []string{"ClusterPolicy/require-team", "ValidatingPolicy/max-replicas", "ClusterPolicy/missing-field", "ClusterPolicy/with-generate", "MutatingPolicy/run-as-non-root"} {
		if !slices.Contains(ids, id) {
			t.Errorf("%s not loaded: %v", id, ids)
		}
	}
	// The generate rule is named in a warning, its validate rule runs.
	w := e.Warnings()
	if len(w) != 1 || w[0].Policy != "ClusterPolicy/with-generate" || w[0].Rule != "make-quota" || !strings.Contains(w[0].Message, "generate") {
		t.Errorf("warnings: %v", w)
	}
	// A pattern on a field Pods do not have fails its rule, by name and path.
	d := e.Evaluate(context.Background(), policies.ObjectInput(policies.SourceCheck,
		pod(map[string]any{"team": "web", "environment": "dev"}, container("app", "registry.example.com/web:1")), appsNamespace))
	if !slices.Contains(findings(d), "ClusterPolicy/missing-field|enforce|containerz: validation error: every container is named. rule containerz failed at path /spec/containerz/") {
		t.Errorf("missing-field: %v", findings(d))
	}
}

func TestCompileMalformed(t *testing.T) {
	tests := []struct {
		name string
		obj  map[string]any
		want string
	}{
		{"nil object", nil, "x.yaml: not an object"},
		{"no name", map[string]any{"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "spec": map[string]any{}}, "metadata.name is required"},
		{"Policy without namespace", map[string]any{"apiVersion": "kyverno.io/v1", "kind": "Policy", "metadata": map[string]any{"name": "p"}, "spec": map[string]any{}}, "needs metadata.namespace"},
		{"bad severity", map[string]any{
			"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
			"metadata": map[string]any{"name": "p", "annotations": map[string]any{"policies.kyverno.io/severity": "urgent"}},
			"spec": map[string]any{"rules": []any{map[string]any{
				"name": "r", "match": map[string]any{"any": []any{map[string]any{"resources": map[string]any{"kinds": []any{"Pod"}}}}},
				"validate": map[string]any{"message": "m", "pattern": map[string]any{"metadata": map[string]any{"name": "?*"}}},
			}}},
		}, `unknown severity "urgent"`},
		{"unknown CEL version", map[string]any{"apiVersion": "policies.kyverno.io/v9", "kind": "ValidatingPolicy", "metadata": map[string]any{"name": "p"}}, "unknown version policies.kyverno.io/v9"},
		{"duplicate field", map[string]any{"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": map[string]any{"name": "p"}, "spec": "x"}, "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := kyverno.Compile(context.Background(), []kyverno.Object{{Source: "x.yaml", Object: tt.obj}}, kyverno.Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "x.yaml") {
				t.Errorf("error %v, want x.yaml: ...%s", err, tt.want)
			}
			if e == nil || len(e.Policies()) != 0 {
				t.Errorf("evaluator %v", e)
			}
		})
	}
	if _, err := kyverno.Compile(context.Background(), nil, kyverno.Options{ConfigMaps: []map[string]any{{"kind": "Secret"}}}); err == nil || !strings.Contains(err.Error(), "configMaps[0]") {
		t.Errorf("bad ConfigMap option: %v", err)
	}
}

// Unsupported kinds load with a warning naming them; nothing else of
// other groups is read.
func TestCompileUnsupportedKinds(t *testing.T) {
	objs := []kyverno.Object{
		{Source: "a.yaml", Object: map[string]any{"apiVersion": "kyverno.io/v2", "kind": "ClusterCleanupPolicy", "metadata": map[string]any{"name": "old-pods"}}},
		{Source: "b.yaml", Object: map[string]any{"apiVersion": "policies.kyverno.io/v1", "kind": "GeneratingPolicy", "metadata": map[string]any{"name": "quota"}}},
		{Source: "c.yaml", Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "x"}}},
	}
	e, err := kyverno.Compile(context.Background(), objs, kyverno.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range e.Warnings() {
		got = append(got, w.String())
	}
	want := []string{
		"a.yaml: policy ClusterCleanupPolicy/old-pods: cleanup policies are not run by Tollgate; ignored",
		"b.yaml: policy GeneratingPolicy/quota: GeneratingPolicy is not run by Tollgate yet; ignored",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

// An input without an object is an error of every policy, not a pass.
func TestEvaluateNoObject(t *testing.T) {
	e := compileGood(t)
	d := e.Evaluate(context.Background(), &policies.Input{Kind: policies.GroupVersionKind{Version: "v1", Kind: "Pod"}, Source: policies.SourceCheck})
	if len(d.Errors) != 7 {
		t.Errorf("errors %v, want one per validating policy", d.Errors)
	}
}

var _ review.Evaluator = (*kyverno.Evaluator)(nil)
var _ review.Mutator = (*kyverno.Evaluator)(nil)
var _ review.Catalogue = (*kyverno.Evaluator)(nil)
