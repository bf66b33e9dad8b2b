package fault

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
)

// TestControlPlaneRestarts: kube-apiserver, then etcd, restarted while
// pods are created. Tollgate recovers by itself: both replicas keep
// running, one leads, a policy and a namespace created after each restart
// reach every replica through its informers, and admission still
// enforces.
func TestControlPlaneRestarts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		restart func(context.Context) error
	}{
		{"kube-apiserver", func(ctx context.Context) error { return env.cluster.RestartAPIServer(ctx) }},
		{"etcd", func(ctx context.Context) error { return env.cluster.RestartEtcd(ctx) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if err := ensureReplicas(ctx, 2); err != nil {
				t.Fatal(err)
			}
			lead, err := leader(ctx, 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			replicas := running()
			lostLease := regexp.MustCompile(`^lost the lease`)
			steppedBefore := len(logLines(lead.log.String(), lostLease))

			stop := make(chan struct{})
			l, wait := runLoad(ctx, "load", "restart-"+tc.name, 3, stop)
			time.Sleep(3 * time.Second)
			faultAt := time.Now()
			rctx, cancel := context.WithTimeout(ctx, 90*time.Second)
			err = tc.restart(rctx)
			cancel()
			if err != nil {
				close(stop)
				wait()
				t.Fatal(err)
			}
			down := time.Since(faultAt)
			time.Sleep(8 * time.Second)
			close(stop)
			wait()
			s := l.summarize()
			t.Logf("%s restarted in %.1fs (stop and start)", tc.name, down.Seconds())
			s.report(t, tc.name+" restart", faultAt)
			l.checkAdmitted(ctx, t, s)

			// No replica restarted or exited.
			for _, r := range replicas {
				select {
				case <-r.proc.Done():
					t.Fatalf("%s exited: %v\n%s", r.name, r.proc.ExitErr(), tail(r.log.String(), 3000))
				default:
				}
			}
			next, err := leader(ctx, 3*leaseDuration)
			if err != nil {
				t.Fatal(err)
			}
			stepped := len(logLines(lead.log.String(), lostLease)) - steppedBefore
			switch {
			case next != lead:
				t.Logf("the lease moved from %s to %s", lead.name, next.name)
			case stepped > 0:
				t.Logf("%s stepped down while the API server was away (%d×) and won the lease again, without a restart", lead.name, stepped)
			default:
				t.Logf("%s kept the lease", lead.name)
			}
			enforcesAfter(ctx, t, tc.name)
		})
	}
}

// enforcesAfter creates a policy and a namespace, then checks through
// haproxy that each replica's informers saw both: the policy denies, the
// namespace's labels are copied, and the library still denies.
func enforcesAfter(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	id := "after-" + strings.ReplaceAll(name, "-", "")
	ns := "fresh-" + name
	pol := &v1alpha1.TollgatePolicy{ObjectMeta: metav1.ObjectMeta{Name: id}}
	rego := fmt.Sprintf(`# METADATA
# custom:
#   id: %s
#   severity: low
#   action: enforce
#   scope: object
package fault.%s

violation contains {"msg": "pods labelled fault=deny are denied"} if {
	input.kind.kind == "Pod"
	input.object.metadata.labels.fault == "deny"
}
`, id, strings.ReplaceAll(id, "-", "_"))
	if err := yaml.Unmarshal(fmt.Appendf(nil, "spec: {rego: %q}", rego), pol); err != nil {
		t.Fatal(err)
	}
	retrying(t, "creating policy "+id, func() error { return env.client.Create(ctx, pol) })
	retrying(t, "creating namespace "+ns, func() error {
		_, err := env.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: ownership}}, metav1.CreateOptions{})
		return err
	})
	// Each replica loads the policy from its informer: six denials in a
	// row through haproxy's round robin mean both have.
	deadline := time.Now().Add(30 * time.Second)
	for streak := 0; streak < 6; {
		bad := compliantPod(ns, "labelled")
		bad.Labels = map[string]string{"fault": "deny"}
		_, err := env.kube.CoreV1().Pods(ns).Create(ctx, bad, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil && strings.Contains(err.Error(), id) {
			streak++
			continue
		}
		streak = 0
		if time.Now().After(deadline) {
			t.Fatalf("policy %s created after the %s restart is not enforced by every replica after 30s: %v", id, name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Enough creates that both replicas answer some.
	for i := range 6 {
		if _, err := env.kube.CoreV1().Pods(ns).Create(ctx, violatingPod(ns, fmt.Sprintf("bad-%d", i)), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err == nil || !strings.Contains(err.Error(), "pss-baseline-privileged") {
			t.Errorf("a privileged pod after the %s restart: %v, want denied", name, err)
		}
		p, err := env.kube.CoreV1().Pods(ns).Create(ctx, compliantPod(ns, fmt.Sprintf("ok-%d", i)), metav1.CreateOptions{})
		if err != nil {
			t.Errorf("a compliant pod after the %s restart: %v", name, err)
			continue
		}
		if p.Labels["team"] != ownership["team"] {
			t.Errorf("pod %s/%s has labels %v: the new namespace's were not copied", ns, p.Name, p.Labels)
		}
	}
}
