package budget

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Series the central Tollgate reads from the fleet Prometheus: each
// cluster's share of the Budgets across clusters, and when it last
// scanned. Each carries the cluster's name as the label cluster (see
// New's Registerer).
const (
	MetricShareHourly    = "tollgate_budget_share_hourly"
	MetricShareCommitted = "tollgate_budget_share_committed_hourly"
	MetricLastScan       = "tollgate_finops_last_scan_timestamp_seconds"
)

// scanMetrics are the scanner's series: spend per namespace, team and
// cost-center, each Budget's figures, and when the last scan ran.
type scanMetrics struct {
	hourly      *prometheus.GaugeVec
	spend       *prometheus.GaugeVec
	forecast    *prometheus.GaugeVec
	amount      *prometheus.GaugeVec
	utilization *prometheus.GaugeVec
	lastScan    prometheus.Gauge
	stale       prometheus.Gauge
	unpriced    prometheus.Gauge
	alerts      *prometheus.CounterVec
	share       *prometheus.GaugeVec
	committed   *prometheus.GaugeVec
}

func newScanMetrics(reg prometheus.Registerer) *scanMetrics {
	budget := []string{"namespace", "budget"}
	m := &scanMetrics{
		hourly: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tollgate_cost_hourly",
			Help: "Spend per hour at the last scan, by group (namespace, team, cost_center) and name, in the price catalogue's currency.",
		}, []string{"group", "name"}),
		spend: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tollgate_budget_spend",
			Help: "Spend to date in the Budget's current period.",
		}, budget),
		forecast: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tollgate_budget_forecast",
			Help: "Spend forecast at the end of the Budget's period, at the current rate.",
		}, budget),
		amount: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tollgate_budget_amount",
			Help: "The Budget's amount for one period.",
		}, budget),
		utilization: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tollgate_budget_utilization_ratio",
			Help: "Spend to date over the Budget's amount (1 is the whole budget).",
		}, budget),
		lastScan: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: MetricLastScan,
			Help: "When the last budget scan finished, as a Unix time.",
		}),
		stale: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tollgate_finops_usage_stale",
			Help: "1 when the last scan could not read usage from Prometheus (spend counted from requests, no alerts).",
		}),
		unpriced: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tollgate_finops_unpriced_objects",
			Help: "Governed objects (claims for cloud resources) the last scan could not price, so no Budget counts them; the Budgets' Priced condition names them.",
		}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_budget_alerts_total",
			Help: "Budget threshold alerts by result: delivered, or failed (retried on the next scans and counted in the Budget's status).",
		}, []string{"result"}),
		share: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricShareHourly,
			Help: "This cluster's spend per hour in the scope of a Budget across clusters (by the Budget's namespace and name), for the central Tollgate to sum.",
		}, budget),
		committed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricShareCommitted,
			Help: "The hourly cost of what this cluster admitted in the scope of a Budget across clusters and is not yet running.",
		}, budget),
	}
	reg.MustRegister(m.hourly, m.spend, m.forecast, m.amount, m.utilization, m.lastScan, m.stale, m.unpriced, m.alerts, m.share, m.committed)
	return m
}

// observe replaces the series with a scan's figures, so groups and
// Budgets that are gone drop out.
func (m *scanMetrics) observe(r *Report) {
	if m == nil {
		return
	}
	m.hourly.Reset()
	for group, gs := range map[string][]financeGroup{
		"namespace": groupsOf(r, "namespace"), "team": groupsOf(r, "team"), "cost_center": groupsOf(r, "cost_center"),
	} {
		for _, g := range gs {
			m.hourly.WithLabelValues(group, g.name).Set(g.hourly)
		}
	}
	for _, v := range []*prometheus.GaugeVec{m.spend, m.forecast, m.amount, m.utilization, m.share, m.committed} {
		v.Reset()
	}
	for _, sh := range r.Shares {
		m.share.WithLabelValues(sh.Namespace, sh.Name).Set(sh.Hourly)
		m.committed.WithLabelValues(sh.Namespace, sh.Name).Set(sh.Committed)
	}
	for _, b := range r.Budgets {
		if (b.Err != nil && b.Amount == 0) || b.Mirror {
			continue
		}
		m.spend.WithLabelValues(b.Namespace, b.Name).Set(b.Spend)
		m.forecast.WithLabelValues(b.Namespace, b.Name).Set(b.Forecast)
		m.amount.WithLabelValues(b.Namespace, b.Name).Set(b.Amount)
		if b.Amount > 0 {
			m.utilization.WithLabelValues(b.Namespace, b.Name).Set(b.Spend / b.Amount)
		}
		m.alerts.WithLabelValues("delivered").Add(float64(len(b.Alerted)))
		m.alerts.WithLabelValues("failed").Add(float64(len(b.Failed)))
	}
	m.lastScan.Set(float64(r.At.Unix()))
	if r.Tally != nil {
		m.unpriced.Set(float64(len(r.Tally.Unpriced)))
	}
	if r.Stale {
		m.stale.Set(1)
	} else {
		m.stale.Set(0)
	}
}

// forgetShares drops this replica's shares of Budgets across clusters.
func (m *scanMetrics) forgetShares() {
	if m != nil {
		m.share.Reset()
		m.committed.Reset()
	}
}

type financeGroup struct {
	name   string
	hourly float64
}

func groupsOf(r *Report, group string) []financeGroup {
	if r.Tally == nil {
		return nil
	}
	src := r.Tally.Namespaces
	switch group {
	case "team":
		src = r.Tally.Teams
	case "cost_center":
		src = r.Tally.CostCenters
	}
	out := make([]financeGroup, 0, len(src))
	for _, g := range src {
		out = append(out, financeGroup{g.Name, g.Hourly.Total})
	}
	return out
}
