package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const demoManifests = "../../../../test/demo/manifests/"

// Gatekeeper templates and constraints and ValidatingAdmissionPolicies run
// in check unchanged, from --policy or among the inputs, next to the
// library's findings.
func TestCheckGatekeeperAndVAP(t *testing.T) {
	ns, svc := demoManifests+"namespace.yaml", demoManifests+"service.yaml"
	gk := demoManifests + "gatekeeper"
	vapFile, big := demoManifests+"vap/replicas.yaml", demoManifests+"vap/big.yaml"

	code, r, errs := checkJSON(t, "", "--policy", gk, "--policy", vapFile, ns, svc, big)
	if code != ExitFindings {
		t.Fatalf("exit %d; %s", code, errs)
	}
	got := map[string]string{}
	for _, res := range r.Results {
		got[res.Policy] = res.Kind + " " + res.Name + ": " + res.Message + " @" + res.Action
	}
	want := map[string]string{
		"TeamRequiredLabels/services-need-alert-channel": `Service web: Service web must carry the labels {"alert-channel"} @enforce`,
		"ValidatingAdmissionPolicy/replica-limit":        "Deployment big: replicas 12 exceed the limit of 5 @enforce",
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: got %q, want %q", id, got[id], w)
		}
	}

	// The same policies given among the inputs count the same way.
	code, r2, _ := checkJSON(t, "", gk+"/template.yaml", gk+"/constraint.yaml", vapFile, ns, svc, big)
	if code != ExitFindings || len(r2.Results) != len(r.Results) {
		t.Errorf("policies among the inputs: exit %d, %d results, want %d", code, len(r2.Results), len(r.Results))
	}

	// A compliant Service passes the constraint; a value breaking the
	// pattern does not.
	dir := t.TempDir()
	good := write(t, dir, "good.yaml", strings.Replace(readFile(t, svc), "app: web\nspec", "app: web\n    alert-channel: payments-oncall\nspec", 1))
	bad := write(t, dir, "bad.yaml", strings.Replace(readFile(t, svc), "app: web\nspec", "app: web\n    alert-channel: Payments\nspec", 1))
	if code, _, _ := checkJSON(t, "", "--policy", gk, ns, good); code != ExitOK {
		t.Errorf("a labelled Service: exit %d", code)
	}
	_, r3, _ := checkJSON(t, "", "--policy", gk, ns, bad)
	// The namespace has no NetworkPolicy among the manifests: a warning
	// of the library's, beside the constraint's finding.
	r3.Results = slices.DeleteFunc(r3.Results, func(res jsonResult) bool { return res.Policy == "network-policies-per-namespace" })
	if len(r3.Results) != 1 || !strings.Contains(r3.Results[0].Message, `label alert-channel="Payments" does not match ^[a-z0-9-]+-oncall$`) {
		t.Errorf("a label breaking the pattern: %+v", r3.Results)
	}
}

// Broken policies of the other formats are problems naming the file, line
// and field; the good ones still judge, and the check exits 2.
func TestCheckBrokenGatekeeperAndVAP(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "p/broken-rego.yaml", `apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: brokenrego}
spec:
  crd: {spec: {names: {kind: BrokenRego}}}
  targets:
  - target: admission.k8s.gatekeeper.sh
    rego: |
      package brokenrego
      violation[{"msg": msg}] { msg := input.review.object.metadata.name +++ }
`)
	write(t, dir, "p/orphan.yaml", `apiVersion: constraints.gatekeeper.sh/v1beta1
kind: NoSuchTemplate
metadata: {name: orphan}
spec: {}
`)
	write(t, dir, "p/bad-params.yaml", `apiVersion: constraints.gatekeeper.sh/v1beta1
kind: TeamRequiredLabels
metadata: {name: bad-params}
spec:
  parameters:
    labels: "alert-channel"
`)
	write(t, dir, "p/bad-cel.yaml", `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: bad-cel}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["services"]}
  validations:
  - expression: "object.spec.ports.size() > 'two'"
`)
	code, out, errs := run(t, "", "check", "--policy", demoManifests+"gatekeeper", "--policy", filepath.Join(dir, "p"),
		demoManifests+"namespace.yaml", demoManifests+"service.yaml")
	if code != ExitUsage {
		t.Fatalf("exit %d, want 2\n%s%s", code, out, errs)
	}
	for _, want := range []string{
		"broken-rego.yaml:1: spec.targets[0].rego",
		"orphan.yaml:1",
		"NoSuchTemplate",
		"bad-params.yaml:1: spec.parameters.labels",
		"bad-cel.yaml:1: ValidatingAdmissionPolicy/bad-cel: spec.validations[0].expression",
		// The good constraint still judges.
		"TeamRequiredLabels/services-need-alert-channel",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// tollgate test runs a team's gator suites unchanged; a failing assertion
// fails the run.
func TestTestRunsGatorSuites(t *testing.T) {
	gk := demoManifests + "gatekeeper"
	code, out, errs := run(t, "", "test", gk)
	if code != ExitOK || !strings.Contains(out, "--- PASS: wrong-channel") || !strings.Contains(out, "3 passed, 0 failed") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	dir := t.TempDir()
	for _, f := range []string{"template.yaml", "constraint.yaml", "cases/labelled.yaml", "cases/unlabelled.yaml", "cases/wrong-channel.yaml"} {
		write(t, dir, f, readFile(t, filepath.Join(gk, f)))
	}
	write(t, dir, "suite.yaml", strings.Replace(readFile(t, filepath.Join(gk, "suite.yaml")), "violations: no", "violations: 1", 1))
	code, out, _ = run(t, "", "test", dir)
	if code != ExitFindings || !strings.Contains(out, "--- FAIL: labelled") || !strings.Contains(out, "2 passed, 1 failed") {
		t.Errorf("a failing assertion: exit %d\n%s", code, out)
	}
}

// A MutatingAdmissionPolicy changes the object before Tollgate's own
// defaults, as the API server orders them; check shows both in one patch
// and judges the result.
func TestCheckMutatingAdmissionPolicy(t *testing.T) {
	code, r, errs := checkJSON(t, "", "--policy", demoManifests+"vap/mutating.yaml", demoManifests+"namespace.yaml", demoManifests+"web.yaml")
	if code != ExitOK || len(r.Mutations) != 1 {
		t.Fatalf("exit %d, %d mutations; %s", code, len(r.Mutations), errs)
	}
	var labels, hardened bool
	for _, op := range r.Mutations[0].Patch {
		if op.Path == "/metadata/labels" && strings.Contains(fmt.Sprint(op.Value), "rollout-tier:canary") {
			labels = true
		}
		if op.Path == "/spec/template/spec/securityContext" {
			hardened = true
		}
	}
	if !labels || !hardened {
		t.Errorf("the patch lacks the policy's label (%v) or Tollgate's hardening (%v): %+v", labels, hardened, r.Mutations[0].Patch)
	}
	// Without the policy, no such label.
	_, r, _ = checkJSON(t, "", demoManifests+"namespace.yaml", demoManifests+"web.yaml")
	if strings.Contains(fmt.Sprint(r.Mutations), "rollout-tier") {
		t.Errorf("the label comes from elsewhere: %+v", r.Mutations)
	}
}
