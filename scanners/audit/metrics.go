package audit

import (
	"github.com/prometheus/client_golang/prometheus"
)

// auditMetrics are the audit's series.
type auditMetrics struct {
	scanned    *prometheus.GaugeVec
	violations *prometheus.GaugeVec
	duration   prometheus.Histogram
	lastScan   prometheus.Gauge
	errors     prometheus.Gauge
}

func newAuditMetrics(reg prometheus.Registerer) *auditMetrics {
	m := &auditMetrics{
		scanned: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tollgate_audit_resources_scanned",
			Help: "Objects judged by the last audit scan, by kind.",
		}, []string{"kind"}),
		violations: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tollgate_audit_violations",
			Help: "Findings of the last audit scan, by policy, severity and action (waived for exceptions).",
		}, []string{"policy", "severity", "action"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tollgate_audit_scan_duration_seconds",
			Help:    "How long an audit scan took, listing and judging included.",
			Buckets: []float64{0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}),
		lastScan: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tollgate_audit_last_scan_timestamp_seconds",
			Help: "When the last audit scan finished, as a Unix time.",
		}),
		errors: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tollgate_audit_scan_errors",
			Help: "Kinds that could not be listed and policies that errored in the last audit scan.",
		}),
	}
	reg.MustRegister(m.scanned, m.violations, m.duration, m.lastScan, m.errors)
	return m
}

func (m *auditMetrics) observe(s *Scan) {
	if m == nil {
		return
	}
	m.scanned.Reset()
	for kind, n := range s.Scanned {
		m.scanned.WithLabelValues(kind).Set(float64(n))
	}
	m.violations.Reset()
	for _, results := range s.Results {
		for _, r := range results {
			action := string(r.Finding.Action)
			if r.Finding.Waived() {
				action = "waived"
			}
			m.violations.WithLabelValues(r.Finding.Policy, string(r.Finding.Severity), action).Inc()
		}
	}
	m.duration.Observe(s.Finished.Sub(s.Started).Seconds())
	m.lastScan.Set(float64(s.Finished.Unix()))
	m.errors.Set(float64(len(s.Errors)))
}
