package policies_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/types"

	"github.com/tollgate-dev/tollgate/policies"
)

const privilegedPolicy = `# METADATA
# title: Privileged containers
# custom:
#   id: test-privileged
#   severity: high
#   scope: pod
#   controls:
#     - framework: cis
#       id: "5.2.2"
#   remediation: Drop privileged.
package test.privileged

violation contains {"msg": sprintf("container %q is privileged", [c.name]), "path": ["spec", field, i, "securityContext", "privileged"]} if {
	some field in ["containers", "initContainers", "ephemeralContainers"]
	some i, c in input.pod.spec[field]
	c.securityContext.privileged == true
}
`

const namespaceLabelPolicy = `# METADATA
# title: Namespaces carry a team
# custom:
#   id: test-ns-team
#   kinds: [Namespace]
#   action: warn
#   severity: low
package test.nsteam

violation contains {"msg": "namespace has no team label", "path": ["metadata", "labels"]} if {
	not input.object.metadata.labels.team
}
`

func newEngine(t testing.TB, files map[string]string, opts ...func(*policies.Options)) *policies.Engine {
	t.Helper()
	fsys := fstest.MapFS{}
	for name, text := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(text)}
	}
	mods, err := policies.ReadFS(fsys, "test", false)
	if err != nil {
		t.Fatal(err)
	}
	o := policies.Options{Modules: mods}
	for _, f := range opts {
		f(&o)
	}
	e, err := policies.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func podSpec() map[string]any {
	return map[string]any{
		"containers": []any{
			map[string]any{"name": "app", "image": "nginx:1.27"},
			map[string]any{"name": "sidecar", "image": "envoy:1", "securityContext": map[string]any{"privileged": true}},
		},
		"initContainers": []any{
			map[string]any{"name": "init", "image": "busybox:1", "securityContext": map[string]any{"privileged": true}},
		},
		"ephemeralContainers": []any{
			map[string]any{"name": "debug", "image": "busybox:1", "securityContext": map[string]any{"privileged": true}},
		},
	}
}

// wrap puts a pod template into a kind, the way each API writes it.
func wrap(apiVersion, kind string, tmpl map[string]any) map[string]any {
	obj := map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{"name": "x", "namespace": "team-a"}}
	switch kind {
	case "Pod":
		obj["spec"] = tmpl["spec"]
	case "PodTemplate":
		obj["template"] = tmpl
	case "CronJob":
		obj["spec"] = map[string]any{"jobTemplate": map[string]any{"spec": map[string]any{"template": tmpl}}}
	default:
		obj["spec"] = map[string]any{"template": tmpl}
	}
	return obj
}

