package alerts

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts deliveries in Prometheus, so that alerts that never
// reached a team show on a dashboard rather than only in a Budget's
// status. It is an Observer.
type Metrics struct {
	alerts   *prometheus.CounterVec
	attempts *prometheus.CounterVec
}

var _ Observer = (*Metrics)(nil)

// NewMetrics registers the series with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_budget_alert_deliveries_total",
			Help: "Budget alert deliveries by channel type and result (delivered, failed), and whether the failure was permanent.",
		}, []string{"type", "result", "permanent"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_budget_alert_attempts_total",
			Help: "POSTs made to deliver budget alerts, by channel type; above the alerts count, receivers are failing and being retried.",
		}, []string{"type"}),
	}
	reg.MustRegister(m.alerts, m.attempts)
	return m
}

// ObserveDelivery counts one delivery.
func (m *Metrics) ObserveDelivery(r Result) {
	result := "failed"
	if r.Delivered {
		result = "delivered"
	}
	m.alerts.WithLabelValues(string(r.Type), result, strconv.FormatBool(r.Permanent)).Inc()
	m.attempts.WithLabelValues(string(r.Type)).Add(float64(r.Attempts))
}
