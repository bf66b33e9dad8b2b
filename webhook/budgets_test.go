package webhook

import (
	"strconv"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/tollgate-dev/tollgate/finops"
	"github.com/tollgate-dev/tollgate/finops/budget"
	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	core "github.com/tollgate-dev/tollgate/policies/review"
)

// deployment asks for replicas × (cpu cores, memory GiB).
func deployment(replicas int, cpu, memGi string, labels string) string {
	return `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"api","namespace":"shop","labels":{"team":"payments","owner":"alice","cost-center":"CC-1234"}},
	 "spec":{"replicas":` + strconv.Itoa(replicas) + `,"selector":{"matchLabels":{"app":"api"}},
	  "template":{"metadata":{"labels":{"app":"api"` + labels + `}},"spec":{"securityContext":{"runAsNonRoot":true,"seccompProfile":{"type":"RuntimeDefault"}},
	   "containers":[{"name":"api","image":"ghcr.io/corp/api:1.0","securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}},
	    "resources":{"requests":{"cpu":"` + cpu + `","memory":"` + memGi + `Gi"},"limits":{"memory":"` + memGi + `Gi"}}}]}}}}`
}

func TestBudgetAwareAdmission(t *testing.T) {
	budgets := []*v1alpha1.Budget{
		// Forecast $100 of $150: a change adding more than $50/month goes over.
		{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "monthly"},
			Spec:   v1alpha1.BudgetSpec{Amount: "150", Action: "warn"},
			Status: v1alpha1.BudgetStatus{Forecast: "100.00"}},
		// The payments team, across namespaces, denies.
		{ObjectMeta: metav1.ObjectMeta{Namespace: "finops", Name: "payments"},
			Spec: v1alpha1.BudgetSpec{Amount: "200", Action: "deny",
				Scope: v1alpha1.BudgetScope{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "payments"}}}},
			Status: v1alpha1.BudgetStatus{Forecast: "180.00"}},
		// Another namespace's budget never applies.
		{ObjectMeta: metav1.ObjectMeta{Namespace: "search", Name: "monthly"},
			Spec: v1alpha1.BudgetSpec{Amount: "1", Action: "deny"}},
	}
	b := fake.NewClientBuilder().WithScheme(Scheme())
	for _, x := range budgets {
		b = b.WithObjects(x)
	}
	est, err := finops.NewEstimator(finops.EstimateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, nil, nil)
	f.reviewer.opts.Core = core.New(core.Options{Now: f.reviewer.opts.Now, Gates: []core.Evaluator{&budget.Gate{Budgets: b.Build(), Estimator: est}}})

	// 2 replicas × (1 core × 0.031611 + 2 GiB × 0.004237) × 730 h
	// = 2 × 0.040085 × 730 = $58.5241/month.
	_, resp := decodeResponse(t, post(f.validate, review(t, "CREATE", "Deployment", "shop", "api", deployment(2, "1", "2", ""), ""), "application/json"))
	if resp.Allowed {
		t.Fatalf("over the team's deny budget, admitted: %+v", resp.Warnings)
	}
	msg := resp.Result.Message
	for _, want := range []string{
		"[budget/finops/payments] this adds $58.52/month; team=payments is forecast at $180.00 of its $200.00 monthly budget (finops/payments), $238.52 with this change",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("denial lacks %q:\n%s", want, msg)
		}
	}
	warned := strings.Join(resp.Warnings, "\n")
	if !strings.Contains(warned, "[budget/shop/monthly] this adds $58.52/month; namespace shop is forecast at $100.00 of its $150.00 monthly budget") {
		t.Errorf("the namespace budget's warning is missing:\n%s", warned)
	}

	// One replica adds $29.26: within the namespace budget ($129.26 of
	// $150) and the team's ($209.26 of $200 is over: denied).
	_, resp = decodeResponse(t, post(f.validate, review(t, "CREATE", "Deployment", "shop", "api", deployment(1, "1", "2", ""), ""), "application/json"))
	if resp.Allowed || strings.Contains(strings.Join(resp.Warnings, "\n"), "budget/shop/monthly") {
		t.Errorf("one replica: allowed %v, warnings %v", resp.Allowed, resp.Warnings)
	}

	// An update that saves money is never stopped by a budget.
	_, resp = decodeResponse(t, post(f.validate, review(t, "UPDATE", "Deployment", "shop", "api",
		deployment(1, "1", "2", ""), deployment(3, "1", "2", "")), "application/json"))
	if !resp.Allowed || len(resp.Warnings) != 0 {
		t.Errorf("a scale-down: allowed %v, warnings %v, %+v", resp.Allowed, resp.Warnings, resp.Result)
	}
	// A dry run gets the same verdict.
	body := strings.Replace(string(review(t, "CREATE", "Deployment", "shop", "api", deployment(2, "1", "2", ""), "")), `"operation":"CREATE"`, `"operation":"CREATE","dryRun":true`, 1)
	_, resp = decodeResponse(t, post(f.validate, []byte(body), "application/json"))
	if resp.Allowed {
		t.Error("a dry run was admitted over the deny budget")
	}
}