func TestPodControllersPointIntoTheTemplate(t *testing.T) {
	e := newEngine(t, map[string]string{"privileged.rego": privilegedPolicy})
	tmpl := map[string]any{"metadata": map[string]any{}, "spec": podSpec()}
	tests := []struct {
		apiVersion, kind string
		want             []string
	}{
		{"v1", "Pod", []string{"spec.containers[1].securityContext.privileged"}},
		{"apps/v1", "Deployment", []string{"spec.template.spec.containers[1].securityContext.privileged"}},
		{"apps/v1", "ReplicaSet", []string{"spec.template.spec.containers[1].securityContext.privileged"}},
		{"apps/v1", "StatefulSet", []string{"spec.template.spec.containers[1].securityContext.privileged"}},
		{"apps/v1", "DaemonSet", []string{"spec.template.spec.containers[1].securityContext.privileged"}},
		{"batch/v1", "Job", []string{"spec.template.spec.containers[1].securityContext.privileged"}},
		{"batch/v1", "CronJob", []string{"spec.jobTemplate.spec.template.spec.containers[1].securityContext.privileged"}},
		{"v1", "ReplicationController", []string{"spec.template.spec.containers[1].securityContext.privileged"}},
		{"v1", "PodTemplate", []string{"template.spec.containers[1].securityContext.privileged"}},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			obj := wrap(tt.apiVersion, tt.kind, tmpl)
			d := e.Evaluate(context.Background(), policies.ObjectInput(policies.SourceCheck, obj, nil))
			if len(d.Errors) > 0 {
				t.Fatalf("errors: %v", d.Errors)
			}
			var got []string
			for _, f := range d.Findings {
				got = append(got, f.Path)
			}
			// Every kind reports all three containers; check the sidecar
			// path literally and that init and ephemeral are covered.
			if len(got) != 3 {
				t.Fatalf("got %d findings %v, want 3 (container, init, ephemeral)", len(got), got)
			}
			want := tt.want[0]
			if !contains(got, want) {
				t.Errorf("paths %v lack %s", got, want)
			}
			prefix := strings.TrimSuffix(want, "containers[1].securityContext.privileged")
			for _, p := range []string{prefix + "initContainers[0].securityContext.privileged", prefix + "ephemeralContainers[0].securityContext.privileged"} {
				if !contains(got, p) {
					t.Errorf("paths %v lack %s", got, p)
				}
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestFindingCarriesMetadataAndConfigOverrides(t *testing.T) {
	files := map[string]string{"privileged.rego": privilegedPolicy, "ns.rego": namespaceLabelPolicy}
	pod := wrap("v1", "Pod", map[string]any{"spec": map[string]any{"containers": []any{
		map[string]any{"name": "app", "securityContext": map[string]any{"privileged": true}},
	}}})
	e := newEngine(t, files)
	d := e.Evaluate(context.Background(), policies.ObjectInput(policies.SourceCheck, pod, nil))
	want := []policies.Finding{{
		Policy:      "test-privileged",
		Title:       "Privileged containers",
		Message:     `container "app" is privileged`,
		Severity:    policies.SeverityHigh,
		Action:      policies.ActionEnforce,
		Path:        "spec.containers[0].securityContext.privileged",
		Controls:    []policies.Control{{Framework: "cis", ID: "5.2.2"}},
		Remediation: "Drop privileged.",
	}}
	if diff := cmp.Diff(want, d.Findings); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	if !d.Denied() {
		t.Error("an enforce finding must deny")
	}

	// Override: warn, and exempt a namespace.
	cfg, err := policies.ParseConfig([]byte(`
policies:
  test-privileged: {action: warn, exemptNamespaces: [legacy]}
`))
	if err != nil {
		t.Fatal(err)
	}
	e = newEngine(t, files, func(o *policies.Options) { o.Config = cfg })
	d = e.Evaluate(context.Background(), policies.ObjectInput(policies.SourceCheck, pod, nil))
	if len(d.Findings) != 1 || d.Findings[0].Action != policies.ActionWarn || d.Denied() {
		t.Errorf("override to warn: got %+v", d.Findings)
	}
	legacy := wrap("v1", "Pod", map[string]any{"spec": pod["spec"]})
	legacy["metadata"] = map[string]any{"name": "x", "namespace": "legacy"}
	if d := e.Evaluate(context.Background(), policies.ObjectInput(policies.SourceCheck, legacy, nil)); len(d.Findings) != 0 {
		t.Errorf("exempt namespace judged: %+v", d.Findings)
	}
	// Global exemptions apply to every policy; kube-system is one by default.
	legacy["metadata"] = map[string]any{"name": "x", "namespace": "kube-system"}
	if d := e.Evaluate(context.Background(), policies.ObjectInput(policies.SourceCheck, legacy, nil)); len(d.Findings) != 0 {
		t.Errorf("kube-system judged: %+v", d.Findings)
	}
}

func TestKindsLimitObjectPolicies(t *testing.T) {
	e := newEngine(t, map[string]string{"ns.rego": namespaceLabelPolicy})
	ns := map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "shop"}}
	cm := map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "c", "namespace": "shop"}}
	if d := e.Evaluate(context.Background(), policies.ObjectInput(policies.SourceCheck, ns, nil)); len(d.Findings) != 1 || d.Findings[0].Action != policies.ActionWarn {
		t.Errorf("namespace: got %+v", d.Findings)
	}
	if d := e.Evaluate(context.Background(), policies.ObjectInput(policies.SourceCheck, cm, nil)); len(d.Findings) != 0 {
		t.Errorf("configmap judged by a Namespace policy: %+v", d.Findings)
	}
	// An unknown CRD is allowed unless a policy matches it.
	crd := map[string]any{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": map[string]any{"name": "w"}}
	if d := e.Evaluate(context.Background(), policies.ObjectInput(policies.SourceCheck, crd, nil)); len(d.Findings) != 0 || len(d.Errors) != 0 {
		t.Errorf("unknown kind: got %+v", d)
	}
}

