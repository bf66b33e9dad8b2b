package budget_test

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/finops"
	"github.com/tollgate-dev/tollgate/finops/alerts"
	"github.com/tollgate-dev/tollgate/finops/budget"
	"github.com/tollgate-dev/tollgate/finops/usage"
	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/test/cluster"
	promtest "github.com/tollgate-dev/tollgate/test/prometheus"
	"github.com/tollgate-dev/tollgate/webhook"
)

// receiver stands in for Slack: it checks each payload is a Block Kit
// message and records it; failing makes it answer 500 until told not to.
type receiver struct {
	mu       sync.Mutex
	messages []string
	failing  bool
	srv      *httptest.Server
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		var msg struct {
			Text   string           `json:"text"`
			Blocks []map[string]any `json:"blocks"`
		}
		if err := json.Unmarshal(body, &msg); err != nil || msg.Text == "" || len(msg.Blocks) == 0 {
			http.Error(w, "not a Block Kit message", http.StatusBadRequest)
			t.Errorf("receiver: malformed payload %s", body)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.failing {
			http.Error(w, "unavailable", http.StatusInternalServerError)
			return
		}
		r.messages = append(r.messages, string(body))
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.messages...)
}

func (r *receiver) setFailing(f bool) {
	r.mu.Lock()
	r.failing = f
	r.mu.Unlock()
}

