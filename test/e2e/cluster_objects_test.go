package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/test/cluster"
	"github.com/tollgate-dev/tollgate/test/docexample"
)

// immutableTeam needs input.oldObject: the team label may not change on UPDATE.
const immutableTeam = `apiVersion: tollgate.dev/v1alpha1
kind: TollgatePolicy
metadata: {name: immutable-team}
spec:
  action: enforce
  rego: |
    # METADATA
    # title: Team label is immutable
    # custom:
    #   id: immutable-team
    #   severity: high
    #   scope: object
    #   kinds: [apps/Deployment, ConfigMap]
    package corp.immutable_team

    violation contains {"msg": msg, "path": ["metadata", "labels", "team"]} if {
      input.operation == "UPDATE"
      old := input.oldObject.metadata.labels.team
      new := object.get(input.object.metadata, ["labels", "team"], "")
      old != new
      msg := sprintf("the team label may not change (was %q, now %q)", [old, new])
    }
`

func TestClusterPoliciesHotReload(t *testing.T) {
	ctx := context.Background()
	teamNamespace(t, "reload")
	cm := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"settings","namespace":"reload","labels":{"team":"%s"}},"data":{"a":"b"}}`
	if _, _, err := apply(t, fmt.Sprintf(cm, "payments")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := apply(t, immutableTeam); err != nil {
		t.Fatal(err)
	}
	waitPolicyReady(t, "immutable-team", "True")
	out, err := console(t, "", "get", "tollgatepolicies")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	docexample.Check(t, root, "e2e-tollgatepolicies", out)
	// The policy is in force without a restart, and sees oldObject (the
	// webhook configuration now includes configmaps, which the policy names).
	eventually(t, 30*time.Second, func() error {
		_, stderr, err := apply(t, fmt.Sprintf(cm, "search"))
		if err == nil {
			// Put it back for the next try.
			_, _, _ = env.cluster.KubectlWithStdin(ctx, fmt.Sprintf(cm, "payments"), "replace", "-f", "-")
			return fmt.Errorf("team label change admitted")
		}
		if !strings.Contains(stderr, `[immutable-team] metadata.labels.team: the team label may not change (was "payments", now "search")`) {
			return fmt.Errorf("unexpected denial: %s", stderr)
		}
		return nil
	})

	// A broken version is reported in the status; the last good one stays in force.
	broken := strings.Replace(immutableTeam, "old != new", "old != new +", 1)
	if _, _, err := apply(t, broken); err != nil {
		t.Fatal(err)
	}
	waitPolicyReady(t, "immutable-team", "False")
	msg := kubectl(t, "get", "tollgatepolicy", "immutable-team", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].message}`)
	if !strings.Contains(msg, "does not load") || !strings.Contains(msg, "tollgatepolicy/immutable-team.rego:") {
		t.Errorf("status message %q does not say what is wrong and where", msg)
	}
	if _, stderr, err := apply(t, fmt.Sprintf(cm, "search")); err == nil || !strings.Contains(stderr, "immutable-team") {
		t.Fatalf("the last good version is no longer enforced: %v %s", err, stderr)
	}

	// Deleting the policy lifts it.
	kubectl(t, "delete", "tollgatepolicy", "immutable-team")
	eventually(t, 30*time.Second, func() error {
		_, stderr, err := apply(t, fmt.Sprintf(cm, "search"))
		if err != nil {
			return fmt.Errorf("still denied: %s", stderr)
		}
		return nil
	})
}

func waitPolicyReady(t *testing.T, name, status string) {
	t.Helper()
	eventually(t, 30*time.Second, func() error {
		var p v1alpha1.TollgatePolicy
		if err := env.client.Get(context.Background(), client.ObjectKey{Name: name}, &p); err != nil {
			return err
		}
		for _, c := range p.Status.Conditions {
			if c.Type == v1alpha1.ConditionReady && string(c.Status) == status && c.ObservedGeneration == p.Generation {
				return nil
			}
		}
		return fmt.Errorf("status %+v", p.Status)
	})
}