func TestConfiguredPodControllers(t *testing.T) {
	cfg, err := policies.ParseConfig([]byte(`
podControllers:
  - {group: argoproj.io, kind: Rollout, template: spec.template}
`))
	if err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, map[string]string{"p.rego": privilegedPolicy}, func(o *policies.Options) { o.Config = cfg })
	rollout := wrap("argoproj.io/v1alpha1", "Rollout", map[string]any{"spec": map[string]any{"containers": []any{
		map[string]any{"name": "app", "securityContext": map[string]any{"privileged": true}},
	}}})
	d := e.Evaluate(context.Background(), policies.ObjectInput(policies.SourceCheck, rollout, nil))
	if len(d.Findings) != 1 || d.Findings[0].Path != "spec.template.spec.containers[0].securityContext.privileged" {
		t.Errorf("rollout: got %+v", d.Findings)
	}
}

func TestCompileErrorsNameFileAndLine(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"syntax.rego", "package x\n\nviolation contains msg if {\n  msg := \n}\n", "test/syntax.rego:5:1: rego_parse_error"},
		{"unsafe.rego", "package x\n\nviolation contains msg if {\n  y == 1\n}\n", "test/unsafe.rego:3"},
		{"nopkg.rego", "# nothing here\n", "test/nopkg.rego"},
		{"badmeta.rego", "# METADATA\n# custom:\n#   severity: urgent\npackage x\n\nviolation contains \"m\" if false\n", `test/badmeta.rego:4: METADATA custom.severity: unknown severity "urgent"`},
		{"badscope.rego", "# METADATA\n# custom:\n#   scope: cluster\npackage x\n\nviolation contains \"m\" if false\n", `custom.scope: "cluster" is neither pod nor object`},
		{"badyaml.rego", "# METADATA\n# custom: [unclosed\npackage x\n\nviolation contains \"m\" if false\n", "test/badyaml.rego:2:1: rego_parse_error: yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mods, err := policies.ReadFS(fstest.MapFS{tt.name: {Data: []byte(tt.text)}}, "test", false)
			if err != nil {
				t.Fatal(err)
			}
			_, err = policies.New(context.Background(), policies.Options{Modules: mods})
			if err == nil {
				t.Fatal("want a compile error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name %q", err, tt.want)
			}
		})
	}
}

