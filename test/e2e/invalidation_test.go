package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// samePod is admitted again and again, unchanged, while what it is judged
// with changes around it.
const samePod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"same","namespace":"invalidation",
 "labels":{"app":"same","team":"payments","owner":"alice","cost-center":"CC-1234","environment":"prod"}},
 "spec":{"securityContext":{"runAsNonRoot":true,"seccompProfile":{"type":"RuntimeDefault"}},
  "containers":[{"name":"c","image":"ghcr.io/corp/web:1.4.2","securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}},
   "resources":{"requests":{"cpu":"100m","memory":"128Mi"},"limits":{"memory":"256Mi"}}}]}}`

// invalidationPolicy is a cluster policy on Pods; its rule is the body
// that decides.
const invalidationPolicy = `apiVersion: tollgate.dev/v1alpha1
kind: TollgatePolicy
metadata: {name: invalidation-probe}
spec:
  action: enforce
  rego: |
    # METADATA
    # title: Invalidation probe
    # custom:
    #   id: invalidation-probe
    #   severity: high
    #   scope: object
    #   kinds: [Pod]
    package corp.invalidation_probe

    violation contains {"msg": msg} if {
      %s
    }
`

// The first rule reads a namespace label; the second only the Pod.
const (
	frozenRule  = `input.namespace.metadata.labels["invalidation.tollgate.dev/frozen"] == "true"` + "\n      msg := \"the namespace is frozen\""
	retiredRule = `input.object.metadata.labels.app == "same"` + "\n      msg := \"app same is retired\""
)

// TestEveryInputChangeReachesTheNextAdmission: the identical Pod is
// admitted after each change of what it is judged with — a namespace
// label a policy reads, the policy itself, an exception, a config value —
// and each verdict reflects the change. Where Tollgate reports that a
// change is in force (a status condition naming the object's generation),
// the very next admission must show it; a namespace label has no such
// report, so its effect is awaited, then must hold.
func TestEveryInputChangeReachesTheNextAdmission(t *testing.T) {
	ctx := context.Background()
	teamNamespace(t, "invalidation")
	teamNamespace(t, "platform-exceptions")
	admit := func() (bool, string) {
		_, stderr, err := env.cluster.KubectlWithStdin(ctx, samePod, "create", "--dry-run=server", "-f", "-")
		return err == nil, stderr
	}
	expect := func(step string, allowed bool, says string) error {
		ok, stderr := admit()
		if ok != allowed || !strings.Contains(stderr, says) {
			return fmt.Errorf("%s: admitted %v (want %v), want output with %q:\n%s", step, ok, allowed, says, stderr)
		}
		return nil
	}
	now := func(step string, allowed bool, says string) {
		t.Helper()
		if err := expect(step, allowed, says); err != nil {
			t.Fatal(err)
		}
	}
	// awaited: for a change Tollgate does not report, then it must hold.
	awaited := func(step string, allowed bool, says string) {
		t.Helper()
		eventually(t, 30*time.Second, func() error { return expect(step, allowed, says) })
		for range 3 {
			now(step+" (again)", allowed, says)
		}
	}

	if _, _, err := apply(t, fmt.Sprintf(invalidationPolicy, frozenRule)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _, _ = env.cluster.Kubectl(ctx, "delete", "tollgatepolicy", "invalidation-probe", "--ignore-not-found")
	})
	waitPolicyReady(t, "invalidation-probe", "True")
	now("policy in force, namespace not frozen", true, "")

	// (a) A namespace label the policy reads, set and removed.
	kubectl(t, "label", "namespace", "invalidation", "invalidation.tollgate.dev/frozen=true")
	awaited("namespace labelled frozen", false, "[invalidation-probe] the namespace is frozen")
	kubectl(t, "label", "namespace", "invalidation", "invalidation.tollgate.dev/frozen-")
	awaited("namespace label removed", true, "")

	// (b) The policy changes so that the same Pod now fails.
	if _, _, err := apply(t, fmt.Sprintf(invalidationPolicy, retiredRule)); err != nil {
		t.Fatal(err)
	}
	waitPolicyReady(t, "invalidation-probe", "True")
	now("policy changed", false, "[invalidation-probe] app same is retired")

	// (c) An exception waives the finding; deleting it brings it back.
	exc := fmt.Sprintf(`apiVersion: tollgate.dev/v1alpha1
kind: TollgateException
metadata: {name: invalidation-probe, namespace: platform-exceptions}
spec:
  policies: [invalidation-probe]
  match: {namespaces: [invalidation], names: [same]}
  reason: the retirement waits for the migration
  ticket: OPS-17
  approver: platform@corp.example
  expiry: %s
`, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	if _, _, err := apply(t, exc); err != nil {
		t.Fatal(err)
	}
	waitException(t, "platform-exceptions", "invalidation-probe", "True", "honoured until")
	now("exception added", true, "")
	kubectl(t, "delete", "tollgateexception", "-n", "platform-exceptions", "invalidation-probe")
	awaited("exception deleted", false, "[invalidation-probe] app same is retired")

	// (d) A config value: the policy's action becomes warn.
	cfg := `apiVersion: tollgate.dev/v1alpha1
kind: TollgateConfig
metadata: {name: tollgate}
spec:
  policies:
    images-no-latest: {action: warn}
    invalidation-probe: {action: warn}
  exceptions: {namespaces: [platform-exceptions]}
  gatekeeper: {sync: [{version: v1, kind: Service}]}
`
	if _, _, err := apply(t, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _, _ = env.cluster.Kubectl(ctx, "delete", "tollgateconfig", "tollgate", "--ignore-not-found")
	})
	waitConfigReady(t, "tollgate")
	now("action set to warn", true, "Warning: tollgate: [invalidation-probe] app same is retired")
	kubectl(t, "delete", "tollgateconfig", "tollgate")
	awaited("config deleted", false, "[invalidation-probe] app same is retired")
}

// waitConfigReady waits until the TollgateConfig's Ready condition is
// True for its current generation.
func waitConfigReady(t *testing.T, name string) {
	t.Helper()
	eventually(t, 30*time.Second, func() error {
		out := kubectl(t, "get", "tollgateconfig", name, "-o",
			`jsonpath={.metadata.generation} {.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].observedGeneration}`)
		f := strings.Fields(out)
		if len(f) != 3 || f[1] != "True" || f[0] != f[2] {
			return fmt.Errorf("status %q (generation, Ready, observedGeneration)", out)
		}
		return nil
	})
}
