package budget

import (
	"context"
	"fmt"
	"strconv"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/finops"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
)

// Gate is budget-aware admission: it estimates the monthly cost a
// workload change adds and, for each Budget whose scope covers it, warns
// or denies (per the Budget's action) when the Budget's forecast plus the
// change would exceed its amount. It reads Budgets from the cache the
// scanner's status writes keep current, and sends nothing: a dry run is
// judged the same, with no side effect.
type Gate struct {
	// Budgets lists the Budgets (from an informer cache).
	Budgets client.Reader
	// Estimator prices workloads with the same catalogue as the scanner.
	Estimator *finops.Estimator
}

// Evaluate implements the review core's Evaluator: the findings of one
// change, one per Budget it would take over its amount. Budgets are advice
// about money, not safety: Budgets that cannot be read give a warning,
// never a reason to stop the cluster's changes.
func (g *Gate) Evaluate(ctx context.Context, in *policies.Input) *policies.Decision {
	found, err := g.Check(ctx, in)
	if err != nil {
		found = []policies.Finding{{Policy: "budget", Action: policies.ActionWarn, Severity: policies.SeverityLow,
			Message: "the cost of this change could not be checked against budgets: " + err.Error()}}
	}
	return &policies.Decision{Findings: found}
}

// Check returns the findings of one change: one per Budget the change
// would take over its amount. Changes that save money, and kinds that cost
// nothing, find nothing.
func (g *Gate) Check(ctx context.Context, in *policies.Input) ([]policies.Finding, error) {
	if g == nil || in.Object == nil || in.SubResource != "" {
		return nil, nil
	}
	change, err := g.Estimator.EstimateChange(in.OldObject, in.Object)
	if err != nil || change.Monthly.Total <= 0 {
		return nil, nil //nolint:nilerr // an object that cannot be priced is judged by the other policies and the API server
	}
	var list v1alpha1.BudgetList
	if err := g.Budgets.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("reading Budgets: %w", err)
	}
	var nsLabels map[string]string
	if meta, ok := in.Namespace["metadata"].(map[string]any); ok {
		nsLabels = stringMap(meta["labels"])
	}
	ns := in.ObjectNamespace()
	podLabels := templateLabels(in.Object)
	added := change.Monthly.Total
	cur := g.Estimator.Currency()
	money := func(v float64) string { return finops.Money(v, cur, finops.Cents) }
	var out []policies.Finding
	for i := range list.Items {
		b := &list.Items[i]
		if b.Spec.Action == v1alpha1.BudgetActionNone {
			continue
		}
		scope, err := ScopeOf(b)
		if err != nil || !scope.Covers(ns, nsLabels, podLabels) {
			continue
		}
		amount, err := ParseAmount(b.Spec.Amount)
		if err != nil || amount <= 0 {
			continue
		}
		forecast, _ := strconv.ParseFloat(b.Status.Forecast, 64)
		if forecast+added <= amount {
			continue
		}
		period := b.Spec.Period
		if period == "" {
			period = v1alpha1.PeriodMonthly
		}
		msg := fmt.Sprintf("this adds %s/month; %s is forecast at %s of its %s %s budget (%s/%s), %s with this change",
			money(added), scope, money(forecast), money(amount), period, b.Namespace, b.Name, money(forecast+added))
		action := policies.ActionWarn
		if b.Spec.Action == v1alpha1.BudgetActionDeny {
			action = policies.ActionEnforce
		}
		out = append(out, policies.Finding{
			Policy: "budget/" + b.Namespace + "/" + b.Name, Title: "Changes stay within the budget",
			Message: msg, Severity: policies.SeverityMedium, Action: action,
			Remediation: "Lower the replicas or requests, or raise the Budget " + b.Namespace + "/" + b.Name + " with the team's FinOps owner.",
		})
	}
	return out, nil
}

// templateLabels are the labels the object's pods will carry: a pod's own,
// or its template's (CronJob: the job template's pod template).
func templateLabels(obj map[string]any) map[string]string {
	cur := obj
	for _, path := range [][]string{{"spec", "jobTemplate", "spec", "template"}, {"spec", "template"}} {
		if m := dig(obj, path); m != nil {
			cur = m
			break
		}
	}
	meta, _ := cur["metadata"].(map[string]any)
	return stringMap(meta["labels"])
}

func dig(obj map[string]any, path []string) map[string]any {
	cur := obj
	for _, k := range path {
		next, ok := cur[k].(map[string]any)
		if !ok {
			return nil
		}
		cur = next
	}
	return cur
}

func stringMap(v any) map[string]string {
	m, _ := v.(map[string]any)
	out := make(map[string]string, len(m))
	for k, v := range m {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}