func TestDuplicatePolicyIDs(t *testing.T) {
	second := strings.Replace(privilegedPolicy, "package test.privileged", "package test.other", 1)
	mods, err := policies.ReadFS(fstest.MapFS{
		"a.rego": {Data: []byte(privilegedPolicy)},
		"b.rego": {Data: []byte(second)},
	}, "test", false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = policies.New(context.Background(), policies.Options{Modules: mods})
	if err == nil || !strings.Contains(err.Error(), `policy id "test-privileged" is already used by`) ||
		!strings.Contains(err.Error(), "test/a.rego:11") || !strings.Contains(err.Error(), "test/b.rego:11") {
		t.Errorf("got %v", err)
	}
}

// A policy that loops, errors or panics is contained: it is reported and
// the others still run.
func TestBadPoliciesAreContained(t *testing.T) {
	loop := `# METADATA
# custom:
#   id: test-loop
package test.loop

violation contains "never" if {
	some i in numbers.range(1, 20000)
	some j in numbers.range(1, 20000)
	i + j < 0
}
`
	conflict := `# METADATA
# custom:
#   id: test-conflict
package test.conflict

x := 1 if input.object
x := 2 if input.object

violation contains "conflict" if x > 0
`
	badBuiltin := `# METADATA
# custom:
#   id: test-builtin-error
package test.builtinerr

violation contains "n" if to_number(input.object.metadata.name) > 1
`
	panics := `# METADATA
# custom:
#   id: test-panic
package test.panics

violation contains "boom" if test.explode(input.object.metadata.name)
`
	explode := policies.Builtin{
		Name: "test.explode",
		Decl: types.NewFunction(types.Args(types.S), types.B),
		Impl: func(rego.BuiltinContext, []*ast.Term) (*ast.Term, error) { panic("kaboom") },
	}
	e := newEngine(t, map[string]string{
		"privileged.rego": privilegedPolicy, "loop.rego": loop, "conflict.rego": conflict,
		"builtin.rego": badBuiltin, "panic.rego": panics,
	}, func(o *policies.Options) {
		o.PolicyTimeout = 200 * time.Millisecond
		o.Builtins = []policies.Builtin{explode}
	})
	pod := wrap("v1", "Pod", map[string]any{"spec": map[string]any{"containers": []any{
		map[string]any{"name": "app", "securityContext": map[string]any{"privileged": true}},
	}}})
	d := e.Evaluate(context.Background(), policies.ObjectInput(policies.SourceCheck, pod, nil))
	if len(d.Findings) != 1 || d.Findings[0].Policy != "test-privileged" {
		t.Errorf("the sound policy must still report: %+v", d.Findings)
	}
	got := map[string]string{}
	for _, pe := range d.Errors {
		got[pe.Policy] = pe.Error()
	}
	for id, want := range map[string]string{
		"test-loop":          "evaluation stopped after 200ms",
		"test-conflict":      "eval_conflict_error",
		"test-builtin-error": "to_number",
		"test-panic":         "panic: kaboom",
	} {
		if !strings.Contains(got[id], want) {
			t.Errorf("policy %s: error %q, want it to mention %q", id, got[id], want)
		}
	}
	for _, pe := range d.Errors {
		if pe.Policy == "test-loop" && !errors.Is(pe, context.DeadlineExceeded) {
			t.Errorf("timeout error does not wrap DeadlineExceeded: %v", pe)
		}
	}
}

// TestPoliciesForOtherKindsAreNotEvaluated: a policy is evaluated only on
// the kinds it names, so a slow or failing policy for one kind costs the
// others nothing (the audit judges every stored object; admission every
// request). The counting built-in sees every evaluation.
func TestPoliciesForOtherKindsAreNotEvaluated(t *testing.T) {
	var calls atomic.Int64
	count := policies.Builtin{
		Name: "test.count",
		Decl: types.NewFunction(types.Args(types.S), types.B),
		Impl: func(rego.BuiltinContext, []*ast.Term) (*ast.Term, error) {
			calls.Add(1)
			return ast.BooleanTerm(true), nil
		},
	}
	other := `# METADATA
# custom:
#   id: test-other-kind
#   scope: object
#   kinds: [example.com/Other]
package test.other

violation contains "counted" if test.count(input.object.metadata.name)
`
	e := newEngine(t, map[string]string{"privileged.rego": privilegedPolicy, "other.rego": other},
		func(o *policies.Options) { o.Builtins = []policies.Builtin{count} })
	pod := wrap("v1", "Pod", map[string]any{"spec": map[string]any{"containers": []any{
		map[string]any{"name": "app", "securityContext": map[string]any{"privileged": true}},
	}}})
	for range 3 {
		d := e.Evaluate(context.Background(), policies.ObjectInput(policies.SourceCheck, pod, nil))
		if len(d.Findings) != 1 || d.Findings[0].Policy != "test-privileged" || len(d.Errors) != 0 {
			t.Fatalf("pod: %+v %v", d.Findings, d.Errors)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("the policy for example.com/Other was evaluated %d times on Pods", n)
	}
	obj := wrap("example.com/v1", "Other", map[string]any{})
	d := e.Evaluate(context.Background(), policies.ObjectInput(policies.SourceCheck, obj, nil))
	if len(d.Findings) != 1 || d.Findings[0].Policy != "test-other-kind" || calls.Load() != 1 {
		t.Errorf("Other: %+v, %d calls", d.Findings, calls.Load())
	}
}

// The prepared queries are shared by every request; run with -race.
func TestConcurrentEvaluation(t *testing.T) {
	e := newEngine(t, map[string]string{"privileged.rego": privilegedPolicy, "ns.rego": namespaceLabelPolicy})
	tmpl := map[string]any{"metadata": map[string]any{}, "spec": podSpec()}
	inputs := []*policies.Input{
		policies.ObjectInput(policies.SourceCheck, wrap("apps/v1", "Deployment", tmpl), nil),
		policies.ObjectInput(policies.SourceCheck, wrap("batch/v1", "CronJob", tmpl), nil),
		policies.ObjectInput(policies.SourceCheck, map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "n"}}, nil),
	}
	want := make([]*policies.Decision, len(inputs))
	for i, in := range inputs {
		want[i] = e.Evaluate(context.Background(), in)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for n := 0; n < 50; n++ {
				i := (g + n) % len(inputs)
				got := e.Evaluate(context.Background(), inputs[i])
				if diff := cmp.Diff(want[i], got); diff != "" {
					errs <- fmt.Sprintf("goroutine %d, input %d: %s", g, i, diff)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestBundles(t *testing.T) {
	// testdata/bundle.tar.gz is built by `opa build` (make testdata).
	mods, data, err := policies.ReadPath("testdata/bundle.tar.gz", false)
	if err != nil {
		t.Fatal(err)
	}
	e, err := policies.New(context.Background(), policies.Options{Modules: mods, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.Policies(); len(got) != 1 || got[0].ID != "bundle-registry" || !strings.HasPrefix(got[0].Source, "testdata/bundle.tar.gz/") {
		t.Fatalf("policies from bundle: %+v", got)
	}
	pod := wrap("v1", "Pod", map[string]any{"spec": map[string]any{"containers": []any{
		map[string]any{"name": "app", "image": "evil.example/x:1"},
		map[string]any{"name": "ok", "image": "registry.corp.example/x:1"},
	}}})
	d := e.Evaluate(context.Background(), policies.ObjectInput(policies.SourceCheck, pod, nil))
	if len(d.Findings) != 1 || d.Findings[0].Path != "spec.containers[0].image" {
		t.Errorf("bundle policy with bundle data: %+v %v", d.Findings, d.Errors)
	}

	for name, body := range map[string][]byte{
		"notgzip.tar.gz": []byte("this is not a tarball"),
		"empty.tar.gz":   {},
	} {
		p := t.TempDir() + "/" + name
		if err := os.WriteFile(p, body, 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := policies.ReadPath(p, false)
		if err == nil || !strings.Contains(err.Error(), "not a gzipped tarball") || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func TestPathsRoundTrip(t *testing.T) {
	tests := []struct {
		segs []any
		want string
	}{
		{[]any{"spec", "containers", 0, "securityContext", "privileged"}, "spec.containers[0].securityContext.privileged"},
		{[]any{"metadata", "annotations", "container.apparmor.security.beta.kubernetes.io/app"}, `metadata.annotations["container.apparmor.security.beta.kubernetes.io/app"]`},
		{[]any{"metadata", "labels", "cost-center"}, "metadata.labels.cost-center"},
		{[]any{"metadata", "labels", "équipe]\"x"}, `metadata.labels["équipe]\"x"]`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			got := policies.FormatPath(tt.segs)
			if got != tt.want {
				t.Fatalf("FormatPath = %s, want %s", got, tt.want)
			}
			back, err := policies.ParsePath(got)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.segs, back); diff != "" {
				t.Errorf("ParsePath (-want +got):\n%s", diff)
			}
		})
	}
	for _, bad := range []string{"a..b", ".a", "a[", "a[x]", `a["x`, "a.", "a[-1]"} {
		if _, err := policies.ParsePath(bad); err == nil {
			t.Errorf("ParsePath(%q) accepted a malformed path", bad)
		}
	}
}

func TestOverridesOfUnknownPoliciesAreErrors(t *testing.T) {
	cfg, err := policies.ParseConfig([]byte("policies:\n  test-privilegd: {action: warn}\n"))
	if err != nil {
		t.Fatal(err)
	}
	mods, err := policies.ReadFS(fstest.MapFS{"p.rego": {Data: []byte(privilegedPolicy)}}, "test", false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = policies.New(context.Background(), policies.Options{Modules: mods, Config: cfg})
	if err == nil || !strings.Contains(err.Error(), "config policies.test-privilegd: no loaded policy has this id") {
		t.Errorf("got %v", err)
	}
}

// managedFieldsPolicy reports what it can see of server-side apply's
// bookkeeping, and that the rest of the metadata is there.
const managedFieldsPolicy = `# METADATA
# title: Sees managedFields
# custom:
#   id: test-managed-fields
package test.managedfields

violation contains "managedFields visible" if input.object.metadata.managedFields

violation contains "old managedFields visible" if input.oldObject.metadata.managedFields

violation contains "namespace managedFields visible" if input.namespace.metadata.managedFields

violation contains "labels missing" if not input.object.metadata.labels.team
`

// TestManagedFieldsAreNotPolicyInput: metadata.managedFields is left out of
// what policies see (object, oldObject, namespace), the rest of the
// metadata is not, and the caller's objects keep theirs.
func TestManagedFieldsAreNotPolicyInput(t *testing.T) {
	e := newEngine(t, map[string]string{"mf.rego": managedFieldsPolicy})
	withMF := func(name string) map[string]any {
		return map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{
			"name": name, "namespace": "shop", "labels": map[string]any{"team": "payments"},
			"managedFields": []any{map[string]any{"manager": "kubectl", "operation": "Apply", "fieldsV1": map[string]any{"f:data": map[string]any{}}}},
		}}
	}
	obj, old := withMF("c"), withMF("c")
	ns := map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{
		"name": "shop", "managedFields": []any{map[string]any{"manager": "kubectl"}},
	}}
	in := policies.ObjectInput(policies.SourceAdmission, obj, ns)
	in.OldObject, in.Operation = old, "UPDATE"
	if d := e.Evaluate(context.Background(), in); len(d.Findings) != 0 || len(d.Errors) != 0 {
		t.Errorf("policies saw managedFields or lost labels: %+v %v", d.Findings, d.Errors)
	}
	for name, m := range map[string]map[string]any{"object": obj, "oldObject": old, "namespace": ns} {
		if _, ok := m["metadata"].(map[string]any)["managedFields"]; !ok {
			t.Errorf("the caller's %s lost its managedFields", name)
		}
	}
	// Metadata that is not an object is passed as it is.
	odd := map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": "not an object"}
	if d := e.Evaluate(context.Background(), policies.ObjectInput(policies.SourceAdmission, odd, nil)); len(d.Findings) != 1 || d.Findings[0].Message != "labels missing" {
		t.Errorf("odd metadata: %+v %v", d.Findings, d.Errors)
	}
}
