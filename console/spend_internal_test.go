package console

import (
	"math"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
)

// A chart draws money only: NaN, infinities and negative values from
// Prometheus are left out.
func TestSpendChartsDrawSaneValuesOnly(t *testing.T) {
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), -0.01, 2e15} {
		if sane(v) {
			t.Errorf("sane(%v)", v)
		}
	}
	for _, v := range []float64{0, 0.01, 850, 999999999999.9999} {
		if !sane(v) {
			t.Errorf("!sane(%v)", v)
		}
	}
}

// The step keeps a chart to at most 201 points, in whole minutes; the
// period starts at the status's start, else the calendar's, and never
// more than 31 days ago.
func TestSpendChartsAreBounded(t *testing.T) {
	for _, c := range []struct {
		window, step time.Duration
	}{{time.Minute, time.Minute}, {48 * time.Hour, 15 * time.Minute}, {31 * 24 * time.Hour, 224 * time.Minute}, {200 * time.Minute, time.Minute}} {
		if got := trendStep(c.window); got != c.step || int(c.window/got)+1 > maxPoints+1 {
			t.Errorf("trendStep(%v) = %v, want %v", c.window, got, c.step)
		}
	}
	now := time.Date(2026, 12, 6, 6, 35, 0, 0, time.UTC) // a Sunday
	b := &v1alpha1.Budget{}
	if got := periodStart(b, now); !got.Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("monthly: %v", got)
	}
	b.Spec.Period = v1alpha1.PeriodWeekly
	if got := periodStart(b, now); !got.Equal(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("weekly: %v", got)
	}
	old := metav1.NewTime(now.AddDate(0, -3, 0))
	b.Status.PeriodStart = &old
	if got := periodStart(b, now); !got.Equal(now.Add(-maxPeriod)) {
		t.Errorf("a period of three months: %v", got)
	}
}