// startCluster runs an API server with Tollgate's CRDs for one test.
func startCluster(t *testing.T) client.Client {
	t.Helper()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := cluster.Start(context.Background(), cluster.Options{CRDDirs: []string{filepath.Join(root, "charts", "tollgate", "crds")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Stop() })
	c, err := client.New(cl.Config(), client.Options{Scheme: webhook.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// runningPod creates a pod asking cpu cores and memory GiB and marks it
// Running, as the kubelet would.
func runningPod(t *testing.T, c client.Client, ns, name, cpu, mem string, phase corev1.PodPhase) {
	t.Helper()
	ctx := context.Background()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": "api", "team": "payments", "cost-center": "CC-1234"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "api", Image: "ghcr.io/corp/api:1.0",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)}}}}},
	}
	if err := c.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	p.Status.Phase = phase
	if err := c.Status().Update(ctx, p); err != nil {
		t.Fatal(err)
	}
}

func getBudget(t *testing.T, c client.Client, ns, name string) *v1alpha1.Budget {
	t.Helper()
	var b v1alpha1.Budget
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &b); err != nil {
		t.Fatal(err)
	}
	return &b
}

// TestScannerAgainstTheAPIServer: spend accrues from running pods' requests
// into Budget status; each threshold alerts once per period, across a
// restart of the scanner; a channel that fails is retried until it takes
// the alert, counted meanwhile; Prometheus down marks the scan stale and
// fires nothing.
func TestScannerAgainstTheAPIServer(t *testing.T) {
	ctx := context.Background()
	c := startCluster(t)
	for _, ns := range []*corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"team": "payments"}, Annotations: map[string]string{alerts.ChannelAnnotation: "payments"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "search", Labels: map[string]string{"team": "search"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "tollgate-system"}},
	} {
		if err := c.Create(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	// Two running pods of 2 cores and 4 GiB: 2 × (2 × 0.031611 + 4 ×
	// 0.004237) = $0.16034 an hour with OpenCost's default prices. The
	// finished pod costs nothing; the pending one is not charged yet, but
	// the forecast counts it, as it will run.
	runningPod(t, c, "shop", "api-1", "2", "4Gi", corev1.PodRunning)
	runningPod(t, c, "shop", "api-2", "2", "4Gi", corev1.PodRunning)
	runningPod(t, c, "shop", "api-3", "2", "4Gi", corev1.PodPending)
	runningPod(t, c, "shop", "migrate", "8", "16Gi", corev1.PodSucceeded)
	runningPod(t, c, "search", "idx-1", "1", "1Gi", corev1.PodRunning)
	const hourly = 2 * (2*0.031611 + 4*0.004237)

	payments, ops := newReceiver(t), newReceiver(t)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "tollgate-system", Name: "budget-webhooks"},
		StringData: map[string]string{"payments": payments.srv.URL + "/services/T0/B0/x", "ops": ops.srv.URL + "/services/T0/B1/y"}}
	if err := c.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	routes := alerts.Routes{Default: "ops", Channels: map[string]alerts.Channel{
		"payments": {Type: alerts.Slack, URLSecret: alerts.SecretKeyRef{Namespace: "tollgate-system", Name: "budget-webhooks", Key: "payments"}},
		"ops":      {Type: alerts.Slack, URLSecret: alerts.SecretKeyRef{Namespace: "tollgate-system", Name: "budget-webhooks", Key: "ops"}},
	}}
	n, err := alerts.New(alerts.Options{Routes: routes, Attempts: 2, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		AttemptTimeout: 2 * time.Second,
		Secrets: func(ctx context.Context, ns, name, key string) ([]byte, error) {
			var s corev1.Secret
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
				return nil, err
			}
			return s.Data[key], nil
		}})
	if err != nil {
		t.Fatal(err)
	}

	// $1.60 a month for shop: 50 % after 5 hours, 80 % after 8, 100 %
	// after 10. The team budget ($100) never alerts.
	shopBudget := &v1alpha1.Budget{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "monthly"},
		Spec: v1alpha1.BudgetSpec{Amount: "1.60", Period: "monthly", Currency: "USD"}}
	teamBudget := &v1alpha1.Budget{ObjectMeta: metav1.ObjectMeta{Namespace: "tollgate-system", Name: "payments"},
		Spec: v1alpha1.BudgetSpec{Amount: "100", Scope: v1alpha1.BudgetScope{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "payments"}}}}}
	for _, b := range []*v1alpha1.Budget{shopBudget, teamBudget} {
		if err := c.Create(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	created := getBudget(t, c, "shop", "monthly").CreationTimestamp.Time
	// Budgets count from their creation; keep the test inside one month.
	if p, end := budget.Period("monthly", created); end.Sub(created) < 12*time.Hour {
		t.Skipf("too close to the end of the period starting %s to run the hours this test needs", p)
	}
	model, err := finops.NewModel(finops.ModelOptions{TopWorkloads: 3})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	clock := created
	newScanner := func(src *usage.Source, reg prometheus.Registerer) *budget.Scanner {
		s, err := budget.New(budget.Options{Client: c, Reader: c, Model: model, Usage: src, Alerter: budget.NotifierAlerter(n),
			Cluster: "test", Registerer: reg, Now: func() time.Time { return clock }})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	scan := func(s *budget.Scanner, after time.Duration) *budget.Report {
		t.Helper()
		clock = created.Add(after)
		rep, err := s.Scan(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range rep.Budgets {
			if b.Err != nil {
				t.Fatalf("%s/%s: %v", b.Namespace, b.Name, b.Err)
			}
		}
		return rep
	}
	spendOf := func() float64 {
		b := getBudget(t, c, "shop", "monthly")
		var v float64
		if err := json.Unmarshal([]byte(b.Status.Spend), &v); err != nil {
			t.Fatalf("status.spend %q: %v", b.Status.Spend, err)
		}
		return v
	}

	s := newScanner(nil, reg)
	first := scan(s, 5*time.Hour+time.Minute)
	if got, want := spendOf(), hourly*(5+1.0/60); math.Abs(got-want) > 0.006 {
		t.Errorf("spend after 5h01 %.4f, want %.4f", got, want)
	}
	shopFigures := 0
	for _, f := range first.Budgets {
		if f.Namespace != "shop" {
			continue
		}
		shopFigures++
		_, end := budget.Period("monthly", clock)
		left := end.Sub(clock).Hours()
		if want := hourly / 2; math.Abs(f.Committed-want) > 1e-9 {
			t.Errorf("committed %.6f/h, want the pending pod's %.6f/h", f.Committed, want)
		}
		if want := f.Spend + (hourly+hourly/2)*left; math.Abs(f.Forecast-want) > 1e-6 {
			t.Errorf("forecast %.4f, want %.4f: spend, and the running and pending pods for the %.0f hours left", f.Forecast, want, left)
		}
	}
	if shopFigures != 1 {
		t.Errorf("%d figures for shop's Budget", shopFigures)
	}
	if got := payments.got(); len(got) != 1 || !strings.Contains(got[0], "50") || !strings.Contains(got[0], "shop") {
		t.Fatalf("after 50 %%: payments got %d messages: %v", len(got), got)
	}
	// The message names spend, budget, forecast and the top workloads.
	for _, want := range []string{"$0.80", "$1.60", "forecast", "api-1", "api-2"} {
		if !strings.Contains(payments.got()[0], want) {
			t.Errorf("the alert does not name %q: %s", want, payments.got()[0])
		}
	}
	if n, err := testutil.GatherAndCount(reg, "tollgate_budget_spend", "tollgate_cost_hourly", "tollgate_finops_last_scan_timestamp_seconds"); err != nil || n < 4 {
		t.Errorf("scanner series: %d, %v", n, err)
	}
	// The same instant again: nothing added, nothing repeated.
	scan(s, 5*time.Hour+time.Minute)
	if n := len(payments.got()); n != 1 {
		t.Errorf("a second scan re-sent the alert: %d messages", n)
	}

	// The leader restarts (a new scanner, nothing in memory) three hours
	// later: spend continues from the status, and only 80 % is new.
	s = newScanner(nil, prometheus.NewRegistry())
	scan(s, 8*time.Hour+time.Minute)
	if got, want := spendOf(), hourly*(8+1.0/60); math.Abs(got-want) > 0.006 {
		t.Errorf("spend after a restart %.4f, want %.4f", got, want)
	}
	got := payments.got()
	if len(got) != 2 || !strings.Contains(got[1], "80") {
		t.Fatalf("after 80 %%: %d messages", len(got))
	}
	b := getBudget(t, c, "shop", "monthly")
	if b.Status.AlertedSummary != "50%,80%" || b.Status.Utilization != "80%" {
		t.Errorf("status: alerted %q utilization %q", b.Status.AlertedSummary, b.Status.Utilization)
	}

	// Prometheus is down at 100 %: the scan is stale and fires nothing.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String()
	l.Close()
	src, err := usage.New(down, usage.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	rep := scan(newScanner(src, prometheus.NewRegistry()), 10*time.Hour+time.Minute)
	if !rep.Stale || !getBudget(t, c, "shop", "monthly").Status.Stale {
		t.Errorf("Prometheus down: report stale %v", rep.Stale)
	}
	if n := len(payments.got()); n != 2 {
		t.Errorf("an alert fired on stale data: %d messages", n)
	}

	// Usage is back, but the channel fails: the 100 % alert is recorded,
	// counted as failed, and delivered on a later scan once it recovers.
	payments.setFailing(true)
	scan(s, 10*time.Hour+2*time.Minute)
	b = getBudget(t, c, "shop", "monthly")
	if b.Status.FailedDeliveries == 0 || !strings.Contains(b.Status.LastError, "alert 100% to payments") || b.Status.AlertedSummary != "50%,80%,100%(pending)" {
		t.Errorf("failing channel: failed %d, error %q, alerted %q", b.Status.FailedDeliveries, b.Status.LastError, b.Status.AlertedSummary)
	}
	payments.setFailing(false)
	scan(s, 10*time.Hour+3*time.Minute)
	got = payments.got()
	if len(got) != 3 || !strings.Contains(got[2], "100") {
		t.Fatalf("after recovery: %d messages", len(got))
	}
	if b = getBudget(t, c, "shop", "monthly"); b.Status.AlertedSummary != "50%,80%,100%" || b.Status.LastError != "" {
		t.Errorf("after recovery: alerted %q, error %q", b.Status.AlertedSummary, b.Status.LastError)
	}
	if n := len(ops.got()); n != 0 {
		t.Errorf("the default channel got %d messages; shop routes to payments", n)
	}
	// The team budget counts the payments pods in every namespace, with
	// the namespace's labels for pods that lack them.
	team := getBudget(t, c, "tollgate-system", "payments")
	if team.Status.Scope != "team=payments" || team.Status.Spend == "" || len(team.Status.Alerted) != 0 {
		t.Errorf("team budget status %+v", team.Status)
	}
}

// TestScannerUsesPrometheusUsage: with a real Prometheus whose history
// shows a container using three times its cpu request, the scan charges
// the usage (max of request and usage), not the request.
func TestScannerUsesPrometheusUsage(t *testing.T) {
	ctx := context.Background()
	c := startCluster(t)
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}); err != nil {
		t.Fatal(err)
	}
	runningPod(t, c, "shop", "api-1", "500m", "1Gi", corev1.PodRunning)
	if err := c.Create(ctx, &v1alpha1.Budget{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "monthly"}, Spec: v1alpha1.BudgetSpec{Amount: "1000"}}); err != nil {
		t.Fatal(err)
	}
	// Budgets the scanner cannot keep say why in their status; the others
	// are still scanned.
	for _, b := range []*v1alpha1.Budget{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "euros"}, Spec: v1alpha1.BudgetSpec{Amount: "10", Currency: "EUR"}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "everything"}, Spec: v1alpha1.BudgetSpec{Amount: "10",
			Scope: v1alpha1.BudgetScope{Selector: &metav1.LabelSelector{}}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "bad-selector"}, Spec: v1alpha1.BudgetSpec{Amount: "10",
			Scope: v1alpha1.BudgetScope{Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: "Near"}}}}}},
	} {
		if err := c.Create(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	// An amount that is not a decimal never gets past the API server.
	if err := c.Create(ctx, &v1alpha1.Budget{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "lots"}, Spec: v1alpha1.BudgetSpec{Amount: "lots"}}); err == nil || !strings.Contains(err.Error(), "spec.amount") {
		t.Errorf("a malformed amount: %v", err)
	}
	// Two hours of history: the api container uses 1.5 cores and 512 MiB
	// (under its 1 GiB request, so memory is charged by the request).
	now := time.Now().Truncate(time.Second)
	var h promtest.Series
	start := now.Add(-2 * time.Hour)
	h.Counter("container_cpu_usage_seconds_total", `namespace="shop",pod="api-1",container="api"`, start, now.Add(-30*time.Second), 30*time.Second,
		func(ts time.Time) float64 { return 1.5 * ts.Sub(start).Seconds() })
	h.Gauge("container_memory_working_set_bytes", `namespace="shop",pod="api-1",container="api"`, start, now.Add(-30*time.Second), 30*time.Second,
		func(time.Time) float64 { return 512 << 20 })
	prom, err := promtest.Start(ctx, promtest.Options{History: h.String()})
	if err != nil {
		t.Fatal(err)
	}
	defer prom.Stop()
	src, err := usage.New(prom.URL(), usage.Options{Window: 30 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	model, err := finops.NewModel(finops.ModelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := budget.New(budget.Options{Client: c, Reader: c, Model: model, Usage: src, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.Scan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Stale || len(rep.Budgets) != 4 {
		t.Fatalf("report: stale %v, %d budgets", rep.Stale, len(rep.Budgets))
	}
	for name, want := range map[string]string{
		"euros":        "spec.currency EUR: prices are in USD",
		"everything":   "spec.scope.selector: empty",
		"bad-selector": "spec.scope.selector: ",
	} {
		b := getBudget(t, c, "shop", name)
		if !strings.Contains(b.Status.LastError, want) || len(b.Status.Conditions) == 0 || b.Status.Conditions[0].Status != metav1.ConditionFalse {
			t.Errorf("%s: lastError %q, conditions %+v; want %q", name, b.Status.LastError, b.Status.Conditions, want)
		}
	}
	rep.Budgets = slices.DeleteFunc(rep.Budgets, func(f budget.Figures) bool { return f.Name != "monthly" })
	// 1.5 cores × 0.031611 + 1 GiB × 0.004237 = 0.0516535 an hour; the
	// request alone would be 0.5 × 0.031611 + 0.004237 = 0.0200425.
	if got, want := rep.Budgets[0].Hourly, 1.5*0.031611+0.004237; math.Abs(got-want) > want*0.02 {
		t.Errorf("hourly %.6f, want %.6f (usage, not the request)", got, want)
	}
	if b := getBudget(t, c, "shop", "monthly"); b.Status.Stale || !strings.HasPrefix(b.Status.HourlyRate, "0.05") {
		t.Errorf("status: stale %v, hourly %q", b.Status.Stale, b.Status.HourlyRate)
	}
}
