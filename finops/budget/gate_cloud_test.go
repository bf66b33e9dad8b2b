package budget_test

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/tollgate-dev/tollgate/finops"
	"github.com/tollgate-dev/tollgate/finops/budget"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/webhook"
)

// TestGateCountsGovernedKinds: a claim for a managed database is priced
// from its fields like a workload, and one that cannot be priced is said
// so rather than counted free.
func TestGateCountsGovernedKinds(t *testing.T) {
	prices, err := finops.ParsePrices([]byte("cloud: {instanceClasses: {db.m5.large: 0.171}}"))
	if err != nil {
		t.Fatal(err)
	}
	est, err := finops.NewEstimator(finops.EstimateOptions{Prices: prices})
	if err != nil {
		t.Fatal(err)
	}
	b := &v1alpha1.Budget{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cap"},
		Spec:   v1alpha1.BudgetSpec{Amount: "100", Action: v1alpha1.BudgetActionDeny},
		Status: v1alpha1.BudgetStatus{Forecast: "10"}}
	g := &budget.Gate{Budgets: fake.NewClientBuilder().WithScheme(webhook.Scheme()).WithObjects(b).Build(), Estimator: est,
		Governed: func() []policies.GovernedKind {
			return []policies.GovernedKind{{Group: "database.example.org", Kind: "PostgreSQLInstance",
				Pricing: []policies.PriceLine{{Class: policies.PriceInstance, Key: "spec.parameters.instanceClass"}}}}
		}}
	in := func(params string) *policies.Input {
		obj, err := policies.DecodeJSON([]byte(`{"apiVersion":"database.example.org/v1alpha1","kind":"PostgreSQLInstance",
			"metadata":{"name":"orders","namespace":"shop"},"spec":{"parameters":{` + params + `}}}`))
		if err != nil {
			t.Fatal(err)
		}
		return &policies.Input{Kind: policies.GroupVersionKind{Group: "database.example.org", Version: "v1alpha1", Kind: "PostgreSQLInstance"},
			Operation: "CREATE", Object: obj, Source: policies.SourceAdmission, DryRun: true}
	}
	d := g.Evaluate(context.Background(), in(`"instanceClass":"db.m5.large"`))
	if len(d.Findings) != 1 || d.Findings[0].Action != policies.ActionEnforce ||
		!strings.Contains(d.Findings[0].Message, "this adds $124.83/month; namespace shop is forecast at $10.00 of its $100.00") {
		t.Errorf("findings %+v; want the Budget's denial with the claim's $124.83", d.Findings)
	}
	d = g.Evaluate(context.Background(), in(`"storageGB":10`))
	if len(d.Findings) != 1 || d.Findings[0].Action != policies.ActionWarn || d.Findings[0].Path != "spec.parameters.instanceClass" ||
		!strings.Contains(d.Findings[0].Message, "PostgreSQLInstance shop/orders cannot be priced, so no Budget counts it: spec.parameters.instanceClass: missing") {
		t.Errorf("findings %+v; want a warning naming the kind, the object and the field", d.Findings)
	}
	g.Governed = nil
	if d := g.Evaluate(context.Background(), in(`"instanceClass":"db.m5.large"`)); len(d.Findings) != 0 {
		t.Errorf("not governed: findings %+v, want none", d.Findings)
	}
}
