package kyverno_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/kyverno"
	"github.com/tollgate-dev/tollgate/policies/review"
)

// compileFiles compiles the named files of testdata and inline objects.
func compileFiles(t *testing.T, files []string, inline ...string) *kyverno.Evaluator {
	t.Helper()
	var objs []kyverno.Object
	for _, o := range load(t, "testdata") {
		for _, f := range files {
			if filepath.Base(o.Source) == f {
				objs = append(objs, o)
			}
		}
	}
	for i, doc := range inline {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatal(err)
		}
		objs = append(objs, kyverno.Object{Source: "inline-" + string(rune('a'+i)) + ".yaml", Object: obj})
	}
	e, err := kyverno.Compile(context.Background(), objs, kyverno.Options{})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return e
}

// mutate applies the evaluator's patch to obj.
func mutate(t *testing.T, e *kyverno.Evaluator, obj map[string]any) (map[string]any, []policies.PatchOperation) {
	t.Helper()
	ops, err := e.Mutate(context.Background(), policies.ObjectInput(policies.SourceCheck, obj, appsNamespace))
	if err != nil {
		t.Fatalf("Mutate: %v", err)
	}
	got, err := review.Apply(obj, &policies.Mutation{Patch: ops})
	if err != nil {
		t.Fatalf("applying %v: %v", ops, err)
	}
	return got, ops
}

func TestMutatingPolicy(t *testing.T) {
	e := compileFiles(t, []string{"managed-label-mpol.yaml", "non-root-mpol.yaml"})
	p := pod(map[string]any{"team": "web"}, container("app", "registry.example.com/web:1"))
	got, ops := mutate(t, e, p)
	want := []policies.PatchOperation{
		{Op: "add", Path: "/metadata/labels/example.com~1managed-by", Value: "platform"},
		{Op: "add", Path: "/spec/securityContext", Value: map[string]any{"runAsNonRoot": true}},
	}
	if diff := cmp.Diff(want, ops); diff != "" {
		t.Errorf("patch (-want +got):\n%s", diff)
	}
	// Idempotent: what they made mutates to nothing more.
	if _, again := mutate(t, e, got); len(again) != 0 {
		t.Errorf("second mutation: %v", again)
	}

	// No labels at all: the JSONPatch adds the map.
	bare := pod(nil, container("app", "registry.example.com/web:1"))
	delete(bare["metadata"].(map[string]any), "labels")
	got, _ = mutate(t, e, bare)
	if l := got["metadata"].(map[string]any)["labels"]; !cmp.Equal(l, map[string]any{"example.com/managed-by": "platform"}) {
		t.Errorf("labels %v", l)
	}

	// A value the user set is a choice, not a gap: nothing changes.
	mine := pod(map[string]any{"example.com/managed-by": "team-a"}, container("app", "registry.example.com/web:1"))
	mine["spec"].(map[string]any)["securityContext"] = map[string]any{"runAsNonRoot": false, "runAsUser": 0}
	if _, ops := mutate(t, e, mine); len(ops) != 0 {
		t.Errorf("the user's values changed: %v", ops)
	}

	// The securityContext default merges into one that exists.
	partial := pod(map[string]any{"team": "web"}, container("app", "registry.example.com/web:1"))
	partial["spec"].(map[string]any)["securityContext"] = map[string]any{"fsGroup": 2000}
	got, _ = mutate(t, e, partial)
	if sc := got["spec"].(map[string]any)["securityContext"]; toJSON(sc) != toJSON(map[string]any{"fsGroup": 2000, "runAsNonRoot": true}) {
		t.Errorf("securityContext %v", sc)
	}

	// Deleted objects are not mutated.
	del := policies.ObjectInput(policies.SourceAdmission, p, appsNamespace)
	del.Operation = "DELETE"
	if ops, err := e.Mutate(context.Background(), del); err != nil || len(ops) != 0 {
		t.Errorf("DELETE mutated: %v %v", ops, err)
	}
}

// toJSON renders a value for comparison whatever the Go types of its
// numbers.
func toJSON(v any) string {
	raw, _ := yaml.Marshal(v)
	return string(raw)
}

// Kyverno's autogen: a MutatingPolicy written for Pods mutates the pod
// template of a Deployment.
func TestMutatingPolicyPodControllers(t *testing.T) {
	e := compileFiles(t, []string{"non-root-mpol.yaml"})
	d := map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web", "namespace": "apps"},
		"spec": map[string]any{
			"replicas": 1,
			"selector": map[string]any{"matchLabels": map[string]any{"app": "web"}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": "web"}},
				"spec":     map[string]any{"containers": []any{container("app", "registry.example.com/web:1")}},
			},
		},
	}
	got, ops := mutate(t, e, d)
	want := []policies.PatchOperation{{Op: "add", Path: "/spec/template/spec/securityContext", Value: map[string]any{"runAsNonRoot": true}}}
	if diff := cmp.Diff(want, ops); diff != "" {
		t.Errorf("patch (-want +got):\n%s", diff)
	}
	if _, again := mutate(t, e, got); len(again) != 0 {
		t.Errorf("second mutation: %v", again)
	}
}

