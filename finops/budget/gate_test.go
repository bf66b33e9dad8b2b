package budget_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/tollgate-dev/tollgate/finops"
	"github.com/tollgate-dev/tollgate/finops/budget"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/policies/review"
	"github.com/tollgate-dev/tollgate/webhook"
)

var _ review.Committer = (*budget.Gate)(nil)

// gateWith is a gate over one namespace Budget of shop.
func gateWith(t *testing.T, amount, forecast string, lastScan *metav1.Time, now func() time.Time) *budget.Gate {
	t.Helper()
	b := &v1alpha1.Budget{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cap"},
		Spec:   v1alpha1.BudgetSpec{Amount: amount, Action: v1alpha1.BudgetActionDeny},
		Status: v1alpha1.BudgetStatus{Forecast: forecast, LastScanTime: lastScan}}
	est, err := finops.NewEstimator(finops.EstimateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return &budget.Gate{Budgets: fake.NewClientBuilder().WithScheme(webhook.Scheme()).WithObjects(b).Build(), Estimator: est, Now: now}
}

// podInput is a CREATE (or, with old, an UPDATE) of a pod asking cpu
// cores with 2Gi: 1 core is $29.26 a month.
func podInput(op, name, cpu, old string, owned bool) *policies.Input {
	obj := func(cpu string) map[string]any {
		owners := ""
		if owned {
			owners = `,"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-1","uid":"u","controller":true}]`
		}
		m, err := policies.DecodeJSON(fmt.Appendf(nil, `{"apiVersion":"v1","kind":"Pod","metadata":{"name":%q,"namespace":"shop"%s},
		 "spec":{"containers":[{"name":"c","image":"x","resources":{"requests":{"cpu":%q,"memory":"2Gi"}}}]}}`, name, owners, cpu))
		if err != nil {
			panic(err)
		}
		return m
	}
	in := &policies.Input{Kind: policies.GroupVersionKind{Version: "v1", Kind: "Pod"}, Operation: op, Object: obj(cpu), Source: policies.SourceAdmission}
	if old != "" {
		in.OldObject = obj(old)
	}
	return in
}

// review runs the gate as the review core does: evaluate, then settle
// with the verdict (denied by any enforced finding, or by another policy).
func reviewed(g *budget.Gate, in *policies.Input, otherDenies bool) (bool, string) {
	d := g.Evaluate(context.Background(), in)
	allowed := !otherDenies
	var msgs []string
	for _, f := range d.Findings {
		if f.Action == policies.ActionEnforce {
			allowed = false
		}
		msgs = append(msgs, f.Message)
	}
	g.Settle(context.Background(), in, allowed)
	return allowed, strings.Join(msgs, "\n")
}

// What the gate admits counts until a scan: concurrent creates each within
// the Budget alone are admitted only as far as it goes.
func TestGateCountsWhatItAdmitted(t *testing.T) {
	g := gateWith(t, "100", "0", nil, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, _ := reviewed(g, podInput("CREATE", fmt.Sprintf("p%d", i), "1", "", false), false); ok {
				mu.Lock()
				admitted++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if admitted != 3 {
		t.Fatalf("%d of 8 admitted under $100 at $29.26 each, want 3", admitted)
	}
}

func TestGateAccountIsNeverDoubled(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(g *budget.Gate) (bool, string)
		want string // the last review's message; "" when admitted
	}{
		{"a dry run counts nothing", func(g *budget.Gate) (bool, string) {
			for range 5 {
				in := podInput("CREATE", "p", "1", "", false)
				in.DryRun = true
				reviewed(g, in, false)
			}
			return reviewed(g, podInput("CREATE", "q", "3", "", false), false)
		}, ""},
		{"another policy's denial undoes the count", func(g *budget.Gate) (bool, string) {
			for range 5 {
				reviewed(g, podInput("CREATE", "p", "3", "", false), true)
			}
			return reviewed(g, podInput("CREATE", "q", "3", "", false), false)
		}, ""},
		{"a retried create replaces its first try", func(g *budget.Gate) (bool, string) {
			reviewed(g, podInput("CREATE", "p", "2", "", false), false)
			reviewed(g, podInput("CREATE", "p", "2", "", false), false) // AlreadyExists, retried
			return reviewed(g, podInput("CREATE", "q", "1", "", false), false)
		}, ""},
		{"updates add up from the first old object", func(g *budget.Gate) (bool, string) {
			resize := func(cpu, old string) *policies.Input {
				in := podInput("UPDATE", "p", cpu, old, true)
				in.SubResource = "resize"
				return in
			}
			reviewed(g, resize("2", "1"), false)
			// A conflict: the same update again from the same old object.
			reviewed(g, resize("2", "1"), false)
			// 1 → 2 cores is counted once ($23.08), then 2 → 6 is over.
			return reviewed(g, resize("6", "2"), false)
		}, "this adds $92.30/month; namespace shop is forecast at $23.08 of its $100.00 monthly budget (shop/cap), $115.38 with this change"},
		{"an owned pod's resize is priced as the pod", func(g *budget.Gate) (bool, string) {
			in := podInput("UPDATE", "p", "6", "1", true)
			in.SubResource = "resize"
			return reviewed(g, in, false)
		}, "this adds $115.38/month; namespace shop is forecast at $0.00 of its $100.00 monthly budget (shop/cap), $115.38 with this change"},
		{"other subresources are not priced", func(g *budget.Gate) (bool, string) {
			in := podInput("UPDATE", "p", "60", "1", false)
			in.SubResource = "status"
			return reviewed(g, in, false)
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := gateWith(t, "100", "0", nil, nil)
			_, msg := tc.run(g)
			if tc.want == "" && msg != "" || tc.want != "" && msg != tc.want {
				t.Errorf("message %q, want %q", msg, tc.want)
			}
		})
	}
}

// A scan newer than an admission has counted it; an older one has not.
func TestGateForgetsWhatAScanCounted(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	clock := t0
	now := func() time.Time { return clock }
	g := gateWith(t, "100", "60", &metav1.Time{Time: t0.Add(-time.Minute)}, now)
	if ok, msg := reviewed(g, podInput("CREATE", "p", "1", "", false), false); !ok {
		t.Fatal(msg)
	}
	// $60 + $29.26 admitted + $29.26: over.
	if ok, _ := reviewed(g, podInput("CREATE", "q", "1", "", false), false); ok {
		t.Fatal("the admitted pod was not counted")
	}
	// A scan after the admission has counted it: it is not added again.
	g2 := gateWith(t, "100", "70", &metav1.Time{Time: t0.Add(time.Second)}, now)
	if ok, msg := reviewed(g2, podInput("CREATE", "p", "1", "", false), false); !ok { // at t0, before the scan: in its $70
		t.Fatal(msg)
	}
	// $13.11 more is $83.11, within $100 ($112.37 if p were added again).
	if ok, msg := reviewed(g2, podInput("CREATE", "r", "300m", "", false), false); !ok {
		t.Errorf("a change within the scanned forecast: %s", msg)
	}
}

// The forecast counts what is admitted and not running, once: pending
// pods, unbound claims, and replicas not yet created; not pods that
// finished, nor replicas whose pods exist.
func TestCommittedCountsEachPodOnce(t *testing.T) {
	m, err := finops.NewModel(finops.ModelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	core := func(n string) corev1.ResourceRequirements {
		return corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(n)}}
	}
	tmpl := corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Resources: core("1")}}}}
	i32 := func(n int32) *int32 { return &n }
	ctrl := func(kind, name string, uid types.UID) []metav1.OwnerReference {
		return []metav1.OwnerReference{{Kind: kind, Name: name, UID: uid, Controller: new(true)}}
	}
	pod := func(name string, phase corev1.PodPhase, owners []metav1.OwnerReference) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, OwnerReferences: owners},
			Spec: tmpl.Spec, Status: corev1.PodStatus{Phase: phase}}
	}
	c := finops.Cluster{
		Namespaces: []corev1.Namespace{{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}},
		Pods: []corev1.Pod{
			pod("bare-running", corev1.PodRunning, nil),                     // the tally's, not committed
			pod("bare-pending", corev1.PodPending, nil),                     // 1
			pod("done", corev1.PodSucceeded, nil),                           // nothing
			pod("rs-a", corev1.PodRunning, ctrl("ReplicaSet", "rs", "rs1")), // rs wants 3: 1 running,
			pod("rs-b", corev1.PodPending, ctrl("ReplicaSet", "rs", "rs1")), // 1 pending (1),
		}, // and 1 not created (1)
		PersistentVolumeClaims: []corev1.PersistentVolumeClaim{{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "data"},
			Spec:       corev1.PersistentVolumeClaimSpec{Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("100Gi")}}},
			Status:     corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending},
		}},
		Jobs: []batchv1.Job{{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "batch", UID: "job1"},
			Spec: batchv1.JobSpec{Parallelism: i32(4), Completions: i32(10), Template: tmpl}, Status: batchv1.JobStatus{Succeeded: 8}}}, // 2 left: 2
	}
	w := budget.Controllers{
		ReplicaSets: []appsv1.ReplicaSet{
			{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "rs", UID: "rs1"}, Spec: appsv1.ReplicaSetSpec{Replicas: i32(3), Template: tmpl}},
			// A Deployment's: 2 of its 5 replicas; no pods yet (2).
			{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1", UID: "web1", OwnerReferences: ctrl("Deployment", "web", "web")},
				Spec: appsv1.ReplicaSetSpec{Replicas: i32(2), Template: tmpl}},
		},
		// 5 wanted, 2 in its ReplicaSet: 3 more.
		Deployments: []appsv1.Deployment{{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: "web"}, Spec: appsv1.DeploymentSpec{Replicas: i32(5), Template: tmpl}}},
	}
	committed := budget.Commit(m, c, w)
	b := &v1alpha1.Budget{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cap"}}
	got, err := committed.Hourly(m, b)
	if err != nil {
		t.Fatal(err)
	}
	// 1 + 1 + 1 + 2 + 2 + 3 = 10 cores, and 100Gi.
	want := 10*finops.DefaultPrices().Sheet.CPU + 100*finops.DefaultPrices().Sheet.Storage
	if diff := got - want; diff > 1e-9 || diff < -1e-9 {
		t.Errorf("committed %.6f/h, want %.6f/h", got, want)
	}
	other := &v1alpha1.Budget{ObjectMeta: metav1.ObjectMeta{Namespace: "search", Name: "cap"}}
	if got, _ := committed.Hourly(m, other); got != 0 {
		t.Errorf("another namespace's Budget: %.6f/h", got)
	}
}

