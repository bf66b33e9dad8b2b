package budget

import (
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
)

// budgetSeeds are Budgets as users write them (the forms of the README and
// the e2e tests) and as the scanner leaves them, with their status.
var budgetSeeds = []string{
	"apiVersion: tollgate.dev/v1alpha1\nkind: Budget\nmetadata: {name: shop, namespace: shop}\nspec: {amount: '500', thresholds: [50, 80, 100], action: warn}\n",
	"metadata: {name: payments, namespace: finops}\nspec: {amount: '5000.50', period: weekly, scope: {selector: {matchLabels: {team: payments}}}, action: deny}\n",
	"metadata: {name: b, namespace: n}\nspec: {amount: '1', scope: {selector: {matchExpressions: [{key: cost-center, operator: In, values: [CC-1, CC-2]}, {key: tier, operator: DoesNotExist}]}}}\n",
	"metadata: {name: b, namespace: n}\nspec: {amount: '1', scope: {selector: {matchExpressions: [{key: a, operator: Exists, values: [x]}]}}}\n",
	"metadata: {name: b, namespace: n}\nspec: {amount: '1', scope: {selector: {}}}\n",
	"metadata: {name: b, namespace: n}\nspec: {amount: '1', scope: {namespace: other}}\n",
	"metadata: {name: b, namespace: n}\nspec: {amount: '1e12'}\nstatus: {periodStart: '2026-11-01T00:00:00Z', lastScanTime: '2026-11-20T00:00:00Z', spend: '12.5', alerted: [{threshold: 50, at: '2026-11-10T00:00:00Z', delivered: true}]}\n",
	"metadata: {name: b, namespace: n}\nspec: {amount: '10'}\nstatus: {periodStart: '2026-11-01T00:00:00Z', lastScanTime: '2026-11-20T00:00:00Z', spend: 'NaN'}\n",
	"metadata: {name: b, namespace: n}\nspec: {amount: '10'}\nstatus: {periodStart: '2026-11-01T00:00:00Z', lastScanTime: '2026-11-20T00:00:00Z', spend: '+Inf'}\n",
	"metadata: {name: b, namespace: n}\nspec: {amount: 'NaN'}\n",
	"metadata: {name: b, namespace: n, creationTimestamp: '2026-11-15T00:00:00Z'}\nspec: {amount: '-1', thresholds: [0, -5, 1000]}\n",
}

// FuzzBudget reads any bytes as a Budget and runs what the scanner and the
// admission gate do with one: compile its scope, read its amount, read its
// ledger back from its status, accrue, forecast and pick the thresholds
// due. Never a panic; each problem names its field; a scope's description
// reads back as a selector that selects the same labels; money stays
// finite and never negative; a forecast is never below the spend so far;
// due thresholds are the Budget's own, lowest first, and none alerted.
func FuzzBudget(f *testing.F) {
	for _, s := range budgetSeeds {
		f.Add([]byte(s), 0.042, int64(3600))
	}
	f.Add([]byte(budgetSeeds[6]), 1e9, int64(-1))
	f.Add([]byte(budgetSeeds[1]), math.MaxFloat64, int64(math.MaxInt64))
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, doc []byte, rate float64, seconds int64) {
		var b v1alpha1.Budget
		if err := sigsyaml.Unmarshal(doc, &b); err != nil {
			return // the API server's decoding, not Tollgate's
		}
		scope, err := ScopeOf(&b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "spec.scope.selector: ") {
				t.Fatalf("scope error does not name its field: %v", err)
			}
		} else {
			checkScope(t, &b, scope)
		}
		amount, err := ParseAmount(b.Spec.Amount)
		if err != nil {
			if !strings.Contains(err.Error(), "amount") {
				t.Fatalf("amount error does not name the amount: %v", err)
			}
			amount = 0
		} else if !finite(amount) {
			t.Fatalf("amount %q read as %v", b.Spec.Amount, amount)
		}
		l, err := LedgerFromStatus(&b, now)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "status.") {
				t.Fatalf("ledger error does not name its field: %v", err)
			}
			return
		}
		if !finite(l.Spend) {
			t.Fatalf("status.spend %q read as %v", b.Status.Spend, l.Spend)
		}
		// The scanner's rates come from the cost model: finite, not negative.
		if !finite(rate) {
			rate = 0
		}
		rate = math.Min(rate, 1e9)
		later := now.Add(time.Duration(seconds) * time.Second)
		before := l.Spend
		l.Accrue(rate, later)
		if !finite(l.Spend) || l.Spend < before {
			t.Fatalf("accruing %v/h until %s: spend %v -> %v", rate, later, before, l.Spend)
		}
		forecast := l.Forecast(rate, later)
		if !finite(forecast) || forecast < l.Spend {
			t.Fatalf("forecast %v with spend %v", forecast, l.Spend)
		}
		due := l.Due(amount, b.Spec.Thresholds)
		want := b.Spec.Thresholds
		if len(want) == 0 {
			want = DefaultThresholds
		}
		if !slices.IsSorted(due) {
			t.Fatalf("due thresholds out of order: %v", due)
		}
		for _, d := range due {
			if !slices.Contains(want, d) || slices.ContainsFunc(l.Alerted, func(a v1alpha1.BudgetAlert) bool { return a.Threshold == d }) {
				t.Fatalf("threshold %d due, of %v, alerted %v", d, want, l.Alerted)
			}
		}
	})
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) && v >= 0 }

// checkScope checks a compiled scope against its description: a selector's
// String parses back into a selector that selects the same label sets
// (probed with the labels the selector names, with and without each), and
// a namespace scope covers its namespace and no other.
func checkScope(t *testing.T, b *v1alpha1.Budget, s Scope) {
	t.Helper()
	if s.Selector == nil {
		want := b.Spec.Scope.Namespace
		if want == "" {
			want = b.Namespace
		}
		if !s.Covers(want, nil, nil) || s.Covers(want+"-other", nil, nil) || s.String() != "namespace "+want {
			t.Fatalf("namespace scope %q of %q", s, want)
		}
		return
	}
	back, err := labels.Parse(s.String())
	if err != nil {
		t.Fatalf("scope %q does not parse back: %v", s, err)
	}
	reqs, _ := s.Selector.Requirements()
	probes := []map[string]string{{}}
	for _, r := range reqs {
		vals := append(r.Values().List(), "", "other")
		for _, v := range vals {
			probes = append(probes, map[string]string{r.Key(): v})
			all := map[string]string{}
			for _, q := range reqs {
				all[q.Key()] = v
				if q.Values().Len() > 0 {
					all[q.Key()] = q.Values().List()[0]
				}
			}
			probes = append(probes, all)
		}
	}
	for _, p := range probes {
		if got, want := back.Matches(labels.Set(p)), s.Covers("ns", nil, p); got != want {
			t.Fatalf("scope %q covers %v: %v, parsed back: %v", s, p, want, got)
		}
		// The namespace's labels count as the object's when it carries
		// the same or none (a namespace label with no value counts as none).
		if slices.Contains(slices.Collect(maps.Values(p)), "") {
			continue
		}
		if got, want := s.Covers("ns", p, nil), s.Covers("ns", p, p); got != want {
			t.Fatalf("scope %q: labels %v on the namespace alone %v, on both %v", s, p, got, want)
		}
	}
}