// The documented order: kyverno.io mutate rules first, then the
// MutatingPolicies by name, each seeing what the ones before made.
func TestMutatingPolicyOrder(t *testing.T) {
	seesOwner := `
apiVersion: policies.kyverno.io/v1
kind: MutatingPolicy
metadata: {name: sees-owner}
spec:
  matchConstraints:
    resourceRules:
      - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}
  matchConditions:
    - name: owner-set
      expression: "has(object.metadata.annotations) && object.metadata.annotations[?'example.com/owner'].orValue('') == 'platform'"
  mutations:
    - patchType: ApplyConfiguration
      applyConfiguration:
        expression: "Object{metadata: Object.metadata{labels: {'owner-seen': 'true'}}}"
`
	e := compileFiles(t, []string{"default-owner.yaml"}, seesOwner)
	got, _ := mutate(t, e, pod(map[string]any{"team": "web"}, container("app", "registry.example.com/web:1")))
	meta := got["metadata"].(map[string]any)
	if meta["labels"].(map[string]any)["owner-seen"] != "true" || meta["annotations"].(map[string]any)["example.com/owner"] != "platform" {
		t.Errorf("the MutatingPolicy did not see the ClusterPolicy's mutation: %v", meta)
	}
}

// A MutatingPolicy whose evaluation fails fails the mutation, naming it;
// with failurePolicy Ignore it changes nothing instead.
func TestMutatingPolicyFailure(t *testing.T) {
	broken := func(name, failurePolicy string) string {
		return `
apiVersion: policies.kyverno.io/v1
kind: MutatingPolicy
metadata: {name: ` + name + `}
spec:
  failurePolicy: ` + failurePolicy + `
  matchConstraints:
    resourceRules:
      - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}
  mutations:
    - patchType: JSONPatch
      jsonPatch:
        expression: "[JSONPatch{op: 'replace', path: '/spec/nodeName/x', value: 'n'}]"
`
	}
	e := compileFiles(t, nil, broken("strict", "Fail"))
	_, err := e.Mutate(context.Background(), policies.ObjectInput(policies.SourceCheck, pod(nil, container("app", "x")), appsNamespace))
	if err == nil || !strings.HasPrefix(err.Error(), "policy MutatingPolicy/strict: ") {
		t.Errorf("error %v, want one naming MutatingPolicy/strict", err)
	}
	e = compileFiles(t, []string{"non-root-mpol.yaml"}, broken("lenient", "Ignore"))
	_, ops := mutate(t, e, pod(nil, container("app", "x")))
	if len(ops) != 1 || ops[0].Path != "/spec/securityContext" {
		t.Errorf("with failurePolicy Ignore the other policies still mutate: %v", ops)
	}
}

// What of a MutatingPolicy Tollgate does not run is a warning naming it;
// the policy otherwise loads.
func TestMutatingPolicyWarnings(t *testing.T) {
	mp := func(name, evaluation string) kyverno.Object {
		var obj map[string]any
		doc := `
apiVersion: policies.kyverno.io/v1
kind: MutatingPolicy
metadata: {name: ` + name + `}
spec:
  matchConstraints:
    resourceRules:
      - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}
  evaluation: ` + evaluation + `
  mutations:
    - patchType: ApplyConfiguration
      applyConfiguration:
        expression: "Object{metadata: Object.metadata{labels: {'seen': 'true'}}}"
`
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatal(err)
		}
		return kyverno.Object{Source: name + ".yaml", Object: obj}
	}
	e, err := kyverno.Compile(context.Background(), []kyverno.Object{
		mp("background-only", "{admission: {enabled: false}}"),
		mp("json-mode", "{mode: JSON}"),
		mp("existing-too", "{mutateExisting: {enabled: true}}"),
	}, kyverno.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range e.Warnings() {
		got = append(got, w.String())
	}
	want := []string{
		"background-only.yaml: policy MutatingPolicy/background-only: evaluation.admission.enabled is false: it only mutates existing resources, which Tollgate does not run; ignored",
		"json-mode.yaml: policy MutatingPolicy/json-mode: evaluation mode JSON is not run by Tollgate; ignored",
		"existing-too.yaml: policy MutatingPolicy/existing-too: mutateExisting (targets changed in the background) is not run by Tollgate; it mutates at admission only",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	var ids []string
	for _, m := range e.Policies() {
		ids = append(ids, m.ID)
	}
	if diff := cmp.Diff([]string{"MutatingPolicy/existing-too"}, ids); diff != "" {
		t.Errorf("policies (-want +got):\n%s", diff)
	}
	got2, _ := mutate(t, e, pod(nil, container("app", "x")))
	if got2["metadata"].(map[string]any)["labels"].(map[string]any)["seen"] != "true" {
		t.Errorf("existing-too does not mutate at admission: %v", got2["metadata"])
	}
}
