// Package budget keeps Budgets: the scanner that adds each scope's spend
// to its Budget's status as time passes, forecasts the period's end,
// alerts the team's channel once per threshold and period, and exports the
// figures as Prometheus series; and the estimate the admission webhook
// checks a change against. Spend to date lives in the Budget's status, so
// a restart or a new leader continues the period where it stopped.
package budget

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
)

// DefaultThresholds alert at half, four fifths and all of a budget.
var DefaultThresholds = []int32{50, 80, 100}

// Period returns the period of a Budget that contains t: a calendar month,
// or a week from Monday 00:00, in UTC.
func Period(kind string, t time.Time) (start, end time.Time) {
	t = t.UTC()
	if kind == v1alpha1.PeriodWeekly {
		day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		offset := (int(day.Weekday()) + 6) % 7 // Monday is 0
		start = day.AddDate(0, 0, -offset)
		return start, start.AddDate(0, 0, 7)
	}
	start = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	return start, start.AddDate(0, 1, 0)
}

// ParseAmount reads a decimal amount ("5000", "1250.50").
func ParseAmount(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || !(v >= 0 && v <= 1e12) { // NaN fails both
		return 0, fmt.Errorf("amount %q: want a decimal between 0 and 1e12", s)
	}
	return v, nil
}

// Ledger is a Budget's account for one period, as kept in its status.
type Ledger struct {
	PeriodStart, PeriodEnd time.Time
	// Spend is the spend to date; LastScan when it was last added to.
	Spend    float64
	LastScan time.Time
	// Alerted are the thresholds alerted this period.
	Alerted []v1alpha1.BudgetAlert
}

// LedgerFromStatus reads the ledger back from a Budget's status. A status
// of another period (or none) starts the current period afresh, counting
// from the period start, or from the Budget's creation if it came later:
// spend before a Budget existed is not known to it.
func LedgerFromStatus(b *v1alpha1.Budget, now time.Time) (Ledger, error) {
	start, end := Period(b.Spec.Period, now)
	st := b.Status
	if st.PeriodStart != nil && st.PeriodStart.Time.Equal(start) && st.LastScanTime != nil {
		spend := 0.0
		if st.Spend != "" {
			var err error
			// NaN and Inf parse; they are no spend (NaN fails both tests).
			if spend, err = strconv.ParseFloat(st.Spend, 64); err != nil || !(spend >= 0 && spend <= math.MaxFloat64) {
				return Ledger{}, fmt.Errorf("status.spend %q is not a decimal", st.Spend)
			}
		}
		return Ledger{PeriodStart: start, PeriodEnd: end, Spend: spend, LastScan: st.LastScanTime.Time, Alerted: slices.Clone(st.Alerted)}, nil
	}
	from := start
	if created := b.CreationTimestamp.Time; created.After(from) {
		from = created
	}
	return Ledger{PeriodStart: start, PeriodEnd: end, LastScan: from}, nil
}

// Accrue adds the spend since the last scan at an hourly rate. Time
// before the last scan is never counted twice, and time after now never
// at all; a clock that went back adds nothing. Spend is counted in whole
// seconds, the precision status.lastScanTime keeps: the fraction of a
// second past the last whole one is left for the next scan, which reads
// its start back from the status and would otherwise count it again.
func (l *Ledger) Accrue(rate float64, now time.Time) {
	now = now.Truncate(time.Second)
	if now.After(l.PeriodEnd) {
		now = l.PeriodEnd
	}
	if rate > 0 && now.After(l.LastScan) {
		l.Spend += rate * now.Sub(l.LastScan).Hours()
	}
	if now.After(l.LastScan) {
		l.LastScan = now
	}
}

// Forecast is the spend at the period's end if the rate holds.
func (l *Ledger) Forecast(rate float64, now time.Time) float64 {
	left := l.PeriodEnd.Sub(now).Hours()
	if left < 0 {
		left = 0
	}
	return l.Spend + rate*left
}

// Due returns the thresholds the spend has reached that were not alerted
// yet this period, lowest first.
func (l *Ledger) Due(amount float64, thresholds []int32) []int32 {
	if len(thresholds) == 0 {
		thresholds = DefaultThresholds
	}
	var due []int32
	for _, t := range thresholds {
		if amount <= 0 || l.Spend < amount*float64(t)/100 {
			continue
		}
		if slices.ContainsFunc(l.Alerted, func(a v1alpha1.BudgetAlert) bool { return a.Threshold == t }) {
			continue
		}
		due = append(due, t)
	}
	slices.Sort(due)
	return due
}

// Undelivered returns the thresholds alerted but not yet delivered, to
// try again.
func (l *Ledger) Undelivered() []int32 {
	var out []int32
	for _, a := range l.Alerted {
		if !a.Delivered {
			out = append(out, a.Threshold)
		}
	}
	return out
}