// nodes counts a fixed set of node labels.
type nodes []map[string]string

func (n nodes) CountNodes(_ context.Context, sel map[string]string) (int, error) {
	c := 0
	for _, l := range n {
		match := true
		for k, v := range sel {
			match = match && l[k] == v
		}
		if match {
			c++
		}
	}
	return c, nil
}

// A DaemonSet is charged for the nodes its nodeSelector picks; a claim
// the StatefulSet controller makes is its StatefulSet's, already counted.
func TestGateChargesDaemonSetsPerNodeAndStatefulSetClaimsOnce(t *testing.T) {
	ds := func(selector string) *policies.Input {
		m, err := policies.DecodeJSON(fmt.Appendf(nil, `{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"agent","namespace":"shop"},
		 "spec":{"template":{"spec":{"nodeSelector":%s,"containers":[{"name":"c","image":"x","resources":{"requests":{"cpu":"1","memory":"2Gi"}}}]}}}}`, selector))
		if err != nil {
			t.Fatal(err)
		}
		return &policies.Input{Kind: policies.GroupVersionKind{Group: "apps", Version: "v1", Kind: "DaemonSet"}, Operation: "CREATE", Object: m, Source: policies.SourceAdmission}
	}
	g := gateWith(t, "100", "0", nil, nil)
	g.Nodes = nodes{{"pool": "gpu"}, {"pool": "gpu"}, {"pool": "web"}, {"pool": "gpu"}, {"pool": "web"}}
	// Five nodes: $146.31.
	if ok, msg := reviewed(g, ds(`{}`), false); ok || !strings.HasPrefix(msg, "this adds $146.31/month") {
		t.Errorf("a DaemonSet on 5 nodes: allowed %v, %s", ok, msg)
	}
	// The two web nodes: $58.52.
	if ok, msg := reviewed(g, ds(`{"pool":"web"}`), false); !ok {
		t.Errorf("a DaemonSet on 2 nodes: %s", msg)
	}

	claim := func(user string) *policies.Input {
		m, err := policies.DecodeJSON([]byte(`{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"data-db-0","namespace":"shop"},
		 "spec":{"resources":{"requests":{"storage":"100Ti"}}}}`))
		if err != nil {
			t.Fatal(err)
		}
		return &policies.Input{Kind: policies.GroupVersionKind{Version: "v1", Kind: "PersistentVolumeClaim"}, Operation: "CREATE", Object: m,
			Source: policies.SourceAdmission, UserInfo: &policies.UserInfo{Username: user}}
	}
	if ok, _ := reviewed(g, claim("system:serviceaccount:kube-system:statefulset-controller"), false); !ok {
		t.Error("the StatefulSet controller's claim was priced again")
	}
	if ok, msg := reviewed(g, claim("alice"), false); ok || !strings.HasPrefix(msg, "this adds $4,096.00/month") {
		t.Errorf("alice's 100Ti claim: allowed %v, %s", ok, msg)
	}
}

