package budget_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/finops"
	"github.com/tollgate-dev/tollgate/finops/budget"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/test/cluster"
	"github.com/tollgate-dev/tollgate/webhook"
)

// claimCRDs have the shape of Crossplane claims: a PostgreSQLInstance
// whose spec.parameters name an instance class, a storage class and a
// size, and a Bucket with a storage class and a size.
const claimCRDs = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: postgresqlinstances.database.example.org
spec:
  group: database.example.org
  scope: Namespaced
  names: {kind: PostgreSQLInstance, plural: postgresqlinstances, singular: postgresqlinstance, listKind: PostgreSQLInstanceList}
  versions:
    - name: v1alpha1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                parameters:
                  type: object
                  properties:
                    instanceClass: {type: string}
                    storageClass: {type: string}
                    storageGB: {type: integer}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: buckets.storage.example.org
spec:
  group: storage.example.org
  scope: Namespaced
  names: {kind: Bucket, plural: buckets, singular: bucket, listKind: BucketList}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                storageClass: {type: string}
                sizeGB: {type: integer}
`

// claimKinds are the config's governed kinds: the two above, and a kind
// whose CRD this cluster does not have.
var claimKinds = []policies.GovernedKind{
	{Group: "database.example.org", Kind: "PostgreSQLInstance", Pricing: []policies.PriceLine{
		{Class: policies.PriceInstance, Key: "spec.parameters.instanceClass"},
		{Class: policies.PriceStorage, Key: "spec.parameters.storageClass", Quantity: "spec.parameters.storageGB"},
	}},
	{Group: "storage.example.org", Kind: "Bucket", Pricing: []policies.PriceLine{
		{Class: policies.PriceStorage, Key: "spec.storageClass", Quantity: "spec.sizeGB"},
	}},
	{Group: "cache.example.org", Kind: "RedisInstance", Pricing: []policies.PriceLine{
		{Class: policies.PriceInstance, Key: "spec.nodeClass"},
	}},
}

const claimPrices = `
currencyCode: USD
cloud:
  instanceClasses: {db.m5.large: "0.171", db.m5.xlarge: "0.342"}
  storageClasses: {gp3: "0.08"}
