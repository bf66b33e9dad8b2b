package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/tollgate-dev/tollgate/policies/ocisource"
	"github.com/tollgate-dev/tollgate/test/cluster"
	"github.com/tollgate-dev/tollgate/test/docexample"
	"github.com/tollgate-dev/tollgate/test/proc"
)

// dataOwnerTemplate is a ConstraintTemplate whose constraints require a
// label naming who owns the data an object holds; rego is its Rego, so a
// version that does not compile can be pushed.
func dataOwnerTemplate(rego string) string {
	indented := "        " + strings.ReplaceAll(strings.TrimSpace(rego), "\n", "\n        ")
	return `apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: setobjdataowner
spec:
  crd:
    spec:
      names:
        kind: SetobjDataOwner
      validation:
        openAPIV3Schema:
          type: object
          properties:
            label:
              type: string
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
` + indented + "\n"
}

const dataOwnerRego = `
package setobjdataowner

violation[{"msg": msg}] {
  key := input.parameters.label
  not input.review.object.metadata.labels[key]
  msg := sprintf("%v %v has no %v label: say who owns the data it holds", [input.review.object.kind, input.review.object.metadata.name, key])
}
`

const dataOwnerConstraint = `apiVersion: constraints.gatekeeper.sh/v1beta1
kind: SetobjDataOwner
metadata:
  name: configmaps-name-their-data-owner
spec:
  enforcementAction: deny
  match:
    kinds:
      - apiGroups: [""]
        kinds: [ConfigMap]
    namespaces: [setobj]
  parameters:
    label: data-owner
`

// setobjProbe denies ConfigMaps labelled tollgate-setobj=bad; the set's
// config makes it warn instead.
const setobjProbe = `# METADATA
# title: Probe of the policy set's config
# custom:
#   id: corp-setobj-probe
#   severity: high
#   scope: object
#   kinds: [ConfigMap]
package corp.setobjprobe

violation contains {"msg": "tollgate-setobj=bad is flagged by the policy set"} if {
	input.object.metadata.labels["tollgate-setobj"] == "bad"
}
`

// setobjVAP is a ValidatingAdmissionPolicy and its binding: PodTemplates
// in namespace setobj name their data owner. Held in the set only, it is
// judged at admission by Tollgate, not by the API server, which never
// sees it.
const setobjVAP = `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: setobj-podtemplates-data-owner
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - apiGroups: [""]
        apiVersions: [v1]
        operations: [CREATE, UPDATE]
        resources: [podtemplates]
  validations:
    - expression: "has(object.metadata.labels) && 'data-owner' in object.metadata.labels"
      message: a PodTemplate in setobj names its data owner
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: setobj-podtemplates-data-owner
spec:
  policyName: setobj-podtemplates-data-owner
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels:
        kubernetes.io/metadata.name: setobj
`

const setobjConfig = `apiVersion: tollgate.dev/v1alpha1
kind: Config
policies:
  corp-setobj-probe: {action: warn}
`

