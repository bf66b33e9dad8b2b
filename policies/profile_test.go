package policies

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Each bad profile is refused naming the profile and the field.
func TestProfilesBadInput(t *testing.T) {
	cases := []struct{ name, doc, want string }{
		{"quota quantity", `
profiles:
  default: golden
  definitions:
    golden:
      namespaceDefaults:
        resourceQuota:
          hard: {requests.cpu: "lots"}
`, `profiles.definitions.golden.namespaceDefaults.resourceQuota.hard["requests.cpu"]: "lots" is not a quantity`},
		{"quota resource name", `
profiles:
  default: golden
  definitions:
    golden:
      namespaceDefaults:
        resourceQuota:
          hard: {"Requests CPU": "1"}
`, `profiles.definitions.golden.namespaceDefaults.resourceQuota.hard["Requests CPU"]: "Requests CPU" is not a resource name`},
		{"empty quota", `
profiles:
  default: golden
  definitions:
    golden:
      namespaceDefaults:
        resourceQuota: {hard: {}}
`, `profiles.definitions.golden.namespaceDefaults.resourceQuota.hard: required`},
		{"limit range", `
profiles:
  default: golden
  definitions:
    golden:
      namespaceDefaults:
        limitRange: {max: {memory: "1.5.5"}}
`, `profiles.definitions.golden.namespaceDefaults.limitRange.max.memory: "1.5.5" is not a quantity`},
		{"action", `
profiles:
  default: golden
  definitions:
    golden:
      policies: {pss-*: block}
`, `profiles.definitions.golden.policies["pss-*"]: unknown action "block"`},
		{"default missing", `
profiles:
  definitions:
    golden: {}
`, `profiles.default: required when profiles are defined`},
		{"default unknown", `
profiles:
  default: gold
  definitions:
    golden: {}
`, `profiles.default: "gold" is not among profiles.definitions`},
		{"profile name", `
profiles:
  default: Golden Path
  definitions:
    Golden Path: {}
`, `profiles.definitions["Golden Path"]: "Golden Path" is not a profile name`},
		{"label key", `
profiles:
  label: "not a key!"
`, `profiles.label: "not a key!" is not a valid label key`},
		{"network", `
profiles:
  default: golden
  definitions:
    golden:
      namespaceDefaults:
        networkPolicy: {egressCIDRs: ["10.0.0.0/33"]}
`, `profiles.definitions.golden.namespaceDefaults.networkPolicy.egressCIDRs[0]: "10.0.0.0/33" is not a CIDR`},
		{"mutation", `
profiles:
  default: golden
  definitions:
    golden:
      skipMutations: [labels]
`, `profiles.definitions.golden.skipMutations[0]: value must be one of`},
		{"unknown field", `
profiles:
  default: golden
  definitions:
    golden:
      namespaceDefault: {}
`, `namespaceDefault`},
		{"budget", `
profiles:
  default: golden
  definitions:
    golden:
      budget: {amount: "many"}
`, `profiles.definitions.golden.budget.amount: "many" is not an amount`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}

	// A TollgateProfile's spec is read the same way, named by its object.
	for _, tc := range []struct{ spec, want string }{
		{`{"policies": {"x": "sometimes"}}`, `TollgateProfile lab: spec.policies.x: unknown action "sometimes"`},
		{`{"polices": {}}`, `TollgateProfile lab: spec: error unmarshaling JSON: while decoding JSON: json: unknown field "polices"`},
		{`{"namespaceDefaults": {"resourceQuota": {"hard": {"pods": "ten"}}}}`, `TollgateProfile lab: spec.namespaceDefaults.resourceQuota.hard.pods: "ten" is not a quantity`},
		{`[]`, `TollgateProfile lab: spec: error unmarshaling JSON`},
	} {
		_, err := ParseProfile("TollgateProfile lab: spec", "lab", []byte(tc.spec))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseProfile(%s): %v, want %q", tc.spec, err, tc.want)
		}
	}
}