`

func pgObject(ns, name, params string) map[string]any {
	obj, err := policies.DecodeJSON([]byte(`{"apiVersion":"database.example.org/v1alpha1","kind":"PostgreSQLInstance",
		"metadata":{"name":"` + name + `","namespace":"` + ns + `"},"spec":{"parameters":{` + params + `}}}`))
	if err != nil {
		panic(err)
	}
	return obj
}

// TestScannerCountsGovernedClaims: claims of a governed kind are listed
// and priced from their fields into their Budgets' hourly rate and
// forecast, charged to their namespace's team; a claim that cannot be
// priced, and a kind the scanner may not list, are named in the Budget's
// status (and a kind the API server does not serve is no error); once a
// scan has counted a claim the admission gate no longer adds it again.
func TestScannerCountsGovernedClaims(t *testing.T) {
	ctx := context.Background()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	crds := t.TempDir()
	if err := os.WriteFile(filepath.Join(crds, "claims.yaml"), []byte(claimCRDs), 0o600); err != nil {
		t.Fatal(err)
	}
	cl, err := cluster.Start(ctx, cluster.Options{CRDDirs: []string{filepath.Join(root, "charts", "tollgate", "crds"), crds}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Stop() })
	c, err := client.New(cl.Config(), client.Options{Scheme: webhook.Scheme()})
	if err != nil {
		t.Fatal(err)
	}

	// The scanner's identity may list what it prices, and claims, but not
	// buckets: the chart's ClusterRole without rbac.extraReadRules for them.
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "budget-scanner"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods", "nodes", "persistentvolumeclaims", "namespaces", "replicationcontrollers"}, Verbs: []string{"list"}},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments", "replicasets", "statefulsets"}, Verbs: []string{"list"}},
		{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"list"}},
		{APIGroups: []string{"database.example.org"}, Resources: []string{"postgresqlinstances"}, Verbs: []string{"list"}},
	}}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "budget-scanner"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "budget-scanner"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "budget-scanner"}}}
	for _, o := range []client.Object{role, binding} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	cfg := rest.CopyConfig(cl.Config())
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "budget-scanner"}
	limited, err := client.New(cfg, client.Options{Scheme: webhook.Scheme()})
	if err != nil {
		t.Fatal(err)
	}

	for _, ns := range []*corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: "claims", Labels: map[string]string{"team": "payments", "cost-center": "CC-1234"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "finops"}},
	} {
		if err := c.Create(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	nsObj := map[string]any{"metadata": map[string]any{"name": "claims", "labels": map[string]any{"team": "payments", "cost-center": "CC-1234"}}}
	nsBudget := &v1alpha1.Budget{ObjectMeta: metav1.ObjectMeta{Namespace: "claims", Name: "databases"},
		Spec: v1alpha1.BudgetSpec{Amount: "100", Action: v1alpha1.BudgetActionWarn}}
	teamBudget := &v1alpha1.Budget{ObjectMeta: metav1.ObjectMeta{Namespace: "finops", Name: "payments"},
		Spec: v1alpha1.BudgetSpec{Amount: "5000", Scope: v1alpha1.BudgetScope{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "payments"}}}}}
	for _, b := range []*v1alpha1.Budget{nsBudget, teamBudget} {
		if err := c.Create(ctx, b); err != nil {
			t.Fatal(err)
		}
	}

	prices, err := finops.ParsePrices([]byte(claimPrices))
	if err != nil {
		t.Fatal(err)
	}
	est, err := finops.NewEstimator(finops.EstimateOptions{Prices: prices})
	if err != nil {
		t.Fatal(err)
	}
	kinds := func() []policies.GovernedKind { return claimKinds }
	gate := &budget.Gate{Budgets: c, Estimator: est, Governed: kinds}
	pgKind := policies.GroupVersionKind{Group: "database.example.org", Version: "v1alpha1", Kind: "PostgreSQLInstance"}
	input := func(obj map[string]any) *policies.Input {
		return &policies.Input{Kind: pgKind, Operation: "CREATE", Object: obj, Namespace: nsObj, Source: policies.SourceAdmission}
	}
	// analytics is the claim judged before and after the scan:
	// db.m5.xlarge 0.342 × 730 = 249.66 + 50 GB gp3 4.00 = $253.66.
	analytics := pgObject("claims", "analytics", `"instanceClass":"db.m5.xlarge","storageClass":"gp3","storageGB":50`)
	forecastSeen := func() string {
		t.Helper()
		found, err := gate.Check(ctx, input(analytics))
		if err != nil || len(found) != 1 {
			t.Fatalf("gate on analytics: %v %+v; want the namespace Budget's warning", err, found)
		}
		// "this adds $253.66/month; namespace claims is forecast at $X of its $100.00 ..."
		_, rest, _ := strings.Cut(found[0].Message, "forecast at ")
		x, _, _ := strings.Cut(rest, " of its")
		return x
	}

	// orders: db.m5.large 0.171 × 730 = 124.83 + 100 GB gp3 8.00 = $132.83
	// a month, $0.181959 an hour. The gate admits it with a warning (the
	// Budget warns, it does not deny) and counts it.
	orders := pgObject("claims", "orders", `"instanceClass":"db.m5.large","storageClass":"gp3","storageGB":100`)
	in := input(orders)
	if d := gate.Evaluate(ctx, in); len(d.Findings) != 1 || d.Findings[0].Action != policies.ActionWarn ||
		!strings.Contains(d.Findings[0].Message, "this adds $132.83/month; namespace claims is forecast at $0.00") {
		t.Fatalf("orders: %+v, want admitted with the Budget's warning", d.Findings)
	}
	gate.Settle(ctx, in, true)
	create := func(obj map[string]any) {
		t.Helper()
		u := &unstructured.Unstructured{Object: obj}
		if err := c.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	create(orders)
	if got := forecastSeen(); got != "$132.83" {
		t.Errorf("before the scan the gate forecasts %s, want $132.83: the claim it admitted", got)
	}
	// reports has no instance class: it cannot be priced.
	create(pgObject("claims", "reports", `"storageClass":"gp3","storageGB":100`))
	create(map[string]any{"apiVersion": "storage.example.org/v1", "kind": "Bucket",
		"metadata": map[string]any{"name": "exports", "namespace": "claims"}, "spec": map[string]any{"storageClass": "gp3", "sizeGB": int64(50)}})

	model, err := finops.NewModel(finops.ModelOptions{Prices: prices, TopWorkloads: 3})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	newScanner := func(r client.Reader, reg prometheus.Registerer) *budget.Scanner {
		s, err := budget.New(budget.Options{Client: c, Reader: r, Model: model, Currency: "USD", Governed: kinds, Mapper: c.RESTMapper(),
			Registerer: reg,
			// A second ahead: status.lastScanTime keeps whole seconds, and
			// the scan must be seen as after the admission above.
			Now: func() time.Time { return time.Now().Add(time.Second) }})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if _, err := budget.New(budget.Options{Client: c, Reader: c, Model: model, Governed: kinds}); err == nil {
		t.Error("New with Governed and no Mapper: no error")
	}

	rep, err := newScanner(limited, reg).Scan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Unlisted == nil || !strings.Contains(rep.Unlisted.Error(), "listing Bucket.storage.example.org") || !strings.Contains(rep.Unlisted.Error(), "forbidden") ||
		strings.Contains(rep.Unlisted.Error(), "RedisInstance") {
		t.Errorf("Unlisted = %v; want buckets forbidden, and the unserved RedisInstance no error", rep.Unlisted)
	}
	const ordersHourly = 132.83 / finops.HoursPerMonth
	if rep.Tally.CloudResources != 1 || len(rep.Tally.Top) == 0 || rep.Tally.Top[0].Kind != "PostgreSQLInstance" || rep.Tally.Top[0].Name != "orders" {
		t.Errorf("tally: %d cloud resources, top %+v; want orders charged and named first", rep.Tally.CloudResources, rep.Tally.Top)
	}
	if team, ok := rep.Tally.Team("payments"); !ok || math.Abs(team.Hourly.Cloud-ordersHourly) > 1e-9 {
		t.Errorf("team payments = %+v, want orders' %v an hour, charged by its namespace's team", team, ordersHourly)
	}
	if len(rep.Tally.Unpriced) != 1 || rep.Tally.Unpriced[0].Name != "reports" || rep.Tally.Unpriced[0].Field != "spec.parameters.instanceClass" {
		t.Errorf("unpriced = %+v, want reports at spec.parameters.instanceClass", rep.Tally.Unpriced)
	}
	if got := gaugeValue(t, reg, "tollgate_finops_unpriced_objects"); got != 1 {
		t.Errorf("tollgate_finops_unpriced_objects = %v, want 1", got)
	}
	for _, f := range rep.Budgets {
		if f.Err != nil || math.Abs(f.Hourly-ordersHourly) > 1e-9 {
			t.Errorf("Budget %s/%s: hourly %v (%v), want orders' %v", f.Namespace, f.Name, f.Hourly, f.Err, ordersHourly)
		}
	}

	b := getBudget(t, c, "claims", "databases")
	logStatus(t, b)
	if b.Status.HourlyRate != "0.1820" {
		t.Errorf("status.hourlyRate = %q, want 0.1820 (orders)", b.Status.HourlyRate)
	}
	checkForecast(t, b, ordersHourly)
	priced := apimeta.FindStatusCondition(b.Status.Conditions, v1alpha1.ConditionPriced)
	if priced == nil || priced.Status != metav1.ConditionFalse || priced.Reason != v1alpha1.ReasonUnpriced ||
		!strings.Contains(priced.Message, "PostgreSQLInstance claims/reports: spec.parameters.instanceClass: missing") ||
		!strings.Contains(priced.Message, "listing Bucket.storage.example.org") {
		t.Errorf("Priced condition = %+v; want False naming reports' field and the unlisted buckets", priced)
	}
	if b.Status.LastError != priced.Message {
		t.Errorf("status.lastError = %q, want the Priced condition's message", b.Status.LastError)
	}
	if !apimeta.IsStatusConditionTrue(b.Status.Conditions, v1alpha1.ConditionReady) {
		t.Errorf("Ready = %+v, want True: what is priced is tallied", b.Status.Conditions)
	}

	// The scan counted orders: the gate no longer adds it on top.
	if got, want := forecastSeen(), finops.Money(mustFloat(t, b.Status.Forecast), "USD", finops.Cents); got != want {
		t.Errorf("after the scan the gate forecasts %s, want the status' %s alone (orders counted once)", got, want)
	}

	// reports gets its class; the scanner may list everything: all are
	// counted, and the status no longer says anything is left out.
	var r unstructured.Unstructured
	r.SetAPIVersion("database.example.org/v1alpha1")
	r.SetKind("PostgreSQLInstance")
	if err := c.Get(ctx, client.ObjectKey{Namespace: "claims", Name: "reports"}, &r); err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedField(r.Object, "db.m5.large", "spec", "parameters", "instanceClass"); err != nil {
		t.Fatal(err)
	}
	if err := c.Update(ctx, &r); err != nil {
		t.Fatal(err)
	}
	rep, err = newScanner(c, nil).Scan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// orders and reports $132.83 each, the bucket 50 GB × 0.08 = $4.00.
	const allHourly = (2*132.83 + 4) / finops.HoursPerMonth
	if rep.Unlisted != nil || len(rep.Tally.Unpriced) != 0 || rep.Tally.CloudResources != 3 {
		t.Errorf("second scan: unlisted %v, unpriced %v, %d charged; want all 3 counted", rep.Unlisted, rep.Tally.Unpriced, rep.Tally.CloudResources)
	}
	b = getBudget(t, c, "claims", "databases")
	logStatus(t, b)
	if b.Status.HourlyRate != "0.3694" {
		t.Errorf("status.hourlyRate = %q, want 0.3694 (two claims and a bucket)", b.Status.HourlyRate)
	}
	checkForecast(t, b, allHourly)
	if !apimeta.IsStatusConditionTrue(b.Status.Conditions, v1alpha1.ConditionPriced) || b.Status.LastError != "" {
		t.Errorf("Priced %+v, lastError %q; want True and no error once all are priced", b.Status.Conditions, b.Status.LastError)
	}
	if tb := getBudget(t, c, "finops", "payments"); tb.Status.HourlyRate != "0.3694" {
		t.Errorf("team Budget hourlyRate = %q, want 0.3694: the claims carry their namespace's team", tb.Status.HourlyRate)
	}
}

// checkForecast checks a Budget's forecast is its spend plus the hourly
// rate for the rest of the period from its last scan (the scan's own
// instant is a fraction of a second past the whole second kept).
func checkForecast(t *testing.T, b *v1alpha1.Budget, hourly float64) {
	t.Helper()
	spend, forecast := mustFloat(t, b.Status.Spend), mustFloat(t, b.Status.Forecast)
	left := b.Status.PeriodEnd.Sub(b.Status.LastScanTime.Time).Hours()
	if want := spend + hourly*left; math.Abs(forecast-want) > hourly/3600+0.006 {
		t.Errorf("status.forecast = %v, want %v: spend %v + %v an hour for the %.2f hours left", forecast, want, spend, hourly, left)
	}
}

func mustFloat(t *testing.T, s string) float64 {
	t.Helper()
	var v float64
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%q is not a number: %v", s, err)
	}
	return v
}

// logStatus prints a Budget's status as kubectl shows it, for the docs.
func logStatus(t *testing.T, b *v1alpha1.Budget) {
	t.Helper()
	out, _ := json.MarshalIndent(b.Status, "", "  ")
	t.Logf("Budget %s/%s status:\n%s", b.Namespace, b.Name, out)
}

// gaugeValue reads a gauge with no labels from a registry.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.Metric) == 1 {
			return mf.Metric[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}
