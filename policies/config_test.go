package policies_test

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/policies"
)

func TestParseConfigKeepsDefaultsForWhatIsLeftOut(t *testing.T) {
	cfg, err := policies.ParseConfig([]byte(`
labels:
  team: {key: squad}
  costCenter: {pattern: "^CC-[0-9]+$"}
parameters:
  images: {allowedRegistries: [corp.io]}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := policies.DefaultConfig().Labels
	want.Team.Key = "squad"
	want.CostCenter.Pattern = "^CC-[0-9]+$"
	if diff := cmp.Diff(want, cfg.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	images := cfg.Parameters["images"].(map[string]any)
	if diff := cmp.Diff(map[string]any{"allowedRegistries": []any{"corp.io"}, "allowLatest": false, "requireTagOrDigest": true}, images); diff != "" {
		t.Errorf("images parameters merge (-want +got):\n%s", diff)
	}
	if _, ok := cfg.Parameters["resources"]; !ok {
		t.Error("default resources parameters lost")
	}
	if diff := cmp.Diff([]string{"kube-system", "kube-public", "kube-node-lease"}, cfg.ExemptNamespaces); diff != "" {
		t.Errorf("exemptions (-want +got):\n%s", diff)
	}
}

func TestParseConfigErrorsNameTheField(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"unknown field", "labels:\n  team: {kee: x}\n", `labels.team: additional properties 'kee' not allowed`},
		{"typo at top", "exemptNamespace: [a]\n", `(top level): additional properties 'exemptNamespace' not allowed`},
		{"wrong value type", "parameters:\n  images: {allowLatest: 'sometimes'}\n", "parameters.images.allowLatest: got string, want boolean"},
		{"bad regexp", "labels:\n  team: {pattern: '('}\n", "labels.team.pattern"},
		{"bad label key", "labels:\n  owner: {key: 'bad key!'}\n", `labels.owner.key: "bad key!" is not a valid label key`},
		{"bad action", "policies:\n  x: {action: block}\n", "policies.x.action: value must be one of 'enforce', 'warn', 'audit', 'disabled'"},
		{"bad kind", "kind: Deployment\n", "kind: value must be 'Config'"},
		{"bad template", "podControllers: [{kind: Rollout, template: 'spec..template'}]\n", "podControllers[0].template: 'spec..template' does not match pattern"},
		{"bad naming pattern", "parameters:\n  naming: {patterns: {Deployment: '[z-a]'}}\n", "parameters.naming.patterns.Deployment"},
		{"bad pod security version", "podSecurity: {version: '1.30'}\n", "podSecurity.version: '1.30' does not match pattern"},
		{"sync kind without a version", "gatekeeper:\n  sync: [{kind: Service}]\n", "gatekeeper.sync[0]: missing property 'version'"},
		{"bad commit time annotation", "deployments:\n  commitTimeAnnotations: [ci.example.com/commit-time, 'commit time!']\n", `deployments.commitTimeAnnotations[1]: "commit time!" is not a valid annotation key`},
		{"commit time annotations not a list", "deployments:\n  commitTimeAnnotations: ci.example.com/commit-time\n", "deployments.commitTimeAnnotations: got string, want array"},
		{"not yaml", "labels: [\n", "parsing"},
		{"wrong type", "labels: 3\n", "labels: got number, want object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policies.ParseConfig([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

// podSecurity.version defaults to latest, takes v1.<minor>, and anything
// else is refused, from a file or from Go.
func TestPodSecurityVersion(t *testing.T) {
	if got := policies.DefaultConfig().PodSecurity.Version; got != "latest" {
		t.Errorf("default version %q, want latest", got)
	}
	for doc, want := range map[string]string{
		"podSecurity: {version: v1.0}\n":   "v1.0",
		"podSecurity: {version: v1.33}\n":  "v1.33",
		"podSecurity: {version: latest}\n": "latest",
		"podSecurity: {}\n":                "latest",
	} {
		cfg, err := policies.ParseConfig([]byte(doc))
		if err != nil {
			t.Errorf("%q: %v", doc, err)
			continue
		}
		if cfg.PodSecurity.Version != want {
			t.Errorf("%q: version %q, want %q", doc, cfg.PodSecurity.Version, want)
		}
	}
	for _, v := range []string{"v1.05", "v2.0", "1.30", "Latest"} {
		cfg := policies.DefaultConfig()
		cfg.PodSecurity.Version = v
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "podSecurity.version") {
			t.Errorf("version %q: got %v, want an error naming podSecurity.version", v, err)
		}
	}
}

func TestLoadConfigRejectsOversizedFiles(t *testing.T) {
	p := t.TempDir() + "/big.yaml"
	if err := os.WriteFile(p, bytes.Repeat([]byte("# padding\n"), 500_000), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := policies.LoadConfig(p); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("got %v", err)
	}
	if _, err := policies.LoadConfig(t.TempDir() + "/missing.yaml"); err == nil {
		t.Error("a missing config must be an error")
	}
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(policies.ConfigSchema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("config.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("config.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func yamlToJSONValue(t *testing.T, b []byte) any {
	t.Helper()
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// The documented example and the defaults validate against the schema, and
// the Go parser accepts what the schema accepts.
func TestConfigSchema(t *testing.T) {
	schema := compileSchema(t)
	example, err := os.ReadFile("config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.Validate(yamlToJSONValue(t, example)); err != nil {
		t.Errorf("config.example.yaml does not validate: %v", err)
	}
	if _, err := policies.ParseConfig(example); err != nil {
		t.Errorf("config.example.yaml does not parse: %v", err)
	}
	defaults, err := json.Marshal(policies.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.Validate(yamlToJSONValue(t, defaults)); err != nil {
		t.Errorf("the defaults do not validate: %v", err)
	}
	for name, doc := range map[string]string{
		"unknown top-level key": "exemptNamespace: [a]\n",
		"bad action":            "policies: {x: {action: block}}\n",
		"bad label rule":        "labels: {team: {kee: x}}\n",
	} {
		if err := schema.Validate(yamlToJSONValue(t, []byte(doc))); err == nil {
			t.Errorf("%s: the schema accepted %q", name, doc)
		}
	}
}
