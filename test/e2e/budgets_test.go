package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
)

// trainingDeployment asks replicas × (1 core, 2 GiB): with OpenCost's
// default prices (0.031611 + 2 × 0.004237) × 730 = $29.26 a month each.
func trainingDeployment(ns, name string, replicas int) string {
	return fmt.Sprintf(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":%q,"namespace":%q},
	 "spec":{"replicas":%d,"selector":{"matchLabels":{"app":%q}},"template":{"metadata":{"labels":{"app":%q}},
	  "spec":{"containers":[{"name":"c","image":"ghcr.io/corp/train:1.0","resources":{"requests":{"cpu":"1","memory":"2Gi"},"limits":{"memory":"2Gi"}}}]}}}}`,
		name, ns, replicas, name, name)
}

// TestBudgetAwareAdmissionThroughTheAPIServer: a change that would take a
// Budget's forecast over its amount is warned about (warn) or denied
// (deny) with the numbers, through kubectl; a dry run gets the same
// verdict; a scale-down is never stopped.
func TestBudgetAwareAdmissionThroughTheAPIServer(t *testing.T) {
	ctx := context.Background()
	ns := "budgets"
	teamNamespace(t, ns)
	seed := func(name, amount, action, forecast string, scope v1alpha1.BudgetScope) {
		t.Helper()
		b := &v1alpha1.Budget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: v1alpha1.BudgetSpec{Amount: amount, Action: action, Scope: scope}}
		if err := env.client.Create(ctx, b); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.client.Delete(ctx, b) })
		// The forecast the scanner would have written, scanning now:
		// what was admitted before is in it. A status keeps whole
		// seconds: the current one is waited out.
		time.Sleep(time.Second)
		now := metav1.Now()
		b.Status.Forecast, b.Status.LastScanTime = forecast, &now
		if err := env.client.Status().Update(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	seed("monthly", "100", "warn", "60.00", v1alpha1.BudgetScope{})

	// 2 replicas add $58.52: $118.52 of $100, warned.
	var stderr string
	eventually(t, 30*time.Second, func() error {
		var err error
		_, stderr, err = apply(t, trainingDeployment(ns, "train", 2), "--dry-run=server")
		if err != nil {
			return fmt.Errorf("%w: %s", err, stderr)
		}
		if !strings.Contains(stderr, "[budget/budgets/monthly]") {
			return fmt.Errorf("no budget warning yet (the Budget cache): %s", stderr)
		}
		return nil
	})
	want := "Warning: tollgate: [budget/budgets/monthly] this adds $58.52/month; namespace budgets is forecast at $60.00 of its $100.00 monthly budget"
	if !strings.Contains(stderr, want) {
		t.Errorf("dry run warning:\n%s\nwant %s", stderr, want)
	}
	_, stderr, err := apply(t, trainingDeployment(ns, "train", 2))
	if err != nil || !strings.Contains(stderr, want) {
		t.Fatalf("warned apply: %v\n%s", err, stderr)
	}

	// The team's Budget denies: a bigger Deployment is refused, with the
	// numbers, and so is its dry run.
	seed("team", "150", "deny", "118.52", v1alpha1.BudgetScope{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "payments"}}})
	var denied string
	eventually(t, 30*time.Second, func() error {
		_, denied, err = apply(t, trainingDeployment(ns, "train-xl", 3), "--dry-run=server")
		if err == nil {
			return fmt.Errorf("admitted (the Budget cache): %s", denied)
		}
		return nil
	})
	wantDeny := "[budget/budgets/team] this adds $87.79/month; team=payments is forecast at $118.52 of its $150.00 monthly budget (budgets/team), $206.31 with this change"
	if !strings.Contains(denied, wantDeny) {
		t.Errorf("dry-run denial:\n%s\nwant %s", denied, wantDeny)
	}
	if _, denied, err = apply(t, trainingDeployment(ns, "train-xl", 3)); err == nil || !strings.Contains(denied, wantDeny) {
		t.Errorf("denial: %v\n%s", err, denied)
	}
	if err := env.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "train-xl"}, &appsv1.Deployment{}); err == nil {
		t.Error("the denied Deployment exists")
	}

	// Scaling the admitted Deployment down saves money: never stopped.
	if _, stderr, err := apply(t, trainingDeployment(ns, "train", 1)); err != nil || strings.Contains(stderr, "budget/") {
		t.Errorf("scale-down: %v\n%s", err, stderr)
	}
}
