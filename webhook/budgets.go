package webhook

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/finops"
	"github.com/tollgate-dev/tollgate/finops/budget"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
)

// BudgetGate is budget-aware admission: it estimates the monthly cost a
// workload change adds and, for each Budget whose scope covers it, warns
// or denies (per the Budget's action) when the Budget's forecast plus the
// change would exceed its amount. It reads Budgets from the cache the
// scanner's status writes keep current, and sends nothing: a dry run is
// judged the same, with no side effect.
type BudgetGate struct {
	// Budgets lists the Budgets (from an informer cache).
	Budgets client.Reader
	// Estimator prices workloads with the same catalogue as the scanner.
	Estimator *finops.Estimator
}

// Check returns the findings of one request: one per Budget the change
// would take over its amount. Changes that save money, and kinds that cost
// nothing, find nothing.
func (g *BudgetGate) Check(ctx context.Context, in *policies.Input, ns string) ([]policies.Finding, error) {
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
	if in.Namespace != nil {
		if meta, ok := in.Namespace["metadata"].(map[string]any); ok {
			nsLabels = stringMap(meta["labels"])
		}
	}
	podLabels := templateLabels(in.Object)
	added := change.Monthly.Total
	cur := g.Estimator.Currency()
	var out []policies.Finding
	for i := range list.Items {
		b := &list.Items[i]
		if b.Spec.Action == v1alpha1.BudgetActionNone || !covers(b, ns, nsLabels, podLabels) {
			continue
		}
		amount, err := budget.ParseAmount(b.Spec.Amount)
		if err != nil || amount <= 0 {
			continue
		}
		forecast, _ := strconv.ParseFloat(b.Status.Forecast, 64)
		if forecast+added <= amount {
			continue
		}
		who := "namespace " + ns
		if sel := b.Spec.Scope.Selector; sel != nil {
			who = metav1.FormatLabelSelector(sel)
		} else if b.Spec.Scope.Namespace != "" {
			who = "namespace " + b.Spec.Scope.Namespace
		}
		period := b.Spec.Period
		if period == "" {
			period = v1alpha1.PeriodMonthly
		}
		msg := fmt.Sprintf("this adds %s/month; %s is forecast at %s of its %s %s budget (%s/%s), %s with this change",
			amountText(added, cur), who, amountText(forecast, cur), amountText(amount, cur), period, b.Namespace, b.Name, amountText(forecast+added, cur))
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

// covers reports whether a Budget's scope counts the object's pods.
func covers(b *v1alpha1.Budget, ns string, nsLabels, podLabels map[string]string) bool {
	if sel := b.Spec.Scope.Selector; sel != nil {
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil || s.Empty() {
			return false
		}
		set := labels.Set{}
		for k, v := range nsLabels {
			set[k] = v
		}
		for k, v := range podLabels {
			set[k] = v
		}
		return s.Matches(set)
	}
	scope := b.Spec.Scope.Namespace
	if scope == "" {
		scope = b.Namespace
	}
	return scope == ns
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

// amountText writes money for a person: $1,234.56, or 1,234.56 EUR.
func amountText(v float64, currency string) string {
	s := strconv.FormatFloat(v, 'f', 2, 64)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	for i, r := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	out := b.String() + "." + frac
	if neg {
		out = "-" + out
	}
	if currency == "USD" || currency == "" {
		return "$" + out
	}
	return out + " " + currency
}
