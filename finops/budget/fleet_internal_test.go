package budget

import (
	"errors"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
)

func fleetBudget(clusters ...string) *v1alpha1.Budget {
	return &v1alpha1.Budget{Spec: v1alpha1.BudgetSpec{Scope: v1alpha1.BudgetScope{Clusters: clusters}}}
}

func TestFleetFigures(t *testing.T) {
	shares := []Share{{Cluster: "east", Hourly: 1, Committed: 0.5}, {Cluster: "edge", Hourly: 4}, {Cluster: "west", Hourly: 2}}
	hourly, committed, counted, missing := fleetFigures(fleetBudget("west", "east", "north", "north"), shares)
	if hourly != 3 || committed != 0.5 || len(counted) != 2 || strings.Join(missing, ",") != "north" {
		t.Errorf("named: %v %v %+v %v", hourly, committed, counted, missing)
	}
	cond := reportingCondition(3, counted, missing, nil)
	if cond.Status != metav1.ConditionFalse || cond.Reason != v1alpha1.ReasonNotReporting ||
		cond.Message != "no spend reported by north (an unknown cluster name, or its Tollgate is down or not scraped by the fleet Prometheus): not counted; counting east, west" {
		t.Errorf("condition %+v", cond)
	}
	hourly, _, counted, missing = fleetFigures(fleetBudget("*"), shares)
	if hourly != 7 || len(counted) != 3 || len(missing) != 0 {
		t.Errorf("every cluster: %v %+v %v", hourly, counted, missing)
	}
	if c := reportingCondition(1, counted, nil, nil); c.Status != metav1.ConditionTrue || c.Message != "counting east, edge, west" {
		t.Errorf("condition %+v", c)
	}
	if c := reportingCondition(1, nil, nil, errors.New("connection refused")); c.Reason != v1alpha1.ReasonFleetUnreachable || !strings.Contains(c.Message, "connection refused") {
		t.Errorf("unreachable: %+v", c)
	}
	if c := reportingCondition(1, nil, nil, nil); c.Status != metav1.ConditionFalse {
		t.Errorf("nothing reported: %+v", c)
	}
}

func TestSpansCluster(t *testing.T) {
	for _, c := range []struct {
		clusters []string
		name     string
		want     bool
	}{
		{[]string{"east"}, "east", true},
		{[]string{"east"}, "west", false},
		{[]string{"*"}, "west", true},
		{[]string{"*"}, "", false}, // a Tollgate without a name is in no fleet
		{nil, "east", false},
	} {
		if got := SpansCluster(fleetBudget(c.clusters...), c.name); got != c.want {
			t.Errorf("SpansCluster(%v, %q) = %v", c.clusters, c.name, got)
		}
	}
}