// A namespace is on the profile its label names, else the default; an
// exact policy id wins over a glob, a longer glob over a shorter one.
func TestProfileResolution(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
profiles:
  label: example.com/path
  default: golden
  definitions:
    golden: {}
    innovation:
      policies:
        "*": warn
        "pss-*": audit
        pss-baseline-privileged: enforce
        "K8sRequiredLabels/*": disabled
`))
	if err != nil {
		t.Fatal(err)
	}
	ns := func(labels map[string]any) map[string]any {
		return map[string]any{"metadata": map[string]any{"name": "n", "labels": labels}}
	}
	for _, tc := range []struct {
		ns   map[string]any
		want string
	}{
		{ns(map[string]any{"example.com/path": "innovation"}), "innovation"},
		{ns(map[string]any{"tollgate.dev/path": "innovation"}), "golden"},
		{ns(map[string]any{"example.com/path": "nowhere"}), "golden"},
		{ns(nil), "golden"},
		{nil, ""},
	} {
		if got := cfg.ProfileName(tc.ns); got != tc.want {
			t.Errorf("ProfileName(%v) = %q, want %q", tc.ns, got, tc.want)
		}
	}
	_, p := cfg.ProfileOf(ns(map[string]any{"example.com/path": "innovation"}))
	got := map[string]Action{}
	for _, id := range []string{"pss-baseline-privileged", "pss-restricted-seccomp", "ownership-labels", "K8sRequiredLabels/team"} {
		a, _ := p.PolicyAction(id)
		got[id] = a
	}
	want := map[string]Action{"pss-baseline-privileged": ActionEnforce, "pss-restricted-seccomp": ActionAudit,
		"ownership-labels": ActionWarn, "K8sRequiredLabels/team": ActionDisabled}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
	if _, ok := (*Profile)(nil).PolicyAction("x"); ok {
		t.Error("no profile sets an action")
	}

	// Without definitions nothing changes: no profile anywhere.
	if got := DefaultConfig().ProfileName(ns(map[string]any{DefaultProfileLabel: "golden"})); got != "" {
		t.Errorf("profile %q without definitions", got)
	}
	// Cluster profiles add to the config's and replace one of the same name.
	merged := cfg.WithProfiles(map[string]Profile{"innovation": {Notice: "yours"}, "sandbox": {}})
	if merged.Profiles.Definitions["innovation"].Notice != "yours" || len(merged.Profiles.Definitions) != 3 || len(cfg.Profiles.Definitions) != 2 {
		t.Errorf("merged %v, config %v", merged.Profiles.Definitions, cfg.Profiles.Definitions)
	}
}

// A profile turns defaults off in its namespaces, and only there.
func TestProfileSkipsMutations(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
profiles:
  default: golden
  definitions:
    golden: {}
    innovation:
      skipMutations: [securityContext, resources]
`))
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(context.Background(), Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	pod := func() map[string]any {
		return map[string]any{"apiVersion": "v1", "kind": "Pod",
			"metadata": map[string]any{"name": "p", "namespace": "n"},
			"spec":     map[string]any{"containers": []any{map[string]any{"name": "c", "image": "r.example/a:1"}}}}
	}
	areas := func(labels map[string]any) []string {
		in := &Input{Kind: GroupVersionKind{Version: "v1", Kind: "Pod"}, Operation: "CREATE", Object: pod(),
			Namespace: map[string]any{"metadata": map[string]any{"name": "n", "labels": labels}}}
		m, err := e.Mutate(in)
		if err != nil {
			t.Fatal(err)
		}
		return slices.Sorted(maps.Keys(m.Injected))
	}
	golden := areas(map[string]any{"team": "a", "owner": "b", "cost-center": "c"})
	innovation := areas(map[string]any{"team": "a", "owner": "b", "cost-center": "c", DefaultProfileLabel: "innovation"})
	if !cmp.Equal(len(golden), 3) {
		t.Errorf("golden injects %v, want labels, securityContext and resources", golden)
	}
	if diff := cmp.Diff([]string{"labels"}, innovation); diff != "" {
		t.Errorf("innovation injects (-want +got):\n%s", diff)
	}
}

// A profile's key matches policy ids as a glob: '*' spans any run,
// '/' included, '?' one character, the rest literally.
func TestGlobMatch(t *testing.T) {
	for _, tc := range []struct {
		pat, id string
		want    bool
	}{
		{"*", "", true},
		{"*", "K8sRequiredLabels/team", true},
		{"pss-*", "pss-baseline-privileged", true},
		{"pss-*", "images-no-latest", false},
		{"pss-*-privileged", "pss-baseline-privileged", true},
		{"pss-*-privileged", "pss-baseline-privileged-x", false},
		{"K8sRequiredLabels/*", "K8sRequiredLabels/team", true},
		{"ClusterPolicy/*", "K8sRequiredLabels/team", false},
		{"*/team", "K8sRequiredLabels/team", true},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYbZ", false},
		{"**", "x", true},
		{"exact", "exact", true},
		{"exact", "exactly", false},
		{"", "", true},
		{"", "x", false},
		{"[a]", "[a]", true}, // no character classes: brackets are literal
		{"x.y", "xzy", false},
	} {
		if got := globMatch(tc.pat, tc.id); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tc.pat, tc.id, got, tc.want)
		}
	}
}