func exception(ns, name string, expiry time.Time) string {
	return fmt.Sprintf(`apiVersion: tollgate.dev/v1alpha1
kind: TollgateException
metadata: {name: %s, namespace: %s}
spec:
  policies: [pss-baseline-privileged, pss-baseline-host-namespaces, pss-restricted-privilege-escalation]
  match:
    namespaces: [vendor]
    names: ["vendor-agent*"]
  reason: the vendor's node agent needs the host network until v3
  ticket: SEC-1234
  approver: security@corp.example
  expiry: %s
`, name, ns, expiry.UTC().Format(time.RFC3339))
}

func TestExceptions(t *testing.T) {
	ctx := context.Background()
	teamNamespace(t, "vendor")
	teamNamespace(t, "platform-exceptions")
	agent := fmt.Sprintf(privilegedDeployment, "vendor-agent", "vendor")

	// An exception outside the designated namespaces is not honoured.
	if _, _, err := apply(t, exception("vendor", "self-granted", time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	waitException(t, "vendor", "self-granted", "False", "not one the config designates")
	if _, _, err := apply(t, agent, "--dry-run=server"); err == nil {
		t.Fatal("a self-granted exception waived a policy")
	}

	// An expired one is ignored.
	if _, _, err := apply(t, exception("platform-exceptions", "expired", time.Now().Add(-time.Hour))); err != nil {
		t.Fatal(err)
	}
	waitException(t, "platform-exceptions", "expired", "False", "expired at")
	if _, _, err := apply(t, agent, "--dry-run=server"); err == nil {
		t.Fatal("an expired exception waived a policy")
	}

	// A designated, unexpired one is honoured — for the Deployment and the
	// ReplicaSets and Pods its controller creates.
	expiry := time.Now().Add(20 * time.Second).Truncate(time.Second)
	if _, _, err := apply(t, exception("platform-exceptions", "vendor-agent", expiry)); err != nil {
		t.Fatal(err)
	}
	waitException(t, "platform-exceptions", "vendor-agent", "True", "honoured until")
	out, err := console(t, "", "get", "tollgateexceptions", "-A")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	docexample.Check(t, root, "e2e-tollgateexceptions", out)
	eventually(t, 15*time.Second, func() error {
		_, stderr, err := apply(t, agent)
		if err != nil {
			return fmt.Errorf("%s", stderr)
		}
		return nil
	})
	eventually(t, 15*time.Second, func() error {
		pods, err := env.kube.CoreV1().Pods("vendor").List(ctx, metav1.ListOptions{LabelSelector: "app=vendor-agent"})
		if err != nil {
			return err
		}
		if len(pods.Items) != 1 {
			return fmt.Errorf("%d pods, want 1", len(pods.Items))
		}
		return nil
	})
	if !strings.Contains(env.decision.String(), `"ticket":"SEC-1234"`) {
		t.Error("the decision log does not record the exception that waived the findings")
	}

	// Once it expires, the same change is denied again.
	time.Sleep(time.Until(expiry) + time.Second)
	_, stderr, err := apply(t, strings.Replace(agent, "agent:2.0", "agent:2.1", 1))
	if err == nil || !strings.Contains(stderr, "pss-baseline-privileged") {
		t.Fatalf("after expiry: %v %s", err, stderr)
	}
	waitException(t, "platform-exceptions", "vendor-agent", "False", "expired at")
}

func waitException(t *testing.T, ns, name, status, message string) {
	t.Helper()
	eventually(t, 30*time.Second, func() error {
		var x v1alpha1.TollgateException
		if err := env.client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &x); err != nil {
			return err
		}
		for _, c := range x.Status.Conditions {
			if c.Type == v1alpha1.ConditionReady && string(c.Status) == status && strings.Contains(c.Message, message) {
				return nil
			}
		}
		return fmt.Errorf("status %+v", x.Status)
	})
}

func TestClusterConfigHotReload(t *testing.T) {
	teamNamespace(t, "configured")
	latest := strings.Replace(fmt.Sprintf(plainDeployment, "configured"), "web:1.4.2", "web:latest", 1)
	// From the file config: images-no-latest warns.
	if _, stderr, err := apply(t, latest, "--dry-run=server"); err != nil || !strings.Contains(stderr, "Warning: tollgate: [images-no-latest]") {
		t.Fatalf("before: %v %s", err, stderr)
	}
	cfg := `apiVersion: tollgate.dev/v1alpha1
kind: TollgateConfig
metadata: {name: tollgate}
spec:
  policies:
    images-no-latest: {action: %s}
  exceptions: {namespaces: [platform-exceptions]}
`
	if _, _, err := apply(t, fmt.Sprintf(cfg, "enforce")); err != nil {
		t.Fatal(err)
	}
	defer func() {
		kubectl(t, "delete", "tollgateconfig", "tollgate")
		// The file's config is back in force before the next test, which
		// relies on it (its profiles, above all).
		eventually(t, 30*time.Second, func() error {
			if _, stderr, err := apply(t, latest, "--dry-run=server"); err != nil || !strings.Contains(stderr, "Warning: tollgate: [images-no-latest]") {
				return fmt.Errorf("the file's config is not back yet: %w %s", err, stderr)
			}
			return nil
		})
	}()
	eventually(t, 30*time.Second, func() error {
		if _, stderr, err := apply(t, latest, "--dry-run=server"); err == nil || !strings.Contains(stderr, "[images-no-latest]") {
			return fmt.Errorf("not enforced yet: %s", stderr)
		}
		return nil
	})
	// An invalid config is reported and the last good one stays.
	if _, _, err := apply(t, fmt.Sprintf(cfg, "sometimes")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		msg := kubectl(t, "get", "tollgateconfig", "tollgate", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].message}`)
		if !strings.HasPrefix(msg, "False") || !strings.Contains(msg, "policies.images-no-latest.action") {
			return fmt.Errorf("status %q", msg)
		}
		return nil
	})
	if _, stderr, err := apply(t, latest, "--dry-run=server"); err == nil || !strings.Contains(stderr, "[images-no-latest]") {
		t.Fatalf("the last good config is no longer in force: %v %s", err, stderr)
	}
}

// TestPolicyRecreatedUnderSameName: a policy deleted and created again
// under the same name (kubectl delete then apply, faster than a reload)
// is a new object; its status says it is in force.
func TestPolicyRecreatedUnderSameName(t *testing.T) {
	ctx := context.Background()
	const policy = `apiVersion: tollgate.dev/v1alpha1
kind: TollgatePolicy
metadata: {name: recreated}
spec:
  rego: |
    # METADATA
    # custom:
    #   id: recreated
    #   severity: low
    #   action: audit
    #   scope: object
    #   kinds: [example.com/Recreated]
    package corp.recreated

    violation contains {"msg": "never"} if { false }
`
	defer kubectl(t, "delete", "tollgatepolicy", "recreated", "--ignore-not-found")
	for round := range 3 {
		if _, _, err := apply(t, policy); err != nil {
			t.Fatal(err)
		}
		waitPolicyReady(t, "recreated", "True")
		var p v1alpha1.TollgatePolicy
		if err := env.client.Get(ctx, client.ObjectKey{Name: "recreated"}, &p); err != nil {
			t.Fatal(err)
		}
		if err := env.client.Delete(ctx, &p); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		eventually(t, 10*time.Second, func() error {
			err := env.client.Get(ctx, client.ObjectKey{Name: "recreated"}, &v1alpha1.TollgatePolicy{})
			if client.IgnoreNotFound(err) != nil {
				return err
			}
			if err == nil {
				return fmt.Errorf("still there")
			}
			return nil
		})
	}
	if _, _, err := apply(t, policy); err != nil {
		t.Fatal(err)
	}
	waitPolicyReady(t, "recreated", "True")
}
