package budget_test

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/tollgate-dev/tollgate/finops"
	"github.com/tollgate-dev/tollgate/finops/budget"
	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	promtest "github.com/tollgate-dev/tollgate/test/prometheus"
	"github.com/tollgate-dev/tollgate/webhook"
)

// TestFleetSharesFromARealPrometheus reads the shares of a Budget across
// clusters from a real Prometheus holding three clusters' series, with the
// leftovers a real fleet has: a second replica's stale copy of a cluster's
// series, another Budget's, a series without a cluster label, a negative
// and a NaN value.
func TestFleetSharesFromARealPrometheus(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	var h promtest.Series
	start, end, step := now.Add(-10*time.Minute), now.Add(-15*time.Second), 15*time.Second
	gauge := func(name, labels string, v float64) {
		h.Gauge(name, labels, start, end, step, func(time.Time) float64 { return v })
	}
	gauge(budget.MetricShareHourly, `cluster="east",namespace="finops",budget="ml",instance="a"`, 1.5)
	gauge(budget.MetricShareHourly, `cluster="east",namespace="finops",budget="ml",instance="b"`, 1.25) // max by cluster: 1.5
	gauge(budget.MetricShareHourly, `cluster="west",namespace="finops",budget="ml",instance="c"`, 0.5)
	gauge(budget.MetricShareHourly, `cluster="edge",namespace="finops",budget="ml",instance="d"`, -3)
	gauge(budget.MetricShareHourly, `namespace="finops",budget="ml",instance="e"`, 99)
	gauge(budget.MetricShareHourly, `cluster="west",namespace="finops",budget="other",instance="c"`, 7)
	gauge(budget.MetricShareCommitted, `cluster="west",namespace="finops",budget="ml",instance="c"`, 0.25)
	gauge(budget.MetricLastScan, `cluster="east",instance="a"`, float64(now.Add(-time.Minute).Unix()))
	gauge(budget.MetricLastScan, `cluster="west",instance="c"`, float64(now.Add(-2*time.Minute).Unix()))
	srv, err := promtest.Start(context.Background(), promtest.Options{History: h.String()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()

	f, err := budget.NewFleet(srv.URL(), budget.FleetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	shares, err := f.Shares(context.Background(), "finops", "ml", now)
	if err != nil {
		t.Fatal(err)
	}
	if len(shares) != 2 {
		t.Fatalf("shares %+v: want east and west only", shares)
	}
	east, west := shares[0], shares[1]
	if east.Cluster != "east" || east.Hourly != 1.5 || east.Committed != 0 || !east.ScannedAt.Equal(now.Add(-time.Minute)) {
		t.Errorf("east %+v", east)
	}
	if west.Cluster != "west" || west.Hourly != 0.5 || west.Committed != 0.25 || !west.ScannedAt.Equal(now.Add(-2*time.Minute)) {
		t.Errorf("west %+v", west)
	}

	// A label value cannot break out of its matcher.
	if got, err := f.Shares(context.Background(), `finops"}) or vector(1) or (x{a="`, "ml", now); err != nil || len(got) != 0 {
		t.Errorf("quoted namespace: %+v %v", got, err)
	}

	// Too many clusters for the bound, and a Prometheus that is gone:
	// errors, never figures.
	small, _ := budget.NewFleet(srv.URL(), budget.FleetOptions{MaxClusters: 1})
	if _, err := small.Shares(context.Background(), "finops", "ml", now); err == nil || !strings.Contains(err.Error(), "over the 1 read") {
		t.Errorf("bounded read: %v", err)
	}
	_ = srv.Stop()
	if _, err := f.Shares(context.Background(), "finops", "ml", now); err == nil || !strings.Contains(err.Error(), "fleet prometheus") {
		t.Errorf("Prometheus down: %v", err)
	}
}

// A Budget across clusters is judged by its central verdict: it denies in
// the clusters it spans while the verdict is fresh, warns once the verdict
// is older than the gate allows, and judges nothing where it has no
// verdict yet or in a cluster it does not span.
func TestGateJudgesByTheCentralVerdict(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	est, err := finops.NewEstimator(finops.EstimateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gate := func(cluster string, evaluated *metav1.Time, mirror *v1alpha1.BudgetMirror) *budget.Gate {
		b := &v1alpha1.Budget{ObjectMeta: metav1.ObjectMeta{Namespace: "finops", Name: "team"},
			Spec: v1alpha1.BudgetSpec{Amount: "100", Action: v1alpha1.BudgetActionDeny, Scope: v1alpha1.BudgetScope{
				Namespace: "shop", Clusters: []string{"east", "west"}}},
			Status: v1alpha1.BudgetStatus{Forecast: "90", LastScanTime: evaluated, SpendAsOf: evaluated, Mirror: mirror}}
		return &budget.Gate{Budgets: fake.NewClientBuilder().WithScheme(webhook.Scheme()).WithObjects(b).Build(), Estimator: est,
			Now: func() time.Time { return now }, Cluster: cluster, MaxVerdictAge: 10 * time.Minute}
	}
	fresh := &metav1.Time{Time: now.Add(-time.Minute)}
	old := &metav1.Time{Time: now.Add(-time.Hour)}
	for _, c := range []struct {
		name      string
		g         *budget.Gate
		allowed   bool
		wantInMsg string
	}{
		{"fresh verdict denies", gate("west", fresh, nil), false, "namespace shop across clusters is forecast at $90.00 of its $100.00 monthly budget"},
		{"stale mirror warns", gate("west", old, &v1alpha1.BudgetMirror{Cluster: "east", Budget: "finops/team", Time: *old}), true,
			"verdict 1h0m0s old, over 10m0s (central cluster last reached 2026-12-06T11:00:00Z): warned, not denied; this adds $29.26/month"},
		{"stale central verdict warns", gate("east", old, nil), true, "verdict 1h0m0s old, over 10m0s (fleet Prometheus not read since): warned, not denied"},
		{"no verdict yet", gate("west", nil, nil), true, ""},
		{"a cluster it does not span", gate("north", fresh, nil), true, ""},
		{"a Tollgate without a cluster name", gate("", fresh, nil), true, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			allowed, msg := reviewed(c.g, podInput("CREATE", "p", "1", "", false), false)
			if allowed != c.allowed || !strings.Contains(msg, c.wantInMsg) || (c.wantInMsg == "" && msg != "") {
				t.Errorf("allowed %v, message %q; want %v with %q", allowed, msg, c.allowed, c.wantInMsg)
			}
		})
	}
}
