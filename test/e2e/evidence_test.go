package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/compliance"
	"github.com/tollgate-dev/tollgate/test/cluster"
	"github.com/tollgate-dev/tollgate/test/docexample"
)

// The cluster's own configuration, seeded: a ServiceAccount bound to
// cluster-admin, an aggregated ClusterRole that collects a grant on Secrets
// and is bound to a Group, a Group bound to a role that reads only
// ConfigMaps, a binding that puts a user in system:masters, and two
// namespaces, one protected by a default-deny NetworkPolicy and one whose
// only policy selects some pods.
const evidenceSeed = `
apiVersion: v1
kind: Namespace
metadata: {name: evid-open, labels: {team: platform, owner: ops, cost-center: CC-0001}}
---
apiVersion: v1
kind: Namespace
metadata: {name: evid-closed, labels: {team: platform, owner: ops, cost-center: CC-0001}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: evid-closed}
spec: {podSelector: {}, policyTypes: [Ingress]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-web, namespace: evid-open}
spec: {podSelector: {matchLabels: {app: web}}, policyTypes: [Ingress]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: evid-secrets-reader, labels: {evid.tollgate.dev/aggregate: "true"}}
rules:
  - {apiGroups: [""], resources: [secrets], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: evid-aggregate}
aggregationRule:
  clusterRoleSelectors:
    - matchLabels: {evid.tollgate.dev/aggregate: "true"}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: evid-readers, namespace: evid-open}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: evid-aggregate}
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: Group, name: evid-readers}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: evid-config, namespace: evid-open}
rules:
  - {apiGroups: [""], resources: [configmaps], verbs: [get, list]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: evid-config, namespace: evid-open}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: evid-config}
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: Group, name: evid-config-readers}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: evid-masters}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: Group, name: "system:masters"}
`

const evidenceClusterAdmin = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: evid-ci-admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects:
  - {kind: ServiceAccount, name: deployer, namespace: evid-open}
