package console

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/tollgate-dev/tollgate/finops"
	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
)

// Bounds of the spend over time: a cluster of many Budgets, or a
// Prometheus answering more than was asked, cannot make the page slow or
// large.
const (
	// maxTrends is how many Budgets get a chart (the first, in the
	// table's order).
	maxTrends = 20
	// maxPoints is the most points of one chart: the query's step is the
	// period so far divided by it, rounded up to a minute.
	maxPoints = 200
	// maxPeriod is the longest period drawn (a calendar month).
	maxPeriod = 31 * 24 * time.Hour
	// maxPromBody bounds the bytes read of one Prometheus answer (the
	// series of the Budgets asked for are a few hundred kilobytes; an
	// answer cut short fails and the page says so).
	maxPromBody = 16 << 20
)

// Trend is one Budget's spend to date over its current period, drawn as a
// line against its amount.
type Trend struct {
	// Points are the polyline's points ("x,y x,y ..."), N of them.
	Points string
	N      int
	// First and Last are the first and last samples, in the currency and
	// as text.
	First, Last         float64
	FirstText, LastText string
	FirstAt, LastAt     string
	// Amount is the Budget's amount (the last sample of
	// tollgate_budget_amount, else the Budget's own), AmountY its line.
	Amount     float64
	AmountText string
	AmountY    int
	// Over is set when the last sample is over the amount.
	Over bool
}

// trendW and trendH are a spend chart's plot area, in pixels.
const (
	trendW = 240
	trendH = 60
)

// budgetKey is a Budget's namespace and name.
type budgetKey struct{ namespace, name string }

// trendQuery is one Budget to chart: its period's start and its amount.
type trendQuery struct {
	key      budgetKey
	start    time.Time
	amount   float64
	currency string
}

// periodStart is when a Budget's current period began: its status's, else
// the calendar's (the 1st of the month, or Monday, 00:00 UTC), and never
// more than maxPeriod ago.
func periodStart(b *v1alpha1.Budget, now time.Time) time.Time {
	var start time.Time
	if ps := b.Status.PeriodStart; ps != nil && ps.Time.Before(now) {
		start = ps.UTC()
	} else {
		day := now.UTC().Truncate(24 * time.Hour)
		if b.Spec.Period == v1alpha1.PeriodWeekly {
			start = day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
		} else {
			start = time.Date(day.Year(), day.Month(), 1, 0, 0, 0, 0, time.UTC)
		}
	}
	if earliest := now.Add(-maxPeriod); start.Before(earliest) {
		return earliest
	}
	return start
}

// trendStep is the query's step for a window: at most maxPoints+1 points,
// in whole minutes.
func trendStep(window time.Duration) time.Duration {
	step := (window + maxPoints - 1) / maxPoints
	return max(time.Minute, (step + time.Minute - 1).Truncate(time.Minute))
}

