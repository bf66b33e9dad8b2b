package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// A ValidatingAdmissionPolicy with a ConfigMap param, bound to one
// namespace.
const replicaLimitVAP = `
apiVersion: v1
kind: ConfigMap
metadata: {name: replica-limit, namespace: vapped}
data: {maxReplicas: "%d"}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: e2e-replica-limit}
spec:
  failurePolicy: Fail
  paramKind: {apiVersion: v1, kind: ConfigMap}
  matchConstraints:
    resourceRules:
    - {apiGroups: ["apps"], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["deployments"]}
  validations:
  - expression: "object.spec.replicas <= int(params.data.maxReplicas)"
    messageExpression: "'replicas ' + string(object.spec.replicas) + ' exceed the limit of ' + params.data.maxReplicas"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: e2e-replica-limit}
spec:
  policyName: e2e-replica-limit
  validationActions: [Deny]
  paramRef: {name: replica-limit, namespace: vapped, parameterNotFoundAction: Deny}
  matchResources:
    namespaceSelector:
      matchLabels: {kubernetes.io/metadata.name: vapped}
`

func replicasDeployment(name string, replicas int) string {
	return fmt.Sprintf(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":%q,"namespace":"vapped"},
	 "spec":{"replicas":%d,"selector":{"matchLabels":{"app":%q}},"template":{"metadata":{"labels":{"app":%q}},
	  "spec":{"containers":[{"name":"app","image":"ghcr.io/corp/app:1.0"}]}}}}`, name, replicas, name, name)
}

// TestValidatingAdmissionPolicies: the API server enforces a VAP at
// admission and Tollgate does not judge it a second time there; Tollgate's
// audit judges the objects already stored with the API server's own
// evaluation, and reports each violation exactly once.
func TestValidatingAdmissionPolicies(t *testing.T) {
	ctx := context.Background()
	teamNamespace(t, "vapped")
	if _, _, err := apply(t, fmt.Sprintf(replicaLimitVAP, 5)); err != nil {
		t.Fatal(err)
	}
	defer kubectl(t, "delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", "e2e-replica-limit", "--ignore-not-found")

	// Admission: the API server's denial, not Tollgate's.
	eventually(t, time.Minute, func() error {
		_, stderr, err := apply(t, replicasDeployment("too-big", 12))
		if err == nil {
			kubectl(t, "-n", "vapped", "delete", "deployment", "too-big", "--ignore-not-found")
			return fmt.Errorf("12 replicas admitted (the API server has not loaded the policy yet?)")
		}
		if !strings.Contains(stderr, "replicas 12 exceed the limit of 5") || !strings.Contains(stderr, "e2e-replica-limit") {
			return fmt.Errorf("denied otherwise: %s", stderr)
		}
		if strings.Contains(stderr, "tollgate denied") || strings.Contains(stderr, "[ValidatingAdmissionPolicy/") {
			return fmt.Errorf("Tollgate judged the policy at admission too: %s", stderr)
		}
		return nil
	})
	if _, stderr, err := apply(t, replicasDeployment("fits", 3)); err != nil {
		t.Fatalf("3 replicas: %v\n%s", err, stderr)
	}

	// The limit drops: the Deployment stored with 3 replicas now breaks
	// the policy; the audit (rescanning on the param's change) says so.
	if _, _, err := apply(t, fmt.Sprintf(replicaLimitVAP, 2)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Minute, func() error {
		results, err := reportResults(ctx, "vapped", "tollgate")
		if err != nil {
			return err
		}
		found := 0
		for _, res := range results {
			if res["policy"] == "ValidatingAdmissionPolicy/e2e-replica-limit" && strings.Contains(fmt.Sprint(res["resources"]), "fits") {
				if res["result"] != "fail" || !strings.Contains(fmt.Sprint(res["message"]), "replicas 3 exceed the limit of 2") {
					return fmt.Errorf("result %v: %v", res["result"], res["message"])
				}
				found++
			}
		}
		if found != 1 {
			return fmt.Errorf("%d results for the policy on fits among %d, want exactly 1", found, len(results))
		}
		return nil
	})
}
