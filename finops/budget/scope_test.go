package budget

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
)

// A workload's own team or cost-center label cannot take it out of, or
// put it into, a selector Budget that names its namespace's: the
// namespace's value is the one of record. Keys the namespace does not set
// are read from the workload.
func TestScopeCoversLabelsOfRecord(t *testing.T) {
	selector := func(ml map[string]string) *v1alpha1.Budget {
		b := &v1alpha1.Budget{}
		b.Namespace = "finance"
		b.Spec.Scope.Selector = &metav1.LabelSelector{MatchLabels: ml}
		return b
	}
	payments := map[string]string{"team": "payments", "cost-center": "cc-1234"}
	tests := []struct {
		name      string
		budget    *v1alpha1.Budget
		ns, obj   map[string]string
		wantCover bool
	}{
		{"own team label does not step out", selector(map[string]string{"team": "payments"}), payments, map[string]string{"team": "search"}, true},
		{"own cost-center label does not step out", selector(map[string]string{"cost-center": "cc-1234"}), payments, map[string]string{"cost-center": "cc-9999"}, true},
		{"another team's label does not step in", selector(map[string]string{"team": "search"}), payments, map[string]string{"team": "search"}, false},
		{"namespace value inherited", selector(map[string]string{"team": "payments"}), payments, nil, true},
		{"key the namespace does not set is the workload's", selector(map[string]string{"app": "api"}), payments, map[string]string{"app": "api"}, true},
		{"empty namespace value is not set", selector(map[string]string{"team": "search"}), map[string]string{"team": ""}, map[string]string{"team": "search"}, true},
		{"look-alike value is another value", selector(map[string]string{"team": "payments"}), map[string]string{"team": "payments "}, nil, false},
		{"namespace scope ignores labels", &v1alpha1.Budget{ObjectMeta: metav1.ObjectMeta{Namespace: "payments"}}, payments, map[string]string{"team": "x"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ScopeOf(tc.budget)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Covers("payments", tc.ns, tc.obj); got != tc.wantCover {
				t.Errorf("Covers(ns %v, object %v) = %v, want %v (scope %s)", tc.ns, tc.obj, got, tc.wantCover, s)
			}
		})
	}
}
