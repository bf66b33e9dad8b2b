package fault

import (
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/finops"
	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
)

// TestLeaderKilledMidBudgetScan: the leader tallies a Budget that crosses
// 50, 80 and 100 % within seconds; it is killed while the receiver holds
// its first alert unanswered. The standby takes over within the lease;
// every threshold is delivered, none twice except the one whose delivery
// the kill cut (sent again with the same CloudEvents id), and the spend in
// the Budget's status is what one replica computes for the time it
// existed.
func TestLeaderKilledMidBudgetScan(t *testing.T) {
	ctx := context.Background()
	if err := ensureReplicas(ctx, 2); err != nil {
		t.Fatal(err)
	}
	lead, err := leader(ctx, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}

	// Three running pods of 2 CPUs each: 6 cents a second.
	for i := range 3 {
		p := compliantPod("spend", fmt.Sprintf("worker-%d", i))
		p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("1Gi")}
		p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}
		created, err := env.kube.CoreV1().Pods("spend").Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		created.Status.Phase = corev1.PodRunning
		if _, err := env.kube.CoreV1().Pods("spend").UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	rate := hourlyRate(ctx, t, "spend")

	// The receiver holds the first alert until the leader is dead.
	held := make(chan string, 1)
	release := make(chan struct{})
	var once sync.Once
	env.receiver.setHold(func(id string) {
		first := false
		once.Do(func() { first = true })
		if first {
			held <- id
			<-release
		}
	})
	defer env.receiver.setHold(nil)
	before := len(env.receiver.received())

	b := &v1alpha1.Budget{
		ObjectMeta: metav1.ObjectMeta{Name: "monthly", Namespace: "spend"},
		Spec:       v1alpha1.BudgetSpec{Amount: "1.20", Currency: "USD", Period: v1alpha1.PeriodMonthly, Thresholds: []int32{50, 80, 100}, Action: v1alpha1.BudgetActionNone},
	}
	if err := env.client.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	var heldID string
	select {
	case heldID = <-held:
	case <-time.After(60 * time.Second):
		t.Fatalf("no alert within 60s\n%s", tail(lead.log.String(), 4000))
	}
	killedAt := time.Now()
	lead.kill()
	close(release)

	next, err := leader(ctx, 3*leaseDuration)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("leader killed while delivering alert %s; %s leads %.1fs later (lease %s)", heldID, next.name, time.Since(killedAt).Seconds(), leaseDuration)

	// The new leader delivers what is due.
	var st v1alpha1.BudgetStatus
	deadline := time.Now().Add(60 * time.Second)
	for {
		var cur v1alpha1.Budget
		if err := env.client.Get(ctx, client.ObjectKeyFromObject(b), &cur); err != nil {
			t.Fatal(err)
		}
		st = cur.Status
		b = &cur
		if delivered(st) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("thresholds delivered after takeover: %+v\n%s", st.Alerted, tail(next.log.String(), 4000))
		}
		time.Sleep(200 * time.Millisecond)
	}
	firstAfter := time.Now()
	// One more scan, to see that nothing is sent again.
	time.Sleep(3 * time.Second)

	ids := env.receiver.received()[before:]
	counts := map[string]int{}
	for _, id := range ids {
		counts[id]++
	}
	t.Logf("alerts received: %v (all three delivered %.1fs after the kill)", counts, firstAfter.Sub(killedAt).Seconds())
	for _, th := range []int32{50, 80, 100} {
		id := ""
		for k := range counts {
			if strings.HasSuffix(k, "/monthly/"+strconv.Itoa(int(th))) {
				id = k
			}
		}
		switch {
		case id == "":
			t.Errorf("no alert for %d%%", th)
		case id == heldID && counts[id] != 2:
			t.Errorf("the alert cut by the kill (%s) arrived %d times, want once more from the new leader", id, counts[id])
		case id != heldID && counts[id] != 1:
			t.Errorf("alert %s arrived %d times", id, counts[id])
		}
	}

	// Spend: what one replica computes for the Budget's life so far, at
	// the same rate, up to the last scan recorded.
	spend, err := strconv.ParseFloat(st.Spend, 64)
	if err != nil {
		t.Fatalf("status.spend %q: %v", st.Spend, err)
	}
	lived := st.LastScanTime.Sub(b.CreationTimestamp.Time)
	want := rate * lived.Hours()
	t.Logf("spend after takeover %s, one replica's count for %s at %.2f/h: %.4f", st.Spend, lived, rate, want)
	if math.Abs(spend-want) > 0.006 {
		t.Errorf("status.spend = %s, want %.4f (rate %.2f/h for %s): spend was counted twice or lost", st.Spend, want, rate, lived)
	}
	if err := ensureReplicas(ctx, 2); err != nil {
		t.Fatal(err)
	}
}

func delivered(st v1alpha1.BudgetStatus) int {
	n := 0
	for _, a := range st.Alerted {
		if a.Delivered {
			n++
		}
	}
	return n
}

// hourlyRate is what the cost model, with the replicas' prices, makes of
// the namespace's pods.
func hourlyRate(ctx context.Context, t *testing.T, ns string) float64 {
	t.Helper()
	data, err := os.ReadFile(env.prices)
	if err != nil {
		t.Fatal(err)
	}
	prices, err := finops.ParsePrices(data)
	if err != nil {
		t.Fatal(err)
	}
	model, err := finops.NewModel(finops.ModelOptions{Prices: prices})
	if err != nil {
		t.Fatal(err)
	}
	pods, err := env.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := env.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return float64(model.Tally(finops.Cluster{Pods: pods.Items, Namespaces: []corev1.Namespace{*n}}).Hourly.Total)
}

