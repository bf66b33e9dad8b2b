package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

const kyvernoTier = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: require-tier
  annotations:
    policies.kyverno.io/severity: high
spec:
  rules:
    - name: tier-label
      match:
        any:
          - resources:
              kinds: [Pod]
      context:
        - name: tiers
          configMap: {name: tiers, namespace: platform}
      validate:
        failureAction: Enforce
        message: "tier {{ request.object.metadata.labels.tier || '' }} is not one of {{ tiers.data.allowed }}"
        deny:
          conditions:
            all:
              - key: "{{ request.object.metadata.labels.tier || '' }}"
                operator: AnyNotIn
                value: "{{ parse_json(tiers.data.allowed) }}"
    - name: make-quota
      match:
        any:
          - resources:
              kinds: [Namespace]
      generate:
        apiVersion: v1
        kind: ResourceQuota
        name: default
        namespace: "{{ request.object.metadata.name }}"
        data: {spec: {hard: {pods: "10"}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: tiers, namespace: platform}
data:
  allowed: '["frontend","backend"]'
`

// Kyverno policies run in check from --policy, with the ConfigMaps their
// context reads, next to the library's findings; what Tollgate does not run
// is a warning naming the policy and rule.
func TestCheckKyverno(t *testing.T) {
	dir := t.TempDir()
	pol := write(t, dir, "kyverno.yaml", kyvernoTier)
	ns, web := demoManifests+"namespace.yaml", demoManifests+"web.yaml"

	code, r, errs := checkJSON(t, "", "--policy", pol, ns, web)
	if code != ExitFindings {
		t.Fatalf("exit %d; %s", code, errs)
	}
	var got []string
	for _, res := range r.Results {
		if strings.HasPrefix(res.Policy, "ClusterPolicy/") {
			got = append(got, res.Kind+" "+res.Name+" "+res.Severity+" "+res.Action+": "+res.Message)
		}
	}
	want := "Deployment web high enforce: autogen-tier-label: tier  is not one of [\"frontend\",\"backend\"]"
	if len(got) != 1 || got[0] != want {
		t.Errorf("kyverno findings %q, want [%q]", got, want)
	}
	if !strings.Contains(errs, "kyverno.yaml:1: policy ClusterPolicy/require-tier: rule make-quota: generate: not run by Tollgate; rule ignored") {
		t.Errorf("no warning for the generate rule:\n%s", errs)
	}

	// A Deployment of a listed tier passes the policy; the policy among
	// the inputs counts the same way.
	tiered := write(t, dir, "tiered.yaml", strings.Replace(readFile(t, web), "labels: {app: web}", "labels: {app: web, tier: frontend}", 1))
	_, r2, _ := checkJSON(t, "", pol, ns, tiered)
	for _, res := range r2.Results {
		if strings.HasPrefix(res.Policy, "ClusterPolicy/") {
			t.Errorf("a listed tier: %+v", res)
		}
	}
}

// A broken Kyverno policy is a problem naming its file, line, policy and
// rule; the good policies still judge and the check exits 2.
func TestCheckBrokenKyverno(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "p/good.yaml", kyvernoTier)
	write(t, dir, "p/unknown-field.yaml", `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: misspelt}
spec:
  rules:
    - name: r
      match: {any: [{resources: {kinds: [Pod]}}]}
      validate: {patern: {metadata: {name: "?*"}}}
`)
	write(t, dir, "p/bad-cel.yaml", `apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata: {name: bad-cel}
spec:
  matchConstraints:
    resourceRules:
      - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}
  validations:
    - expression: "size(object.metadata.name) > 'ten'"
`)
	code, out, errs := run(t, "", "check", "--policy", filepath.Join(dir, "p"), demoManifests+"namespace.yaml", demoManifests+"web.yaml")
	if code != ExitUsage {
		t.Fatalf("exit %d, want 2\n%s%s", code, out, errs)
	}
	for _, want := range []string{
		`unknown-field.yaml:1: policy ClusterPolicy/misspelt: unknown field "spec.rules[0].validate.patern"`,
		"bad-cel.yaml:1: policy ValidatingPolicy/bad-cel: rule validations[0]:",
		"ClusterPolicy/require-tier",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
