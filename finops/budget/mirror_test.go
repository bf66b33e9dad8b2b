package budget_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/tollgate-dev/tollgate/finops/budget"
	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/webhook"
)

func fleetBudgetNamed(ns, name string, clusters ...string) *v1alpha1.Budget {
	return &v1alpha1.Budget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"team": "ml"}},
		Spec: v1alpha1.BudgetSpec{Amount: "500", Action: v1alpha1.BudgetActionDeny, Scope: v1alpha1.BudgetScope{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "ml"}}, Clusters: clusters}}}
}

// The mirror copies the central Budgets across clusters that span this
// cluster with their verdicts, puts back an edited mirror, deletes one whose
// original is gone, leaves this cluster's own Budgets alone, and changes
// nothing when the central cluster cannot be read.
func TestMirrorKeepsTheCentralVerdict(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	evaluated := metav1.NewTime(now.Add(-time.Minute))

	ml := fleetBudgetNamed("finops", "ml", "east", "west")
	ml.Status = v1alpha1.BudgetStatus{Forecast: "420.00", Spend: "100.000000", LastScanTime: &evaluated, SpendAsOf: &evaluated,
		Clusters: []v1alpha1.BudgetClusterSpend{{Name: "east", HourlyRate: "0.2"}, {Name: "west", HourlyRate: "0.3"}}}
	everywhere := fleetBudgetNamed("finops", "all", "*")
	elsewhere := fleetBudgetNamed("finops", "gpu", "east") // does not span west
	local := fleetBudgetNamed("finops", "taken", "west")   // its name is held here
	centralOnly := &v1alpha1.Budget{ObjectMeta: metav1.ObjectMeta{Namespace: "finops", Name: "east-only"}, Spec: v1alpha1.BudgetSpec{Amount: "9"}}
	scheme := webhook.Scheme()
	central := fake.NewClientBuilder().WithScheme(scheme).WithStatusSubresource(&v1alpha1.Budget{}).
		WithObjects(ml, everywhere, elsewhere, fleetBudgetNamed("finops", "taken", "west"), centralOnly).Build()

	// West holds a Budget of its own named taken, and a mirror whose
	// original is gone.
	gone := fleetBudgetNamed("finops", "gone", "west")
	gone.Labels[v1alpha1.LabelMirror] = "east"
	var unreachable bool
	westBase := fake.NewClientBuilder().WithScheme(scheme).WithStatusSubresource(&v1alpha1.Budget{}).WithObjects(local, gone).Build()
	centralReader := interceptor.NewClient(central, interceptor.Funcs{
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			if unreachable {
				return errors.New("dial tcp 10.0.0.1:6443: connect: connection refused")
			}
			return c.List(ctx, list, opts...)
		},
	})
	reg := prometheus.NewRegistry()
	m, err := budget.NewMirror(budget.MirrorOptions{Central: centralReader, Local: westBase, Cluster: "west", CentralName: "east",
		Registerer: reg, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := m.Sync(ctx)
	if err == nil || !strings.Contains(err.Error(), "budget finops/taken: a Budget of this cluster holds the name, and it is not a mirror") {
		t.Errorf("sync error %v", err)
	}
	if got := strings.Join(rep.Mirrored, ","); got != "finops/all,finops/ml" {
		t.Errorf("mirrored %s", got)
	}
	if got := strings.Join(rep.Deleted, ","); got != "finops/gone" {
		t.Errorf("deleted %s", got)
	}
	var mirror v1alpha1.Budget
	if err := westBase.Get(ctx, client.ObjectKey{Namespace: "finops", Name: "ml"}, &mirror); err != nil {
		t.Fatal(err)
	}
	if mirror.Labels[v1alpha1.LabelMirror] != "east" || mirror.Labels["team"] != "ml" || mirror.Spec.Amount != "500" ||
		mirror.Status.Forecast != "420.00" || len(mirror.Status.Clusters) != 2 || mirror.Status.Mirror == nil ||
		mirror.Status.Mirror.Budget != "finops/ml" || !mirror.Status.Mirror.Time.Time.Equal(now) {
		t.Errorf("mirror %+v %+v", mirror.Labels, mirror.Status)
	}
	for _, name := range []string{"gpu", "east-only", "gone"} {
		if err := westBase.Get(ctx, client.ObjectKey{Namespace: "finops", Name: name}, &v1alpha1.Budget{}); !apierrors.IsNotFound(err) {
			t.Errorf("%s in west: %v", name, err)
		}
	}
	var own v1alpha1.Budget
	if err := westBase.Get(ctx, client.ObjectKey{Namespace: "finops", Name: "taken"}, &own); err != nil || own.Labels[v1alpha1.LabelMirror] != "" {
		t.Errorf("west's own Budget touched: %v %v", err, own.Labels)
	}

	// An edit of the mirror is put back.
	mirror.Spec.Amount, mirror.Spec.Action = "999999", v1alpha1.BudgetActionNone
	if err := westBase.Update(ctx, &mirror); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	if _, err := m.Sync(ctx); err == nil {
		t.Error("the name held by west's own Budget is not reported again")
	}
	if err := westBase.Get(ctx, client.ObjectKeyFromObject(&mirror), &mirror); err != nil || mirror.Spec.Amount != "500" || mirror.Spec.Action != v1alpha1.BudgetActionDeny {
		t.Errorf("edited mirror not put back: %v %+v", err, mirror.Spec)
	}

	// The central cluster out of reach: nothing changes here, and it is
	// counted.
	unreachable = true
	before := mirror.Status.Mirror.Time
	now = now.Add(time.Minute)
	if _, err := m.Sync(ctx); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("unreachable: %v", err)
	}
	if err := westBase.Get(ctx, client.ObjectKeyFromObject(&mirror), &mirror); err != nil || !mirror.Status.Mirror.Time.Equal(&before) || mirror.Status.Forecast != "420.00" {
		t.Errorf("the mirror changed while the central cluster was out of reach: %v %+v", err, mirror.Status)
	}
	want := `
# HELP tollgate_fleet_mirror_failures_total Failures mirroring the central cluster's Budgets across clusters, by reason: central-unreachable, namespace-missing, name-taken, local.
# TYPE tollgate_fleet_mirror_failures_total counter
tollgate_fleet_mirror_failures_total{reason="central-unreachable"} 1
tollgate_fleet_mirror_failures_total{reason="name-taken"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "tollgate_fleet_mirror_failures_total"); err != nil {
		t.Error(err)
	}

	// A namespace this cluster lacks: the reason says so.
	unreachable = false
	noNS := interceptor.NewClient(westBase, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			return apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, obj.GetNamespace())
		},
	})
	if err := westBase.Delete(ctx, &mirror); err != nil {
		t.Fatal(err)
	}
	m2, _ := budget.NewMirror(budget.MirrorOptions{Central: centralReader, Local: noNS, Cluster: "west", CentralName: "east"})
	if _, err := m2.Sync(ctx); err == nil || !strings.Contains(err.Error(), "namespace finops does not exist in this cluster") {
		t.Errorf("missing namespace: %v", err)
	}
}
