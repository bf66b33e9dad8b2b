package policies

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const governedConfig = `
governedKinds:
  - group: database.example.org
    kind: PostgreSQLInstance
    pricing:
      - {class: instance, key: spec.parameters.instanceClass}
      - {class: storage, key: spec.parameters.storageClass, quantity: spec.parameters.storageGB}
`

const claimYAML = `
apiVersion: database.example.org/v1alpha1
kind: PostgreSQLInstance
metadata: {name: orders, namespace: shop}
spec: {parameters: {instanceClass: db.m5.large, storageClass: gp3, storageGB: 100}}
`

func TestGovernedKindsConfigErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct {
		name, config, want string
	}{
		{"bad key path", "governedKinds: [{kind: PostgreSQLInstance, pricing: [{class: instance, key: 'spec..class'}]}]", "governedKinds[0].pricing[0].key"},
		{"bad quantity", "governedKinds: [{kind: PostgreSQLInstance, pricing: [{class: storage, key: spec.c, quantity: '-3'}]}]", "governedKinds[0].pricing[0].quantity"},
		{"unknown class", "governedKinds: [{kind: PostgreSQLInstance, pricing: [{class: gpu, key: spec.c}]}]", "governedKinds[0].pricing[0].class"},
		{"no kind", "governedKinds: [{group: database.example.org}]", "governedKinds[0]"},
		{"lower-case kind", "governedKinds: [{group: database.example.org, kind: postgres}]", "governedKinds[0].kind: \"postgres\" is not a kind"},
		{"bad group", "governedKinds: [{group: 'Database_Example', kind: PostgreSQLInstance}]", "governedKinds[0].group"},
		{"workload kind", "governedKinds: [{group: apps, kind: Deployment}]", "governedKinds[0]: Deployment is a workload kind"},
		{"twice", "governedKinds: [{group: g.example, kind: A}, {group: g.example, kind: A}]", "governedKinds[1]: g.example/A is listed already at governedKinds[0]"},
		{"unknown field", "governedKinds: [{kind: A, price: {key: spec.c}}]", "governedKinds[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.config))
			if err == nil || !strings.Contains(strings.ReplaceAll(err.Error(), "'", ""), tc.want) {
				t.Fatalf("error %v; want one naming %s", err, tc.want)
			}
		})
	}
	// And the same checks on a config built in Go, which skips the schema.
	cfg := DefaultConfig()
	cfg.GovernedKinds = []GovernedKind{{Kind: "A", Pricing: []PriceLine{{Class: "gpu", Key: "spec..x", Quantity: "spec..y"}}}}
	err := cfg.Validate()
	for _, want := range []string{"governedKinds[0].pricing[0].class", "governedKinds[0].pricing[0].key", "governedKinds[0].pricing[0].quantity"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v; want it to name %s", err, want)
		}
	}
}

func TestFieldAt(t *testing.T) {
	obj := yamlObject(t, claimYAML)
	v, path, err := FieldAt(obj, "spec.parameters.instanceClass")
	if err != nil || v != "db.m5.large" || FormatPath(path) != "spec.parameters.instanceClass" {
		t.Errorf("got %v %v %v", v, path, err)
	}
	if _, path, err := FieldAt(obj, "spec.parameters.size"); !errors.Is(err, ErrFieldMissing) || FormatPath(path) != "spec.parameters.size" {
		t.Errorf("missing field: %v at %v; want ErrFieldMissing at spec.parameters.size", err, path)
	}
	if _, _, err := FieldAt(obj, "spec.parameters.instanceClass.name"); err == nil || !strings.Contains(err.Error(), "spec.parameters.instanceClass is not an object") {
		t.Errorf("through a string: %v", err)
	}
}

