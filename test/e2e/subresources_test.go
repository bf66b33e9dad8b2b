package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/test/cluster"
	"github.com/tollgate-dev/tollgate/test/docexample"
)

// seedBudget creates a namespace Budget whose status is what a scan that
// has just run would have written: the forecast, as of now. Changes
// admitted after it are counted by the gate until the next scan.
func seedBudget(t *testing.T, ns, name, amount, action, forecast string) {
	t.Helper()
	ctx := context.Background()
	b := &v1alpha1.Budget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.BudgetSpec{Amount: amount, Action: action}}
	if err := env.client.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.client.Delete(ctx, b) })
	// A status keeps whole seconds: wait out the current one, so that
	// what was admitted before is before the scan.
	time.Sleep(time.Second)
	now := metav1.Now()
	b.Status.Forecast, b.Status.LastScanTime = forecast, &now
	if err := env.client.Status().Update(ctx, b); err != nil {
		t.Fatal(err)
	}
	// The gate reads Budgets from the server's cache.
	eventually(t, 30*time.Second, func() error {
		var got v1alpha1.BudgetList
		if err := env.client.List(ctx, &got, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, x := range got.Items {
			if x.Name == name && x.Status.Forecast == forecast {
				return nil
			}
		}
		return fmt.Errorf("budget %s/%s not seeded", ns, name)
	})
	time.Sleep(time.Second) // the server's informer, a moment behind the API server's
}