// TestLeaderKilledMidAudit: ten namespaces of pods with mutable tags (a
// warning, so admitted) are audited by the leader every two seconds; it
// is killed in the middle of that cycle, and pods are added while no one
// leads. After the standby takes over, every namespace's Report lists
// every one of its pods: none was lost.
func TestLeaderKilledMidAudit(t *testing.T) {
	ctx := context.Background()
	if err := ensureReplicas(ctx, 2); err != nil {
		t.Fatal(err)
	}
	lead, err := leader(ctx, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	addPods := func(ns string, n int) {
		retrying(t, "creating namespace "+ns, func() error {
			_, err := env.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: ownership}}, metav1.CreateOptions{})
			return err
		})
		for i := range n {
			p := compliantPod(ns, fmt.Sprintf("latest-%d", i))
			p.Spec.Containers[0].Image = "registry.example/app:latest"
			createRetrying(ctx, t, p)
			want[ns] = append(want[ns], p.Name)
		}
	}
	for i := range 10 {
		addPods(fmt.Sprintf("audited-%d", i), 5)
	}
	// The leader has reported them all.
	waitReports(ctx, t, want, lead)
	// Kill the leader as its next scan writes the Reports: once one of
	// them changes, before all have.
	before := reportVersions(ctx, t)
	var changed int
	deadline := time.Now().Add(30 * time.Second)
	for changed == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the leader wrote no Report in 30s")
		}
		time.Sleep(5 * time.Millisecond)
		now := reportVersions(ctx, t)
		for ns, rv := range now {
			if before[ns] != rv {
				changed++
			}
		}
	}
	killedAt := time.Now()
	lead.kill()
	after := reportVersions(ctx, t)
	written := 0
	for ns, rv := range after {
		if before[ns] != rv {
			written++
		}
	}
	t.Logf("leader killed mid-audit: %d of %d Reports rewritten by its last scan when it died", written, len(after))
	addPods("audited-late", 5)

	next, err := leader(ctx, 3*leaseDuration)
	if err != nil {
		t.Fatal(err)
	}
	took := waitReports(ctx, t, want, next)
	t.Logf("%s leads %.1fs after the kill; every Report complete %.1fs after it", next.name, took.lead.Sub(killedAt).Seconds(), took.complete.Sub(killedAt).Seconds())
	if err := ensureReplicas(ctx, 2); err != nil {
		t.Fatal(err)
	}
}

// createRetrying creates a pod as a user or a controller would: again
// after a failure that is not a denial (a webhook call cut by a replica's
// death).
func createRetrying(ctx context.Context, t *testing.T, p *corev1.Pod) {
	t.Helper()
	retrying(t, "creating pod "+p.Namespace+"/"+p.Name, func() error {
		_, err := env.kube.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{})
		return err
	})
}

// retrying runs f until it succeeds (or finds its object already there),
// up to ten times a second apart, logging each failure.
func retrying(t *testing.T, what string, f func() error) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil || apierrors.IsAlreadyExists(err) {
			return
		}
		t.Logf("%s (attempt %d): %s", what, attempt, shorten(err.Error()))
		if attempt == 10 {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
	}
}

// reportVersions returns the resourceVersion of each namespace's Report.
func reportVersions(ctx context.Context, t *testing.T) map[string]string {
	t.Helper()
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(schema.GroupVersionKind{Group: "openreports.io", Version: "v1alpha1", Kind: "ReportList"})
	if err := env.client.List(ctx, list); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range list.Items {
		out[r.GetNamespace()] = r.GetResourceVersion()
	}
	return out
}

type reportTimes struct{ lead, complete time.Time }

// waitReports waits until each namespace's Report lists a result for each
// of its pods.
func waitReports(ctx context.Context, t *testing.T, want map[string][]string, r *replica) reportTimes {
	t.Helper()
	times := reportTimes{lead: time.Now()}
	deadline := time.Now().Add(90 * time.Second)
	for {
		missing := missingResults(ctx, want)
		if len(missing) == 0 {
			times.complete = time.Now()
			return times
		}
		if time.Now().After(deadline) {
			t.Fatalf("Reports incomplete after 90s: %v\n%s", missing, tail(r.log.String(), 3000))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// missingResults returns, per namespace, the pods its Report does not
// name.
func missingResults(ctx context.Context, want map[string][]string) map[string][]string {
	missing := map[string][]string{}
	for ns, pods := range want {
		r := &unstructured.Unstructured{}
		r.SetGroupVersionKind(schema.GroupVersionKind{Group: "openreports.io", Version: "v1alpha1", Kind: "Report"})
		if err := env.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "tollgate"}, r); err != nil {
			missing[ns] = pods
			continue
		}
		results, _, _ := unstructured.NestedSlice(r.Object, "results")
		text := fmt.Sprint(results)
		for _, p := range pods {
			if !strings.Contains(text, "name:"+p+" ") && !strings.Contains(text, "name:"+p+"]") {
				missing[ns] = append(missing[ns], p)
			}
		}
	}
	return missing
}