func TestMutateLabelsGovernedKinds(t *testing.T) {
	e := mutationEngine(t, governedConfig)
	obj := yamlObject(t, claimYAML)
	in := ObjectInput(SourceAdmission, obj, teamNamespace)
	in.Operation = "CREATE"
	m, err := e.Mutate(in)
	if err != nil {
		t.Fatal(err)
	}
	got := applyPatch(t, obj, m)
	labels, _ := got["metadata"].(map[string]any)["labels"].(map[string]any)
	if diff := cmp.Diff(map[string]any{"team": "payments", "owner": "alice", "cost-center": "CC-1234"}, labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string][]string{"labels": {"cost-center", "owner", "team"}}, m.Injected); diff != "" {
		t.Errorf("injected (-want +got):\n%s", diff)
	}
	// Not governed: left alone.
	plain := mutationEngine(t, "")
	if m, err := plain.Mutate(in); err != nil || !m.Empty() {
		t.Errorf("without governedKinds: patch %v, error %v; want none", m.Patch, err)
	}
}

const governedPolicy = `# METADATA
# title: Governed kinds only
# custom:
#   id: test-governed
#   action: warn
#   severity: low
#   governedKinds: true
package test.governed

violation contains sprintf("%s on %v", [input.kind.kind, object.get(input, ["profile", "name"], "no profile")]) if true
`

func TestGovernedPoliciesAndInputProfile(t *testing.T) {
	files := map[string]string{"p.rego": governedPolicy}
	cfg, err := ParseConfig([]byte(governedConfig + `
profiles:
  default: golden
  definitions:
    golden: {parameters: {cloud: {maxInstanceClass: db.m5.large}}}
    innovation: {}
`))
	if err != nil {
		t.Fatal(err)
	}
	e := engineWith(t, files, Options{Config: cfg, VerdictCache: DefaultVerdictCache})
	judge := func(obj, ns map[string]any) []string {
		d := e.Evaluate(context.Background(), ObjectInput(SourceAudit, obj, ns))
		if len(d.Errors) > 0 {
			t.Fatal(d.Errors)
		}
		var out []string
		for _, f := range d.Findings {
			out = append(out, f.Message)
		}
		return out
	}
	golden := map[string]any{"metadata": map[string]any{"name": "shop"}}
	innovation := map[string]any{"metadata": map[string]any{"name": "lab", "labels": map[string]any{"tollgate.dev/path": "innovation"}}}
	for round := range 2 { // the second round is served from the verdict cache
		if got := judge(yamlObject(t, claimYAML), golden); !cmp.Equal(got, []string{"PostgreSQLInstance on golden"}) {
			t.Errorf("round %d: claim in a golden namespace: %v", round, got)
		}
		if got := judge(yamlObject(t, claimYAML), innovation); !cmp.Equal(got, []string{"PostgreSQLInstance on innovation"}) {
			t.Errorf("round %d: claim in an innovation namespace: %v", round, got)
		}
		if got := judge(yamlObject(t, claimYAML), nil); !cmp.Equal(got, []string{"PostgreSQLInstance on no profile"}) {
			t.Errorf("round %d: claim without a namespace: %v", round, got)
		}
		if got := judge(yamlObject(t, "{apiVersion: v1, kind: ConfigMap, metadata: {name: c}}"), golden); len(got) != 0 {
			t.Errorf("round %d: a ConfigMap is not governed: %v", round, got)
		}
	}
	// The profile's parameters overlay the config's.
	pv := e.profileOf(ObjectInput(SourceAudit, yamlObject(t, claimYAML), golden))
	params := pv.value["parameters"].(map[string]any)
	if params["cloud"].(map[string]any)["maxInstanceClass"] != "db.m5.large" || params["images"] == nil {
		t.Errorf("input.profile.parameters = %v; want the config's with the profile's cloud.maxInstanceClass", params)
	}
}

func engineWith(t *testing.T, files map[string]string, o Options) *Engine {
	t.Helper()
	var mods []Module
	for name, text := range files {
		mods = append(mods, Module{Name: name, Text: text})
	}
	o.Modules = mods
	e, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
