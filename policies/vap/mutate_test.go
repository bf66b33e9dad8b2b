package vap

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/policies"
)

// apply applies a patch the way the webhook's caller would, to the JSON of
// the object as given.
func apply(t *testing.T, object map[string]any, ops []policies.PatchOperation) map[string]any {
	t.Helper()
	doc, err := json.Marshal(object)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	p, err := jsonpatch.DecodePatch(raw)
	if err != nil {
		t.Fatalf("decoding patch %s: %v", raw, err)
	}
	out, err := p.Apply(doc)
	if err != nil {
		t.Fatalf("applying patch %s: %v", raw, err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	return got
}

// plain round-trips an object through JSON, as apply's result is.
func plain(t *testing.T, object map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(object)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMutate(t *testing.T) {
	e := compile(t, Options{}, "mutating.yaml")
	cases := []struct {
		name string
		in   *policies.Input
		want map[string]any // nil: no patch
	}{
		{
			name: "sets a label and copies the team to the pods",
			in:   input(deployment("web", inNamespace("shop"), withLabels("team", "shop"))),
			want: deployment("web", inNamespace("shop"), withLabels("team", "shop", "app.kubernetes.io/managed-by", "tollgate"), func(o map[string]any) {
				o["spec"].(map[string]any)["template"].(map[string]any)["metadata"].(map[string]any)["labels"].(map[string]any)["example.com/team"] = "shop"
			}),
		},
		{
			name: "creates the labels map",
			in:   input(deployment("web", inNamespace("shop"))),
			want: deployment("web", inNamespace("shop"), withLabels("app.kubernetes.io/managed-by", "tollgate")),
		},
		{
			name: "already mutated: no patch",
			in:   input(deployment("web", inNamespace("shop"), withLabels("app.kubernetes.io/managed-by", "tollgate"))),
		},
		{name: "update is not matched", in: input(deployment("web", inNamespace("shop")), withOld(deployment("web", inNamespace("shop"))))},
		{name: "other kinds are not matched", in: input(obj("v1", "ConfigMap", "web", inNamespace("shop")))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ops, err := e.Mutate(context.Background(), tc.in)
			if err != nil {
				t.Fatalf("Mutate: %v", err)
			}
			if tc.want == nil {
				if ops != nil {
					t.Fatalf("Mutate = %+v, want no patch", ops)
				}
				return
			}
			if diff := cmp.Diff(plain(t, tc.want), apply(t, tc.in.Object, ops)); diff != "" {
				t.Errorf("patched object (-want +got):\n%s\npatch: %+v", diff, ops)
			}
		})
	}
}

func TestMutatePatchIsStable(t *testing.T) {
	e := compile(t, Options{}, "mutating.yaml")
	want := []policies.PatchOperation{
		{Op: "add", Path: "/metadata/labels/app.kubernetes.io~1managed-by", Value: "tollgate"},
		{Op: "add", Path: "/spec/template/metadata/labels/example.com~1team", Value: "shop"},
	}
	for i := 0; i < 10; i++ {
		ops, err := e.Mutate(context.Background(), input(deployment("web", withLabels("team", "shop"))))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, ops); diff != "" {
			t.Fatalf("run %d: patch (-want +got):\n%s", i, diff)
		}
	}
}

func TestMutateFailurePolicy(t *testing.T) {
	policy := func(name, failurePolicy string) []Object {
		return []Object{
			{Source: name + ".yaml", Object: obj("admissionregistration.k8s.io/v1", "MutatingAdmissionPolicy", name, func(o map[string]any) {
				o["spec"] = map[string]any{
					"failurePolicy":      failurePolicy,
					"reinvocationPolicy": "Never",
					"matchConstraints": map[string]any{"resourceRules": []any{map[string]any{
						"apiGroups": []any{""}, "apiVersions": []any{"v1"}, "operations": []any{"CREATE"}, "resources": []any{"configmaps"},
					}}},
					"mutations": []any{map[string]any{"patchType": "JSONPatch", "jsonPatch": map[string]any{
						"expression": `[JSONPatch{op: "add", path: "/data/owner", value: object.metadata.labels["owner"]}]`,
					}}},
				}
			})},
			{Source: name + ".yaml", Object: obj("admissionregistration.k8s.io/v1", "MutatingAdmissionPolicyBinding", name, func(o map[string]any) {
				o["spec"] = map[string]any{"policyName": name}
			})},
		}
	}
	cm := obj("v1", "ConfigMap", "settings", inNamespace("shop"), func(o map[string]any) { o["data"] = map[string]any{} })

	e, err := Compile(context.Background(), policy("owner-fail", "Fail"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Mutate(context.Background(), input(cm)); err == nil || !strings.Contains(err.Error(), "no such key: labels") {
		t.Errorf("Mutate with failurePolicy Fail: error %v, want one about the missing labels", err)
	}

	e, err = Compile(context.Background(), policy("owner-ignore", "Ignore"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ops, err := e.Mutate(context.Background(), input(cm)); err != nil || ops != nil {
		t.Errorf("Mutate with failurePolicy Ignore = %v, %v; want no patch and no error", ops, err)
	}
}