// trainingPod asks cpu cores and 2 GiB, requests equal to limits
// (Guaranteed): with OpenCost's default prices, 1 core costs $29.26 a
// month with its memory, and each more core $23.08.
func trainingPod(ns, name, cpu string) string {
	return fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":%q,"namespace":%q},
	 "spec":{"containers":[{"name":"c","image":"ghcr.io/corp/train:1.0","resources":{"requests":{"cpu":%q,"memory":"2Gi"},"limits":{"cpu":%q,"memory":"2Gi"}}}]}}`,
		name, ns, cpu, cpu)
}

// resize runs kubectl patch on the resize subresource.
func resize(ctx context.Context, ns, pod, container, requests, limits string, flags ...string) (string, error) {
	patch := fmt.Sprintf(`{"spec":{"containers":[{"name":%q,"resources":{"requests":%s,"limits":%s}}]}}`, container, requests, limits)
	_, stderr, err := env.cluster.Kubectl(ctx, append([]string{"patch", "-n", ns, "pod", pod, "--subresource=resize", "--type=strategic", "-p", patch}, flags...)...)
	return stderr, err
}

// TestPodResizeIsJudged: an in-place resize (pods/resize) is judged as the
// resized pod: the per-container caps hold, and the Budgets count what it
// adds, for a bare pod and for a pod a Deployment owns.
func TestPodResizeIsJudged(t *testing.T) {
	ctx := context.Background()
	ns := "subres-resize"
	teamNamespace(t, ns)
	if _, stderr, err := apply(t, trainingPod(ns, "solo", "1")); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if _, stderr, err := apply(t, trainingDeployment(ns, "web", 1)); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var webPod string
	eventually(t, time.Minute, func() error {
		var pods corev1.PodList
		if err := env.client.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{"app": "web"}); err != nil {
			return err
		}
		if len(pods.Items) != 1 {
			return fmt.Errorf("%d pods of web", len(pods.Items))
		}
		webPod = pods.Items[0].Name
		return nil
	})
	// The last scan counted both: $58.52 of $80.
	seedBudget(t, ns, "cap", "80", "deny", "58.52")

	// Past the 8-CPU container cap: denied by the resource caps.
	stderr, err := resize(ctx, ns, "solo", "c", `{"cpu":"12"}`, `{"cpu":"12"}`)
	if err == nil || !strings.Contains(stderr, "[resources-caps] spec.containers[0].resources.requests.cpu") {
		t.Fatalf("a resize past the cap: %v\n%s", err, stderr)
	}
	// Within the cap but past the Budget: 1 → 2 cores adds $23.08.
	stderr, err = resize(ctx, ns, "solo", "c", `{"cpu":"2"}`, `{"cpu":"2"}`)
	want := "[budget/subres-resize/cap] this adds $23.08/month; namespace subres-resize is forecast at $58.52 of its $80.00 monthly budget (subres-resize/cap), $81.60 with this change"
	if err == nil || !strings.Contains(stderr, want) {
		t.Fatalf("a resize past the Budget: %v\n%s\nwant %s", err, stderr, want)
	}
	// The same as a dry run: the same verdict.
	if stderr, err = resize(ctx, ns, "solo", "c", `{"cpu":"2"}`, `{"cpu":"2"}`, "--dry-run=server"); err == nil || !strings.Contains(stderr, want) {
		t.Fatalf("a dry-run resize past the Budget: %v\n%s", err, stderr)
	}
	// Half a core more fits ($11.54): admitted, and counted.
	if stderr, err = resize(ctx, ns, "solo", "c", `{"cpu":"1500m"}`, `{"cpu":"1500m"}`); err != nil {
		t.Fatalf("a resize within the Budget: %v\n%s", err, stderr)
	}
	var solo corev1.Pod
	if err := env.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "solo"}, &solo); err != nil {
		t.Fatal(err)
	}
	if got := solo.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU]; got.Cmp(resource.MustParse("1500m")) != 0 {
		t.Fatalf("solo's cpu request is %s after the admitted resize", got.String())
	}
	// A Deployment's pod is priced as itself: its owner's template no
	// longer says what it reserves. 1 → 2 cores after the $11.54 already
	// admitted: $93.14 of $80.
	stderr, err = resize(ctx, ns, webPod, "c", `{"cpu":"2"}`, `{"memory":"2Gi"}`)
	want = "[budget/subres-resize/cap] this adds $23.08/month; namespace subres-resize is forecast at $70.06 of its $80.00 monthly budget"
	if err == nil || !strings.Contains(stderr, want) {
		t.Fatalf("a resize of an owned pod past the Budget: %v\n%s\nwant %s", err, stderr, want)
	}
}

// TestScaleIsJudged: the scale subresource (kubectl scale, autoscalers)
// is judged as the workload at its new size, for every kind that has one;
// a plain update of spec.replicas is judged the same; scaling down is
// never stopped.
func TestScaleIsJudged(t *testing.T) {
	ctx := context.Background()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ns := "subres-scale"
	teamNamespace(t, ns)
	container := `[{"name":"c","image":"ghcr.io/corp/train:1.0","resources":{"requests":{"cpu":"1","memory":"2Gi"},"limits":{"memory":"2Gi"}}}]`
	tmpl := func(app string) string {
		return fmt.Sprintf(`"selector":{"matchLabels":{"app":%q}},"template":{"metadata":{"labels":{"app":%q}},"spec":{"containers":%s}}`, app, app, container)
	}
	for _, m := range []string{
		trainingDeployment(ns, "api", 1),
		fmt.Sprintf(`{"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"rs","namespace":%q},"spec":{"replicas":1,%s}}`, ns, tmpl("rs")),
		fmt.Sprintf(`{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"db","namespace":%q},"spec":{"replicas":1,"serviceName":"db",%s}}`, ns, tmpl("db")),
		fmt.Sprintf(`{"apiVersion":"v1","kind":"ReplicationController","metadata":{"name":"rc","namespace":%q},"spec":{"replicas":1,"selector":{"app":"rc"},"template":{"metadata":{"labels":{"app":"rc"}},"spec":{"containers":%s}}}}`, ns, container),
	} {
		if _, stderr, err := apply(t, m); err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
	}
	// Four workloads of one $29.26 replica: $117.04 of $150.
	seedBudget(t, ns, "cap", "150", "deny", "117.04")
	scale := func(target string, replicas int, flags ...string) (string, error) {
		_, stderr, err := env.cluster.Kubectl(ctx, append([]string{"scale", "-n", ns, target, fmt.Sprintf("--replicas=%d", replicas)}, flags...)...)
		return stderr, err
	}
	replicasOf := func(obj client.Object) int32 {
		t.Helper()
		if err := env.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: obj.GetName()}, obj); err != nil {
			t.Fatal(err)
		}
		switch o := obj.(type) {
		case *appsv1.Deployment:
			return *o.Spec.Replicas
		case *appsv1.ReplicaSet:
			return *o.Spec.Replicas
		case *appsv1.StatefulSet:
			return *o.Spec.Replicas
		case *corev1.ReplicationController:
			return *o.Spec.Replicas
		}
		t.Fatalf("%T", obj)
		return 0
	}

	want := "[budget/subres-scale/cap] this adds $58.52/month; namespace subres-scale is forecast at $117.04 of its $150.00 monthly budget (subres-scale/cap), $175.56 with this change"
	if stderr, err := scale("deployment/api", 3, "--dry-run=server"); err == nil || !strings.Contains(stderr, want) {
		t.Fatalf("kubectl scale --dry-run=server past the Budget: %v\n%s\nwant %s", err, stderr, want)
	}
	// As docs/finops.md shows it.
	out, err := console(t, "", "scale", "-n", ns, "deployment/api", "--replicas=3")
	if err == nil || !strings.Contains(out, want) {
		t.Fatalf("kubectl scale past the Budget: %v\n%s\nwant %s", err, out, want)
	}
	docexample.Check(t, root, "e2e-budget-scale-denied", out)
	if n := replicasOf(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "api"}}); n != 1 {
		t.Fatalf("the denied scale left %d replicas", n)
	}
	// One more ReplicaSet replica fits, and is counted.
	if stderr, err := scale("replicaset/rs", 2); err != nil {
		t.Fatalf("a scale within the Budget: %v\n%s", err, stderr)
	}
	if n := replicasOf(&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "rs"}}); n != 2 {
		t.Fatalf("the admitted scale left %d replicas", n)
	}
	// $146.30 now: one more replica of anything is over.
	want = "this adds $29.26/month; namespace subres-scale is forecast at $146.30 of its $150.00 monthly budget"
	for _, target := range []string{"statefulset/db", "replicationcontroller/rc"} {
		if stderr, err := scale(target, 2); err == nil || !strings.Contains(stderr, want) {
			t.Errorf("kubectl scale %s past the Budget: %v\n%s\nwant %s", target, err, stderr, want)
		}
	}
	// The autoscaler's scale requests are judged the same: a deny Budget
	// stops an autoscale up.
	// The autoscaler reads and writes the scale (its RBAC allows no more).
	cfg := rest.CopyConfig(env.cluster.Config())
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:kube-system:horizontal-pod-autoscaler"}
	hpa, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := hpa.AppsV1().Deployments(ns).GetScale(ctx, "api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sc.Spec.Replicas = 2
	if _, err := hpa.AppsV1().Deployments(ns).UpdateScale(ctx, "api", sc, metav1.UpdateOptions{}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("an autoscaler's scale past the Budget: %v", err)
	}
	// A plain update of spec.replicas is the same change.
	_, stderr, err := env.cluster.Kubectl(ctx, "patch", "-n", ns, "deployment/api", "--type=merge", "-p", `{"spec":{"replicas":2}}`)
	if err == nil || !strings.Contains(stderr, want) {
		t.Errorf("a patch of spec.replicas past the Budget: %v\n%s", err, stderr)
	}
	// Scaling down saves money: never stopped.
	if stderr, err := scale("replicaset/rs", 0); err != nil {
		t.Errorf("a scale down: %v\n%s", err, stderr)
	}
}