// trends reads the spend and the amount of the Budgets asked for, all in
// one query_range from the earliest period's start to now, and draws each
// Budget's own period. Only the Budgets asked for (those the caller may
// read) are asked of Prometheus and kept from its answer; its label
// values are matched, never shown. The string is a note when there are no
// charts to draw.
func (s *Server) trends(ctx context.Context, want []trendQuery) (map[budgetKey]*Trend, string) {
	if s.prom == nil {
		return nil, "Give --prometheus to see the spend over time."
	}
	if len(want) == 0 {
		return nil, ""
	}
	end := s.opts.Now().UTC().Truncate(time.Second)
	start := end
	byKey := map[budgetKey]trendQuery{}
	var namespaces, names []string
	for _, q := range want {
		if q.start.Before(start) {
			start = q.start
		}
		byKey[q.key] = q
		namespaces = append(namespaces, regexp.QuoteMeta(q.key.namespace))
		names = append(names, regexp.QuoteMeta(q.key.name))
	}
	if !start.Before(end) {
		return nil, "The Budgets' periods have just begun."
	}
	slices.Sort(namespaces)
	slices.Sort(names)
	sel := fmt.Sprintf("{namespace=~%s,budget=~%s}",
		strconv.Quote(strings.Join(slices.Compact(namespaces), "|")), strconv.Quote(strings.Join(slices.Compact(names), "|")))
	query := fmt.Sprintf(`label_replace(max by (namespace, budget) (tollgate_budget_spend%s), "series", "spend", "", "")`+
		` or label_replace(max by (namespace, budget) (tollgate_budget_amount%s), "series", "amount", "", "")`, sel, sel)
	val, _, _, err := s.prom.QueryRange(ctx, query, promv1.Range{Start: start, End: end, Step: trendStep(end.Sub(start))})
	if err != nil {
		return nil, "Prometheus did not answer: " + err.Error()
	}
	m, _ := val.(model.Matrix)
	spend := map[budgetKey][]model.SamplePair{}
	amount := map[budgetKey]float64{}
	for _, ss := range m {
		k := budgetKey{string(ss.Metric["namespace"]), string(ss.Metric["budget"])}
		q, ok := byKey[k]
		if !ok {
			continue
		}
		values := ss.Values[:min(len(ss.Values), maxPoints+1)]
		switch ss.Metric["series"] {
		case "spend":
			for _, p := range values {
				if !p.Timestamp.Time().Before(q.start) && sane(float64(p.Value)) {
					spend[k] = append(spend[k], p)
				}
			}
		case "amount":
			for _, p := range slices.Backward(values) {
				if sane(float64(p.Value)) {
					amount[k] = float64(p.Value)
					break
				}
			}
		}
	}
	out := map[budgetKey]*Trend{}
	for k, points := range spend {
		q := byKey[k]
		if a, ok := amount[k]; ok {
			q.amount = a
		}
		out[k] = draw(points, q, end)
	}
	if len(out) == 0 {
		return nil, "Prometheus holds no tollgate_budget_spend for these Budgets in their current periods."
	}
	return out, ""
}

// sane is a value a chart can draw: a finite amount of money, not
// negative.
func sane(f float64) bool {
	return !math.IsNaN(f) && !math.IsInf(f, 0) && f >= 0 && f <= 1e15
}

// draw scales a Budget's samples to a chart: time from its period's start
// to now, money from 0 to a tenth above the largest of its spend and its
// amount.
func draw(points []model.SamplePair, q trendQuery, end time.Time) *Trend {
	top := q.amount
	for _, p := range points {
		top = max(top, float64(p.Value))
	}
	top *= 1.1
	span := end.Sub(q.start).Seconds()
	y := func(v float64) int {
		if top <= 0 {
			return trendH
		}
		return trendH - int(math.Round(v/top*trendH))
	}
	var b strings.Builder
	for i, p := range points {
		x := 0.0
		if span > 0 {
			x = p.Timestamp.Time().Sub(q.start).Seconds() / span * trendW
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d,%d", int(math.Round(min(max(x, 0), trendW))), y(float64(p.Value)))
	}
	first, last := points[0], points[len(points)-1]
	money := func(v float64) string { return finops.Money(v, q.currency, finops.Cents) }
	at := func(p model.SamplePair) string { return p.Timestamp.Time().UTC().Format("Jan 2 15:04") }
	t := &Trend{Points: b.String(), N: len(points),
		First: float64(first.Value), Last: float64(last.Value), FirstAt: at(first), LastAt: at(last),
		Amount: q.amount, AmountY: y(q.amount)}
	t.FirstText, t.LastText, t.AmountText = money(t.First), money(t.Last), money(t.Amount)
	t.Over = q.amount > 0 && t.Last > q.amount
	return t
}

// limitBody is a RoundTripper that reads at most n bytes of an answer's
// body: what follows is cut, and the answer fails to parse.
type limitBody struct {
	rt http.RoundTripper
	n  int64
}

func (l limitBody) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.rt.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.LimitReader(resp.Body, l.n), resp.Body}
	return resp, nil
}