// A pod that claims a controller owner is its owner's (priced at nothing)
// only when a built-in controller made it; anyone else's is priced.
func TestGatePricesForgedOwners(t *testing.T) {
	for _, tc := range []struct {
		name   string
		user   policies.UserInfo
		priced bool
	}{
		{"a user", policies.UserInfo{Username: "alice", Groups: []string{"system:authenticated"}}, true},
		{"another namespace's service account", policies.UserInfo{Username: "system:serviceaccount:shop:deployer"}, true},
		{"the controller manager", policies.UserInfo{Username: "system:kube-controller-manager"}, false},
		{"the ReplicaSet controller", policies.UserInfo{Username: "system:serviceaccount:kube-system:replicaset-controller"}, false},
		{"a cluster administrator", policies.UserInfo{Username: "admin", Groups: []string{"system:masters"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := gateWith(t, "100", "90", nil, nil)
			in := podInput("CREATE", "p", "1", "", true)
			in.UserInfo = &tc.user
			ok, msg := reviewed(g, in, false)
			if ok == tc.priced {
				t.Errorf("admitted %v (%s); priced %v", ok, msg, tc.priced)
			}
		})
	}
}

// Before its first scan a Budget counts what was admitted since its
// creation, as its ledger counts spend.
func TestGateCountsFromABudgetsCreation(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	clock := t0
	g := gateWith(t, "100", "", nil, func() time.Time { return clock })
	if ok, msg := reviewed(g, podInput("CREATE", "before", "2", "", false), false); !ok { // $52.34, admitted at t0
		t.Fatal(msg)
	}
	var b v1alpha1.Budget
	if err := g.Budgets.Get(context.Background(), client.ObjectKey{Namespace: "shop", Name: "cap"}, &b); err != nil {
		t.Fatal(err)
	}
	b.CreationTimestamp = metav1.Time{Time: t0.Add(time.Second)}
	g.Budgets = fake.NewClientBuilder().WithScheme(webhook.Scheme()).WithObjects(&b).Build()
	clock = t0.Add(2 * time.Second)
	// $52.34 more is within $100 when "before" is not counted.
	if ok, msg := reviewed(g, podInput("CREATE", "after", "2", "", false), false); !ok {
		t.Errorf("what was admitted before the Budget existed counted: %s", msg)
	}
	// And what was admitted after it is.
	if ok, _ := reviewed(g, podInput("CREATE", "third", "2", "", false), false); ok {
		t.Error("what was admitted after the Budget's creation was not counted")
	}
}