// TestBurstOfCreatesCountsWhatWasAdmitted: a burst of pods, each within
// the Budget alone and over it together, is admitted only as far as the
// Budget goes, even when the requests arrive at once; dry runs count
// nothing.
func TestBurstOfCreatesCountsWhatWasAdmitted(t *testing.T) {
	ctx := context.Background()
	ns := "subres-burst"
	teamNamespace(t, ns)
	seedBudget(t, ns, "cap", "100", "deny", "0")
	for i := range 4 {
		if _, stderr, err := apply(t, trainingPod(ns, fmt.Sprintf("dry-%d", i), "1"), "--dry-run=server"); err != nil {
			t.Fatalf("dry run %d: %v\n%s", i, err, stderr)
		}
	}
	// Eight pods of $29.26 at once: three fit in $100.
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		admitted int
		denials  []string
	)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("burst-%d", i)},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "ghcr.io/corp/train:1.0",
					Resources: corev1.ResourceRequirements{
						Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("2Gi")},
						Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("2Gi")},
					}}}},
			}
			_, err := env.kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				admitted++
			} else {
				denials = append(denials, err.Error())
			}
		}()
	}
	wg.Wait()
	if admitted != 3 {
		t.Fatalf("%d of 8 pods admitted under a $100 Budget, want 3; denials:\n%s", admitted, strings.Join(denials, "\n"))
	}
	for _, d := range denials {
		if !strings.Contains(d, "[budget/subres-burst/cap] this adds $29.26/month; namespace subres-burst is forecast at $87.79 of its $100.00 monthly budget") {
			t.Errorf("denial: %s", d)
		}
	}
}