`

// A node reachable from outside: an ExternalIP among its addresses.
const evidenceNode = `apiVersion: v1
kind: Node
metadata: {name: evid-node, labels: {kubernetes.io/hostname: evid-node}}
`

// TestClusterConfigurationEvidence: the audit judges the cluster's own
// configuration (RBAC read with the roles it names, namespaces with their
// NetworkPolicies, nodes, what it measured of the API server), its Reports
// and tollgate report show each control's verdict with what was examined,
// and fixing an object flips its control on the next audit.
func TestClusterConfigurationEvidence(t *testing.T) {
	ctx := context.Background()
	// A new ClusterRoleBinding to cluster-admin is a warning at admission.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "evid-ci-admin.yaml"), []byte(evidenceClusterAdmin), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := console(t, dir, "apply", "-f", "evid-ci-admin.yaml")
	if err != nil || !strings.Contains(out, "rbac-cluster-admin") {
		t.Fatalf("binding cluster-admin: %v; want a warning from rbac-cluster-admin:\n%s", err, out)
	}
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	docexample.Check(t, root, "e2e-evidence-cluster-admin-warning", out)
	if _, stderr, err := apply(t, evidenceSeed); err != nil {
		t.Fatalf("seeding: %v\n%s", err, stderr)
	}
	// A workload, so that the pod policies have something to examine.
	if _, stderr, err := apply(t, fmt.Sprintf(plainDeployment, "evid-open")); err != nil {
		t.Fatalf("the workload: %v\n%s", err, stderr)
	}
	if _, stderr, err := apply(t, evidenceNode); err != nil {
		t.Fatalf("creating the node: %v\n%s", err, stderr)
	}
	setNodeAddress := func(kind string) {
		patch := fmt.Sprintf(`{"status":{"addresses":[{"type":"InternalIP","address":"10.0.0.7"},{"type":%q,"address":"203.0.113.7"}]}}`, kind)
		kubectl(t, "patch", "node", "evid-node", "--subresource=status", "--type=merge", "-p", patch)
	}
	setNodeAddress("ExternalIP")
	defer func() {
		kubectl(t, "delete", "clusterrolebinding", "evid-ci-admin", "evid-masters", "--ignore-not-found")
		kubectl(t, "delete", "clusterrole", "evid-secrets-reader", "evid-aggregate", "--ignore-not-found")
		kubectl(t, "delete", "node", "evid-node", "--ignore-not-found")
		kubectl(t, "delete", "namespace", "evid-open", "evid-closed", "--ignore-not-found", "--wait=false")
	}()

	// The reference: the API server's own authorizer says the Group can
	// read Secrets in evid-open through the aggregated role, and the
	// ConfigMap readers cannot; the policy must agree.
	for _, tc := range []struct{ group, want string }{{"evid-readers", "yes"}, {"evid-config-readers", "no"}} {
		var got string
		eventually(t, 30*time.Second, func() error {
			out, _, _ := env.cluster.KubectlWithStdin(ctx, "", "auth", "can-i", "get", "secrets", "-n", "evid-open", "--as=someone", "--as-group="+tc.group)
			if got = strings.TrimSpace(out); got != tc.want {
				return fmt.Errorf("kubectl auth can-i get secrets as %s: %q, want %q", tc.group, got, tc.want)
			}
			return nil
		})
	}

	bin := tollgateBinary(t)
	report := func() *compliance.Report {
		cmd := exec.CommandContext(ctx, bin, "report", "--kubeconfig", env.cluster.KubeconfigPath(), "--cluster-name", "e2e",
			"--framework", "cis,nsa", "--format", "json")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tollgate report: %v\n%s", err, errText(err))
		}
		var r compliance.Report
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatal(err)
		}
		return &r
	}
	control := func(r *compliance.Report, fw, id string) *compliance.ControlResult {
		for i := range r.Frameworks {
			for j := range r.Frameworks[i].Controls {
				if c := &r.Frameworks[i].Controls[j]; r.Frameworks[i].ID == fw && c.ID == id {
					return c
				}
			}
		}
		t.Fatalf("no control %s:%s", fw, id)
		return nil
	}
	failing := func(c *compliance.ControlResult) []string {
		var out []string
		for _, f := range c.Failures {
			out = append(out, f.Policy+" "+f.Resource.Kind+" "+strings.TrimPrefix(f.Resource.Namespace+"/"+f.Resource.Name, "/"))
		}
		return out
	}
	// A policy change makes the shared server's audit rescan now.
	audit := func(round string) {
		policy := strings.Replace(slowPolicy, "name: slow", "name: evidence-trigger", 1)
		policy = strings.Replace(policy, "id: slow", "id: evidence-trigger-"+round, 1)
		if _, stderr, err := apply(t, policy); err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
	}
	defer kubectl(t, "delete", "tollgatepolicy", "evidence-trigger", "--ignore-not-found")

	audit("1")
	var r *compliance.Report
	eventually(t, 3*time.Minute, func() error {
		r = report()
		for _, want := range []struct{ fw, id, finding string }{
			{"cis", "5.1.1", "rbac-cluster-admin ClusterRoleBinding evid-ci-admin"},
			{"cis", "5.1.2", "rbac-secrets-access RoleBinding evid-open/evid-readers"},
			{"cis", "5.1.7", "rbac-system-masters ClusterRoleBinding evid-masters"},
			{"cis", "5.3.2", "network-policies-per-namespace Namespace evid-open"},
			{"nsa", "network/worker-nodes", "nodes-segmentation Node evid-node"},
		} {
			if c := control(r, want.fw, want.id); !slices.Contains(failing(c), want.finding) {
				return fmt.Errorf("%s:%s (%s) fails with %v, want %q among them", want.fw, want.id, c.Verdict, failing(c), want.finding)
			}
		}
		return nil
	})
	for _, c := range []*compliance.ControlResult{control(r, "cis", "5.1.2"), control(r, "cis", "5.3.2")} {
		for _, f := range failing(c) {
			if strings.Contains(f, "evid-config") || strings.Contains(f, "evid-closed") {
				t.Errorf("%s fails on %s, which the reference (or its default-deny policy) clears", c.ID, f)
			}
		}
	}
	// Every automated control shows what it examined; the manual ones why.
	for _, fw := range r.Frameworks {
		manual := 0
		for _, c := range fw.Controls {
			switch {
			case c.Verdict == compliance.VerdictManual:
				manual++
				if c.Reason == "" {
					t.Errorf("%s:%s is MANUAL without a reason", fw.ID, c.ID)
				}
			case c.Evidence == nil || c.Evidence.Examined == 0:
				t.Errorf("%s:%s is %s with no evidence of what was examined: %+v", fw.ID, c.ID, c.Verdict, c.Evidence)
			}
		}
		if manual*10 > len(fw.Controls) {
			t.Errorf("%s: %d of %d controls MANUAL, more than one in ten", fw.ID, manual, len(fw.Controls))
		}
		t.Logf("%s: %d of %d controls automated, %d failed, score %v", fw.ID, fw.Summary.Automated, fw.Summary.Controls, fw.Summary.Failed, *fw.Summary.Score)
	}
	for _, id := range []string{"network/control-plane", "network/encryption", "logging/audit"} {
		c := control(r, "nsa", id)
		if c.Verdict != compliance.VerdictPassed || !slices.ContainsFunc(c.Evidence.ByKind, func(k compliance.KindCount) bool { return k.Kind == "tollgate.dev/ClusterFacts" }) {
			t.Errorf("nsa:%s: %s, evidence %+v; want passed on the measured ClusterFacts", id, c.Verdict, c.Evidence)
		}
	}
	if c := control(r, "nsa", "network/worker-nodes"); c.Verdict != compliance.VerdictFailed || c.Evidence.Examined != 1 {
		t.Errorf("nsa:network/worker-nodes: %s with %+v; want failed on the one node", c.Verdict, c.Evidence)
	}

	// Fix what failed: the node loses its external address, the masters
	// binding goes. The next audit flips both controls.
	setNodeAddress("Hostname")
	kubectl(t, "delete", "clusterrolebinding", "evid-masters")
	audit("2")
	eventually(t, 3*time.Minute, func() error {
		r = report()
		for _, want := range []struct{ fw, id string }{{"nsa", "network/worker-nodes"}, {"cis", "5.1.7"}} {
			if c := control(r, want.fw, want.id); c.Verdict != compliance.VerdictPassed {
				return fmt.Errorf("%s:%s is %s (%v), want passed after the fix", want.fw, want.id, c.Verdict, failing(c))
			}
		}
		return nil
	})
	c := control(r, "nsa", "network/worker-nodes")
	if c.Evidence == nil || c.Evidence.Examined != 1 || len(c.Evidence.Passed) != 1 || c.Evidence.Passed[0].Name != "evid-node" {
		t.Errorf("nsa:network/worker-nodes passed with evidence %+v; want the one node examined and named", c.Evidence)
	}
	md, err := exec.CommandContext(ctx, bin, "report", "--kubeconfig", env.cluster.KubeconfigPath(), "--cluster-name", "e2e", "--framework", "nsa", "--format", "markdown").Output()
	if err != nil {
		t.Fatalf("tollgate report: %v\n%s", err, errText(err))
	}
	t.Logf("tollgate report --framework nsa:\n%s", md)
}
