package budget

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestPeriods(t *testing.T) {
	for _, tc := range []struct{ kind, now, start, end string }{
		{"monthly", "2026-11-21T15:04:05Z", "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"},
		{"", "2026-12-31T23:59:59Z", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"weekly", "2026-11-21T15:04:05Z", "2026-11-16T00:00:00Z", "2026-11-23T00:00:00Z"},      // a Saturday
		{"weekly", "2026-11-16T00:00:00Z", "2026-11-16T00:00:00Z", "2026-11-23T00:00:00Z"},      // Monday itself
		{"weekly", "2026-11-22T23:00:00-05:00", "2026-11-23T00:00:00Z", "2026-11-30T00:00:00Z"}, // Monday in UTC
	} {
		start, end := Period(tc.kind, at(tc.now))
		if !start.Equal(at(tc.start)) || !end.Equal(at(tc.end)) {
			t.Errorf("%s %s: %s .. %s, want %s .. %s", tc.kind, tc.now, start, end, tc.start, tc.end)
		}
	}
}

func TestLedgerAcrossScansAndRestarts(t *testing.T) {
	b := &v1alpha1.Budget{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(at("2026-10-20T00:00:00Z"))},
		Spec: v1alpha1.BudgetSpec{Amount: "1000", Period: "monthly"}}
	now := at("2026-11-11T00:00:00Z")
	l, err := LedgerFromStatus(b, now)
	if err != nil {
		t.Fatal(err)
	}
	// A new period counts from its start: 10 days at $2/h = $480.
	l.Accrue(2, now)
	if l.Spend != 480 {
		t.Fatalf("spend %g, want 480", l.Spend)
	}
	// Forecast: 480 + 20 days × 24 h × $2 = 1440.
	if f := l.Forecast(2, now); f != 1440 {
		t.Errorf("forecast %g, want 1440", f)
	}
	if due := l.Due(1000, nil); len(due) != 0 {
		t.Errorf("due %v at 48%%", due)
	}
	// Persisted as the scanner writes it, then read back after a restart
	// six hours later: nothing lost, nothing counted twice.
	b.Status = v1alpha1.BudgetStatus{PeriodStart: &metav1.Time{Time: l.PeriodStart}, Spend: "480", LastScanTime: &metav1.Time{Time: now}}
	later := now.Add(6 * time.Hour)
	l2, err := LedgerFromStatus(b, later)
	if err != nil {
		t.Fatal(err)
	}
	l2.Accrue(4, later)
	if l2.Spend != 480+24 {
		t.Errorf("after a restart: spend %g, want 504", l2.Spend)
	}
	// Scanning twice at the same instant adds nothing; a clock that went
	// back adds nothing.
	l2.Accrue(4, later)
	l2.Accrue(4, later.Add(-time.Hour))
	if l2.Spend != 504 {
		t.Errorf("spend %g after repeated scans, want 504", l2.Spend)
	}
	// Thresholds: at 60 % the 50 % one is due, once.
	l2.Spend = 600
	if due := l2.Due(1000, nil); !slices.Equal(due, []int32{50}) {
		t.Errorf("due %v at 60%%, want [50]", due)
	}
	l2.Alerted = append(l2.Alerted, v1alpha1.BudgetAlert{Threshold: 50})
	l2.Spend = 1200
	if due := l2.Due(1000, []int32{100, 80, 50}); !slices.Equal(due, []int32{80, 100}) {
		t.Errorf("due %v at 120%%, want [80 100]", due)
	}
	if u := l2.Undelivered(); !slices.Equal(u, []int32{50}) {
		t.Errorf("undelivered %v", u)
	}
	// The next month starts afresh.
	l3, err := LedgerFromStatus(b, at("2026-12-01T01:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	l3.Accrue(3, at("2026-12-01T01:00:00Z"))
	if l3.Spend != 3 || len(l3.Alerted) != 0 {
		t.Errorf("new period: spend %g alerted %v", l3.Spend, l3.Alerted)
	}
	// Accrual stops at the period's end.
	l.Accrue(1, at("2026-12-05T00:00:00Z"))
	if want := 480 + 20*24.0; math.Abs(l.Spend-want) > 1e-9 {
		t.Errorf("spend past the period end %g, want %g", l.Spend, want)
	}
}

func TestLedgerBadStatusAndCreationMidPeriod(t *testing.T) {
	now := at("2026-11-21T00:00:00Z")
	b := &v1alpha1.Budget{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(at("2026-11-20T00:00:00Z"))},
		Spec: v1alpha1.BudgetSpec{Amount: "10"}}
	l, err := LedgerFromStatus(b, now)
	if err != nil {
		t.Fatal(err)
	}
	l.Accrue(1, now)
	if l.Spend != 24 {
		t.Errorf("a budget created yesterday counts from its creation: %g, want 24", l.Spend)
	}
	start, _ := Period("", now)
	b.Status = v1alpha1.BudgetStatus{PeriodStart: &metav1.Time{Time: start}, Spend: "a lot", LastScanTime: &metav1.Time{Time: now}}
	if _, err := LedgerFromStatus(b, now); err == nil {
		t.Error("a malformed status.spend was accepted")
	}
	for _, bad := range []string{"", "-1", "1e13", "five", "NaN"} {
		if _, err := ParseAmount(bad); err == nil {
			t.Errorf("amount %q accepted", bad)
		}
	}
}

// TestLedgerRoundTripsThroughStatus: scans at odd fractions of a second,
// each reading the ledger back from the status as written to the API
// server (times in whole seconds, spend as a decimal string), count the
// Budget's life once: no fraction of a second twice, no cent lost to
// rounding.
func TestLedgerRoundTripsThroughStatus(t *testing.T) {
	created := at("2026-11-11T00:00:00Z")
	b := &v1alpha1.Budget{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(created)},
		Spec: v1alpha1.BudgetSpec{Amount: "1000", Period: "monthly"}}
	const rate = 216.0 // $0.06 a second
	now := created
	for i := range 40 {
		now = now.Add(time.Second + time.Duration(i%7)*137*time.Millisecond)
		l, err := LedgerFromStatus(b, now)
		if err != nil {
			t.Fatal(err)
		}
		l.Accrue(rate, now)
		raw, err := json.Marshal(v1alpha1.BudgetStatus{PeriodStart: &metav1.Time{Time: l.PeriodStart},
			Spend: spendString(l.Spend), LastScanTime: &metav1.Time{Time: l.LastScan}})
		if err != nil {
			t.Fatal(err)
		}
		b.Status = v1alpha1.BudgetStatus{}
		if err := json.Unmarshal(raw, &b.Status); err != nil {
			t.Fatal(err)
		}
	}
	spend, err := strconv.ParseFloat(b.Status.Spend, 64)
	if err != nil {
		t.Fatal(err)
	}
	want := rate * b.Status.LastScanTime.Sub(created).Hours()
	if math.Abs(spend-want) > 1e-5 {
		t.Errorf("spend after 40 scans %s, want %.6f: time was counted twice or lost", b.Status.Spend, want)
	}
	if lag := now.Sub(b.Status.LastScanTime.Time); lag < 0 || lag >= time.Second {
		t.Errorf("last scan recorded %s before the scan: want less than a second", lag)
	}
}
