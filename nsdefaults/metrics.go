package nsdefaults

import "github.com/prometheus/client_golang/prometheus"

// Metrics count what the controller did to generated objects, by kind.
type Metrics struct {
	applied, deleted, failed, drift *prometheus.CounterVec
}

// NewMetrics registers the controller's series with reg (nil: none).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_namespace_defaults_applied_total",
			Help: "Generated namespace defaults created or brought up to date with server-side apply, by kind.",
		}, []string{"kind"}),
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_namespace_defaults_deleted_total",
			Help: "Generated namespace defaults deleted because their namespace's profile no longer asks for them, by kind.",
		}, []string{"kind"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_namespace_defaults_failures_total",
			Help: "Generated namespace defaults that could not be built, applied or deleted, by kind (\"profile\" when the profile itself is invalid).",
		}, []string{"kind"}),
		drift: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_namespace_defaults_drift_corrections_total",
			Help: "Generated namespace defaults restored after someone edited or deleted them, by kind.",
		}, []string{"kind"}),
	}
	if reg != nil {
		reg.MustRegister(m.applied, m.deleted, m.failed, m.drift)
	}
	return m
}
