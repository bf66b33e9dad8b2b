package finops

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/policies"
)

// governed parses a governed object from YAML, as the scanner lists it.
func governed(t *testing.T, doc string) unstructured.Unstructured {
	t.Helper()
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
		t.Fatal(err)
	}
	return unstructured.Unstructured{Object: obj}
}

// pgClaim is a PostgreSQLInstance in ns with the given labels and
// spec.parameters (YAML flow mapping contents).
func pgClaim(t *testing.T, ns, name, lbls, params string) unstructured.Unstructured {
	t.Helper()
	meta := "{name: " + name
	if ns != "" {
		meta += ", namespace: " + ns
	}
	if lbls != "" {
		meta += ", labels: {" + lbls + "}"
	}
	return governed(t, "apiVersion: database.example.org/v1alpha1\nkind: PostgreSQLInstance\nmetadata: "+meta+"}\nspec:\n  parameters: {"+params+"}\n")
}

func cloudModel(t *testing.T, kinds []policies.GovernedKind) *Model {
	t.Helper()
	p, err := ParsePrices([]byte(cloudPrices))
	if err != nil {
		t.Fatal(err)
	}
	return model(t, ModelOptions{Prices: p, TopWorkloads: 3, GovernedKinds: kinds})
}

// The claims below, at the cloudPrices catalogue:
//
//	shop/orders    db.m5.large 1 × 0.171 × 730 = 124.83, gp3 100 GB × 0.08 = 8.00: 132.83 a month
//	shop/cache     db.t3.micro 1 × 0.017 × 730 = 12.41, gp3 "20Gi" = 20 GB × 0.08 = 1.60: 14.01 a month
//	global (cluster-scoped) db.t3.micro, gp3 10 GB: 12.41 + 0.80 = 13.21 a month
func TestTallyChargesGovernedKinds(t *testing.T) {
	c := Cluster{
		Namespaces: []corev1.Namespace{namespace("shop", "team", "payments", "cost-center", "CC-1234")},
		Pods:       []corev1.Pod{pod("shop", "api", container("api", "1", "1Gi"))},
		Governed: []unstructured.Unstructured{
			// Its own team label loses to the namespace's, as for pods and claims.
			pgClaim(t, "shop", "orders", "team: search", "instanceClass: db.m5.large, storageClass: gp3, storageGB: 100"),
			pgClaim(t, "shop", "cache", "", "instanceClass: db.t3.micro, storageClass: gp3, storageGB: 20Gi"),
			pgClaim(t, "", "global", "team: platform", "instanceClass: db.t3.micro, storageClass: gp3, storageGB: 10"),
			// A kind the config does not govern costs nothing by itself.
			governed(t, "apiVersion: cache.example.org/v1\nkind: Redis\nmetadata: {name: r, namespace: shop}\nspec: {size: huge}\n"),
		},
	}
	m := cloudModel(t, postgres)
	got := m.Tally(c)

	orders, cache, global := 132.83/HoursPerMonth, 14.01/HoursPerMonth, 13.21/HoursPerMonth
	apiPod := spend(DefaultPrices().Sheet.CPU, DefaultPrices().Sheet.RAM, 0, 0)
	cloud := func(h float64) Spend { return Spend{Cloud: h, Total: h} }
	shop := apiPod.Add(cloud(orders)).Add(cloud(cache))

	if got.CloudResources != 3 || len(got.Unpriced) != 0 {
		t.Fatalf("CloudResources %d, Unpriced %v; want 3 charged, none unpriced", got.CloudResources, got.Unpriced)
	}
	if diff := cmp.Diff(shop.Add(cloud(global)), got.Hourly, approx); diff != "" {
		t.Errorf("cluster hourly (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Group{{Name: "shop", Pods: 1, Hourly: shop, Monthly: shop.Scale(HoursPerMonth)}}, got.Namespaces, approx); diff != "" {
		t.Errorf("namespaces: the cluster-scoped object is charged to none (-want +got):\n%s", diff)
	}
	wantTeams := []Group{
		{Name: "payments", Pods: 1, Hourly: shop, Monthly: shop.Scale(HoursPerMonth)},
		{Name: "platform", Hourly: cloud(global), Monthly: cloud(global).Scale(HoursPerMonth)},
	}
	if diff := cmp.Diff(wantTeams, got.Teams, approx); diff != "" {
		t.Errorf("teams (-want +got):\n%s", diff)
	}
	if cc, ok := got.CostCenter("CC-1234"); !ok || !cmp.Equal(cc.Hourly, shop, approx) {
		t.Errorf("cost-center CC-1234 = %+v, want the namespace's pod and claims %+v", cc, shop)
	}
	wantTop := []Workload{
		{Kind: "PostgreSQLInstance", Namespace: "shop", Name: "orders", Hourly: cloud(orders), Monthly: cloud(orders).Scale(HoursPerMonth)},
		// The pod, 0.035848 an hour (26.17 a month), is dearer than the
		// small claims; global (13.21) is fourth and left out.
		{Kind: "Pod", Namespace: "shop", Name: "api", Pods: 1, Hourly: apiPod, Monthly: apiPod.Scale(HoursPerMonth)},
		{Kind: "PostgreSQLInstance", Namespace: "shop", Name: "cache", Hourly: cloud(cache), Monthly: cloud(cache).Scale(HoursPerMonth)},
	}
	if diff := cmp.Diff(wantTop, got.Top, approx); diff != "" {
		t.Errorf("top (-want +got):\n%s", diff)
	}
	if m := got.Top[0].Monthly.Total; Money(m, "USD", Cents) != "$132.83" {
		t.Errorf("orders monthly = %v, want $132.83", m)
	}

	// The same object costs in the tally what the estimator says it
	// costs: one implementation prices both.
	est, ok, err := cloudEstimator(t).Estimate(c.Governed[0].Object)
	if err != nil || !ok {
		t.Fatalf("Estimate: %v %v", ok, err)
	}
	if !cmp.Equal(est.Monthly.Total, got.Top[0].Monthly.Total, approx) {
		t.Errorf("estimate %v a month, tally %v", est.Monthly.Total, got.Top[0].Monthly.Total)
	}

	// A Model without governed kinds (or a config that no longer lists
	// the kind) charges none of them.
	if none := m.WithGovernedKinds(nil).Tally(c); none.CloudResources != 0 || none.Hourly.Cloud != 0 {
		t.Errorf("without governed kinds: %d charged, %v cloud an hour", none.CloudResources, none.Hourly.Cloud)
	}
}

// An object that cannot be priced is never charged $0 in silence: it is
// in Unpriced with the field at fault, and the rest are still charged.
func TestTallyReportsUnpricedGovernedObjects(t *testing.T) {
	c := Cluster{
		Namespaces: []corev1.Namespace{namespace("shop", "team", "payments")},
		Governed: []unstructured.Unstructured{
			pgClaim(t, "shop", "orders", "", "instanceClass: db.m5.large, storageClass: gp3, storageGB: 100"),
			pgClaim(t, "shop", "reports", "", "storageClass: gp3, storageGB: 100"),
			pgClaim(t, "shop", "huge", "", "instanceClass: db.x1.32xlarge, storageClass: gp3, storageGB: 100"),
			pgClaim(t, "shop", "odd", "", "instanceClass: db.m5.large, storageClass: gp3, storageGB: lots"),
			pgClaim(t, "shop", "list", "", "instanceClass: [db.m5.large], storageClass: gp3, storageGB: 1"),
		},
	}
	got := cloudModel(t, postgres).Tally(c)
	if got.CloudResources != 1 {
		t.Errorf("CloudResources = %d, want 1 (orders)", got.CloudResources)
	}
	if want := 132.83 / HoursPerMonth; !cmp.Equal(got.Hourly.Total, want, approx) {
		t.Errorf("hourly = %v, want orders alone %v", got.Hourly.Total, want)
	}
	type row struct{ name, field, says string }
	want := []row{
		{"huge", "spec.parameters.instanceClass", `instance class "db.x1.32xlarge" is not in the price catalogue's cloud.instanceClasses (db.m5.large, db.t3.micro)`},
		{"list", "spec.parameters.instanceClass", "want the name of a instance class"},
		{"odd", "spec.parameters.storageGB", `"lots" is neither a number nor a quantity`},
		{"reports", "spec.parameters.instanceClass", "missing; PostgreSQLInstance is priced by this field (governedKinds pricing[0].key names it)"},
	}
	if len(got.Unpriced) != len(want) {
		t.Fatalf("Unpriced = %v, want %d entries", got.Unpriced, len(want))
	}
	for i, w := range want {
		u := got.Unpriced[i]
		if u.Kind != "PostgreSQLInstance" || u.Namespace != "shop" || u.Name != w.name || u.Field != w.field || !strings.Contains(u.Reason, w.says) {
			t.Errorf("Unpriced[%d] = %+v, want %s at %s saying %q", i, u, w.name, w.field, w.says)
		}
		if s := u.String(); !strings.HasPrefix(s, "PostgreSQLInstance shop/"+w.name+": "+w.field+": ") {
			t.Errorf("Unpriced[%d].String() = %q, want it to name the kind, object and field", i, s)
		}
	}
}