// TestPolicySourceObjects: a server following a policy set enforces the
// set's Gatekeeper template and constraint (whose kind no CRD serves when
// the set arrives) and its config, through kubectl; a new version whose
// template does not compile is refused whole (log, Event) and the last
// good set keeps enforcing.
func TestPolicySourceObjects(t *testing.T) {
	ctx := context.Background()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	src := newSetRegistry(t, "platform/setobj:prod")
	ref, trust, rc := src.ref, src.trust, src.client
	push := func(rego string) name.Digest {
		t.Helper()
		return src.push(t, fstest.MapFS{
			"probe/probe.rego":         {Data: []byte(setobjProbe)},
			"config.yaml":              {Data: []byte(setobjConfig)},
			"gatekeeper/template.yaml": {Data: []byte(dataOwnerTemplate(rego))},
			"gatekeeper/owner.yaml":    {Data: []byte(dataOwnerConstraint)},
			"vap/podtemplates.yaml":    {Data: []byte(setobjVAP)},
		}, true)
	}
	v1 := push(dataOwnerRego)

	log, decisions := &proc.Buffer{}, &proc.Buffer{}
	stop, port, err := startServer(ctx, serverOptions{
		name: "tollgate-setobj", log: log, decisions: decisions, noAudit: true,
		policySource: &ocisource.Options{Ref: ref, Trust: trust, Registry: rc, Interval: 500 * time.Millisecond, MaxBackoff: 2 * time.Second},
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	defer func() {
		stop()
		// A stopped server's webhooks would refuse every later test's
		// requests; the CRD its leader created for the set's constraint
		// kind goes too.
		for _, obj := range [][]string{
			{"validatingwebhookconfiguration", "tollgate-setobj"}, {"mutatingwebhookconfiguration", "tollgate-setobj"},
			{"customresourcedefinition", "setobjdataowner.constraints.gatekeeper.sh"},
		} {
			_, _, _ = env.cluster.Kubectl(ctx, "delete", obj[0], obj[1], "--ignore-not-found")
		}
	}()
	defer func() {
		if t.Failed() {
			t.Logf("server log:\n%s", tail(log.String(), 8<<10))
		}
	}()
	ns := `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"setobj","labels":{"team":"platform","owner":"ops","cost-center":"CC-0001"}}}`
	if _, stderr, err := env.cluster.KubectlWithStdin(ctx, ns, "apply", "-f", "-"); err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}

	podTemplate := func(labels string) string {
		return fmt.Sprintf(`{"apiVersion":"v1","kind":"PodTemplate","metadata":{"name":"batch","namespace":"setobj","labels":{%s}},
		 "template":{"spec":{"containers":[{"name":"c","image":"registry.corp.example/batch:1.0"}]}}}`, labels)
	}
	const configMap = `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"ledger","namespace":"setobj","labels":{%s}}}`
	// apply applies a ConfigMap with labels (dry run) and returns
	// kubectl's stderr and whether it was admitted.
	apply := func(labels string) (string, bool, error) {
		cm := fmt.Sprintf(configMap, labels)
		_, stderr, err := env.cluster.KubectlWithStdin(ctx, cm, "apply", "--dry-run=server", "-f", "-")
		switch {
		case err == nil:
			return stderr, true, nil
		case strings.Contains(stderr, "denied the request"):
			return stderr, false, nil
		}
		return "", false, fmt.Errorf("%w: %s", err, stderr)
	}
	enforcing := func() {
		t.Helper()
		eventually(t, time.Minute, func() error {
			stderr, admitted, err := apply(`"team":"platform"`)
			switch {
			case err != nil:
				return err
			case admitted:
				return fmt.Errorf("a ConfigMap without data-owner was admitted")
			case !strings.Contains(stderr, "has no data-owner label: say who owns the data it holds"):
				return fmt.Errorf("denied, but not by the set's constraint: %s", stderr)
			}
			return nil
		})
	}
	enforcing()
	// The manifests docs/policy-distribution.md applies, from files.
	dir := t.TempDir()
	for file, manifest := range map[string]string{
		"ledger.yaml":      fmt.Sprintf(configMap, `"team":"platform"`),
		"ledger-bad.yaml":  fmt.Sprintf(configMap, `"data-owner":"finance","tollgate-setobj":"bad"`),
		"podtemplate.yaml": podTemplate(`"team":"platform"`),
	} {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(manifest), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ledger, err := console(t, dir, "apply", "--dry-run=server", "-f", "ledger.yaml")
	if err == nil || !strings.Contains(ledger, "has no data-owner label") {
		t.Errorf("set v1 (%s), a ConfigMap without data-owner: %v\n%s", v1.DigestStr(), err, ledger)
	}

	// The set's ValidatingAdmissionPolicy is judged at admission by
	// Tollgate: the API server has no such policy, and Tollgate's webhook
	// intercepts PodTemplates for it.
	eventually(t, time.Minute, func() error {
		_, stderr, err := env.cluster.KubectlWithStdin(ctx, podTemplate(`"team":"platform"`), "apply", "--dry-run=server", "-f", "-")
		if err == nil || !strings.Contains(stderr, "a PodTemplate in setobj names its data owner") {
			return fmt.Errorf("the set's VAP does not deny a PodTemplate without data-owner: %w: %s", err, stderr)
		}
		return nil
	})
	out, err := console(t, dir, "apply", "--dry-run=server", "-f", "podtemplate.yaml")
	if err == nil || !strings.Contains(out, "a PodTemplate in setobj names its data owner") {
		t.Errorf("the set's ValidatingAdmissionPolicy, judged by Tollgate at admission: %v\n%s", err, out)
	}
	docexample.Check(t, root, "e2e-policysource-vap", out)
	if _, stderr, err := env.cluster.KubectlWithStdin(ctx, podTemplate(`"team":"platform","data-owner":"finance"`), "apply", "--dry-run=server", "-f", "-"); err != nil {
		t.Errorf("a PodTemplate naming its data owner: %v: %s", err, stderr)
	}

	// The set's config is in force: its probe warns rather than denies.
	stderr, admitted, err := apply(`"data-owner":"finance","tollgate-setobj":"bad"`)
	if err != nil || !admitted || !strings.Contains(stderr, "corp-setobj-probe") {
		t.Fatalf("the set's config does not make corp-setobj-probe warn: admitted %v, %v: %s", admitted, err, stderr)
	}
	out, err = console(t, dir, "apply", "--dry-run=server", "-f", "ledger-bad.yaml")
	if err != nil || !strings.Contains(out, "corp-setobj-probe") {
		t.Errorf("the set's config does not make corp-setobj-probe warn: %v\n%s", err, out)
	}
	docexample.Check(t, root, "e2e-policysource-objects", ledger+"\n"+out)
	if stderr, admitted, err := apply(`"data-owner":"finance"`); err != nil || !admitted || strings.Contains(stderr, "setobj") {
		t.Fatalf("a ConfigMap naming its data owner: admitted %v, %v: %s", admitted, err, stderr)
	}
	// Decisions name the policy set by a digest of the set and the
	// modules, not the modules' alone.
	var setDigest string
	for _, line := range strings.Split(decisions.String(), "\n") {
		var d struct {
			PolicySet string `json:"policySet"`
		}
		if json.Unmarshal([]byte(line), &d) == nil && d.PolicySet != "" {
			setDigest = d.PolicySet
		}
	}
	if !strings.HasPrefix(setDigest, "sha256:") {
		t.Errorf("no decision names its policy set: %q", tail(decisions.String(), 1<<10))
	}

	// v2's template does not compile: the set is refused whole, v1
	// keeps enforcing.
	v2 := push(strings.Replace(dataOwnerRego, "not input.review", "not input[.review", 1))
	eventually(t, time.Minute, func() error {
		for _, line := range strings.Split(log.String(), "\n") {
			if strings.Contains(line, "policy set refused") && containsAll([]string{line}, []string{v2.DigestStr(), `"reason":"compile"`, "ConstraintTemplate setobjdataowner"}) {
				return nil
			}
		}
		return fmt.Errorf("no refusal logged for %s", v2.DigestStr())
	})
	t.Logf("server log, set v2:\n%s", grepLines(log.String(), "setobjdataowner"))
	enforcing()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the test server's own certificate
	resp, err := hc.Get(fmt.Sprintf("https://127.0.0.1:%d/version", port))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		PolicySet struct{ Digest string } `json:"policySet"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	if v.PolicySet.Digest != v1.DigestStr() {
		t.Errorf("/version says %s after the refused set, want %s", v.PolicySet.Digest, v1.DigestStr())
	}
	eventually(t, time.Minute, func() error {
		out, _, err := env.cluster.Kubectl(ctx, "get", "events", "-A", "--field-selector", "reason=PolicySetRefused", "-o", "jsonpath={.items[*].message}")
		if err != nil || !strings.Contains(out, v2.DigestStr()) {
			return fmt.Errorf("no PolicySetRefused event naming %s: %w %q", v2.DigestStr(), err, out)
		}
		return nil
	})
}