// TestStorageCountsAgainstBudgets: claims reach the validating webhook and
// are priced per GiB-month: a 100Ti claim is denied under a $1 Budget, so
// is a StatefulSet whose claim templates ask as much, and so is a resize
// past it; a small claim and a small resize are admitted.
func TestStorageCountsAgainstBudgets(t *testing.T) {
	ctx := context.Background()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ns := "subres-storage"
	teamNamespace(t, ns)
	seedBudget(t, ns, "cap", "1", "deny", "0")
	claim := func(name, size, extra string) string {
		return fmt.Sprintf(`{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":%q,"namespace":%q},
		 "spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":%q}}%s}}`, name, ns, size, extra)
	}
	// 102,400 GiB × $0.00005479452 × 730 h. Applied from a file, as
	// docs/finops.md shows it.
	want := "[budget/subres-storage/cap] this adds $4,096.00/month; namespace subres-storage is forecast at $0.00 of its $1.00 monthly budget"
	dir := t.TempDir()
	huge := fmt.Sprintf(`apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: huge, namespace: %s}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 100Ti}}
`, ns)
	if err := os.WriteFile(filepath.Join(dir, "huge-claim.yaml"), []byte(huge), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := console(t, dir, "apply", "-f", "huge-claim.yaml")
	if err == nil || !strings.Contains(out, want) {
		t.Fatalf("a 100Ti claim: %v\n%s\nwant %s", err, out, want)
	}
	docexample.Check(t, root, "e2e-budget-storage-denied", out)
	sts := fmt.Sprintf(`{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"store","namespace":%q},
	 "spec":{"replicas":1,"serviceName":"store","selector":{"matchLabels":{"app":"store"}},
	  "template":{"metadata":{"labels":{"app":"store"}},"spec":{"containers":[{"name":"c","image":"ghcr.io/corp/store:1.0","resources":{"requests":{"cpu":"1m","memory":"1Mi"},"limits":{"memory":"1Mi"}}}]}},
	  "volumeClaimTemplates":[{"metadata":{"name":"data"},"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"100Ti"}}}}]}}`, ns)
	if _, stderr, err := apply(t, sts); err == nil || !strings.Contains(stderr, "[budget/subres-storage/cap] this adds $4,096.0") {
		t.Fatalf("a StatefulSet claiming 100Ti: %v\n%s", err, stderr)
	}
	if _, stderr, err := apply(t, claim("small", "1Gi", "")); err != nil {
		t.Fatalf("a 1Gi claim: %v\n%s", err, stderr)
	}

	// A resize is an UPDATE of a bound claim of a class that allows
	// expansion. No volume controller runs here: the claim's status says
	// it is bound, as the binder would write it.
	sc := `{"apiVersion":"storage.k8s.io/v1","kind":"StorageClass","metadata":{"name":"subres-expandable"},"provisioner":"example.com/none","allowVolumeExpansion":true}`
	if _, stderr, err := apply(t, sc); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	t.Cleanup(func() {
		_, _, _ = env.cluster.Kubectl(context.Background(), "delete", "--wait=false", "storageclass/subres-expandable")
	})
	if _, stderr, err := apply(t, claim("grow", "1Gi", `,"storageClassName":"subres-expandable"`)); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if _, stderr, err := env.cluster.Kubectl(ctx, "patch", "-n", ns, "pvc/grow", "--subresource=status", "--type=merge",
		"-p", `{"status":{"phase":"Bound","capacity":{"storage":"1Gi"}}}`); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	patch := func(size string) (string, error) {
		_, stderr, err := env.cluster.Kubectl(ctx, "patch", "-n", ns, "pvc/grow", "--type=merge", "-p", fmt.Sprintf(`{"spec":{"resources":{"requests":{"storage":%q}}}}`, size))
		return stderr, err
	}
	// 1Gi → 100Gi adds $3.96; the two 1Gi claims admitted are counted.
	want = "[budget/subres-storage/cap] this adds $3.96/month; namespace subres-storage is forecast at $0.08 of its $1.00 monthly budget"
	if stderr, err := patch("100Gi"); err == nil || !strings.Contains(stderr, want) {
		t.Fatalf("a resize past the Budget: %v\n%s\nwant %s", err, stderr, want)
	}
	if stderr, err := patch("2Gi"); err != nil {
		t.Fatalf("a small resize: %v\n%s", err, stderr)
	}
}

// TestOtherPathsToResources: the other ways a change to resources reaches
// etcd are judged the same — a server-side apply of spec.replicas, a Job's
// parallelism raised, a pod claiming a controller owner it does not have, a
// DaemonSet charged for every node it would run on, and requests a
// LimitRange defaults before the webhooks run.
func TestOtherPathsToResources(t *testing.T) {
	ctx := context.Background()
	ns := "subres-paths"
	teamNamespace(t, ns)
	seedBudget(t, ns, "cap", "100", "deny", "0")

	// Server-side apply: one replica, then four.
	if _, stderr, err := apply(t, trainingDeployment(ns, "api", 1), "--server-side"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	_, stderr, err := apply(t, trainingDeployment(ns, "api", 4), "--server-side")
	want := "[budget/subres-paths/cap] this adds $87.79/month; namespace subres-paths is forecast at $29.26 of its $100.00 monthly budget"
	if err == nil || !strings.Contains(stderr, want) {
		t.Errorf("a server-side apply of replicas past the Budget: %v\n%s\nwant %s", err, stderr, want)
	}

	// A Job's parallelism: one pod at a time, then five.
	job := fmt.Sprintf(`{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"batch","namespace":%q},
	 "spec":{"parallelism":1,"completions":10,"template":{"spec":{"restartPolicy":"Never",
	  "containers":[{"name":"c","image":"ghcr.io/corp/train:1.0","resources":{"requests":{"cpu":"1","memory":"2Gi"},"limits":{"memory":"2Gi"}}}]}}}}`, ns)
	if _, stderr, err := apply(t, job); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	_, stderr, err = env.cluster.Kubectl(ctx, "patch", "-n", ns, "job/batch", "--type=merge", "-p", `{"spec":{"parallelism":5}}`)
	want = "[budget/subres-paths/cap] this adds $117.05/month; namespace subres-paths is forecast at $58.52 of its $100.00 monthly budget"
	if err == nil || !strings.Contains(stderr, want) {
		t.Errorf("a Job's parallelism past the Budget: %v\n%s\nwant %s", err, stderr, want)
	}

	// A pod that claims a ReplicaSet as its controller, made by a user
	// (not by the ReplicaSet controller), is priced as the pod it is.
	rb := fmt.Sprintf(`{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"alice-edit","namespace":%q},
	 "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"edit"},"subjects":[{"kind":"User","name":"alice"}]}`, ns)
	if _, stderr, err := apply(t, rb); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	forged := fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"forged","namespace":%q,
	 "ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"api-1","uid":"00000000-0000-0000-0000-000000000001","controller":true}]},
	 "spec":{"containers":[{"name":"c","image":"ghcr.io/corp/train:1.0","resources":{"requests":{"cpu":"2","memory":"2Gi"},"limits":{"cpu":"2","memory":"2Gi"}}}]}}`, ns)
	_, stderr, err = apply(t, forged, "--as=alice")
	want = "[budget/subres-paths/cap] this adds $52.34/month; namespace subres-paths is forecast at $58.52 of its $100.00 monthly budget"
	if err == nil || !strings.Contains(stderr, want) {
		t.Errorf("a pod with a forged controller owner past the Budget: %v\n%s\nwant %s", err, stderr, want)
	}

	// A DaemonSet runs a pod on each node its nodeSelector picks: three
	// nodes of the pool, one of another.
	for i, pool := range []string{"subres", "subres", "subres", "other"} {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("subres-node-%d", i), Labels: map[string]string{"pool": pool}}}
		if err := env.client.Create(ctx, node); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.client.Delete(context.Background(), node) })
	}
	ds := fmt.Sprintf(`{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"agent","namespace":%q},
	 "spec":{"selector":{"matchLabels":{"app":"agent"}},"template":{"metadata":{"labels":{"app":"agent"}},"spec":{"nodeSelector":{"pool":"subres"},
	  "containers":[{"name":"c","image":"ghcr.io/corp/agent:1.0","resources":{"requests":{"cpu":"1","memory":"2Gi"},"limits":{"memory":"2Gi"}}}]}}}}`, ns)
	want = "[budget/subres-paths/cap] this adds $87.79/month"
	eventually(t, 30*time.Second, func() error { // the server's node cache
		_, stderr, err := apply(t, ds, "--dry-run=server")
		if err == nil || !strings.Contains(stderr, want) {
			return fmt.Errorf("a DaemonSet on three nodes: %w\n%s\nwant %s", err, stderr, want)
		}
		return nil
	})

	// A LimitRange's defaults are applied before the webhooks: they are
	// judged like requests written in the pod.
	limits := "subres-limits"
	teamNamespace(t, limits)
	lr := fmt.Sprintf(`{"apiVersion":"v1","kind":"LimitRange","metadata":{"name":"big","namespace":%q},
	 "spec":{"limits":[{"type":"Container","default":{"cpu":"12","memory":"1Gi"},"defaultRequest":{"cpu":"12","memory":"1Gi"}}]}}`, limits)
	if _, stderr, err := apply(t, lr); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	pod := fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"defaulted","namespace":%q},"spec":{"containers":[{"name":"c","image":"ghcr.io/corp/app:1.0"}]}}`, limits)
	if _, stderr, err := apply(t, pod); err == nil || !strings.Contains(stderr, "[resources-caps] spec.containers[0].resources.requests.cpu") {
		t.Errorf("a pod the LimitRange gives 12 CPU: %v\n%s", err, stderr)
	}
}
