package webhook

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/policies/imagesig"
)

// Metrics are the webhook's Prometheus series. Dry-run requests are counted
// under dry_run="true" only, so the series of real admissions never include
// them, and violations are counted for real admissions only.
type Metrics struct {
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	policyTime *prometheus.HistogramVec
	violations *prometheus.CounterVec
	errors     *prometheus.CounterVec
	reloads    *prometheus.CounterVec
	loaded     prometheus.Gauge
	inFlight   *prometheus.GaugeVec
	images     *prometheus.CounterVec
	// unauthenticated, caReloads, logErrors and rejected count what the
	// gate refused and what the decision log lost.
	unauthenticated *prometheus.CounterVec
	caReloads       *prometheus.CounterVec
	logErrors       prometheus.Counter
	rejected        *prometheus.CounterVec
	// deployments and leadTime measure deployment frequency and the
	// lead time from commit to admission.
	deployments *prometheus.CounterVec
	leadTime    *prometheus.HistogramVec
}

// NewMetrics registers the series with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_admission_requests_total",
			Help: "Admission requests by webhook, operation, kind and decision (allowed, denied, warned, patched, error).",
		}, []string{"webhook", "operation", "kind", "decision", "dry_run"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tollgate_admission_duration_seconds",
			Help:    "Time to answer an admission request, from body read to response written.",
			Buckets: []float64{0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
		}, []string{"webhook", "dry_run"}),
		policyTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tollgate_policy_evaluation_seconds",
			Help:    "Evaluation time of each policy on its own, sampled from real requests.",
			Buckets: []float64{0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.025, 0.1, 1},
		}, []string{"policy"}),
		violations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_violations_total",
			Help: "Policy violations found in real admissions, by policy and action (enforce, warn, audit, waived).",
		}, []string{"policy", "action"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_policy_errors_total",
			Help: "Policies that errored, panicked or timed out on a request.",
		}, []string{"policy"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_reloads_total",
			Help: "Reloads of policies, config and exceptions from the cluster, by result.",
		}, []string{"result"}),
		loaded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tollgate_policies_loaded",
			Help: "Policies in force.",
		}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tollgate_admission_in_flight",
			Help: "Admission requests being answered now, by webhook; what a shutdown drains.",
		}, []string{"webhook"}),
		images: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_image_verifications_total",
			Help: "Image verifications by image policy and result: verified, failed, unmatched, cached (a verdict from the cache) or error (the registry could not be asked).",
		}, []string{"policy", "result"}),
		unauthenticated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_admission_unauthenticated_total",
			Help: "Requests to an admission endpoint refused before review because the client certificate was missing (no_certificate), did not verify against the client CA (untrusted) or named no allowed client (name).",
		}, []string{"webhook", "reason"}),
		caReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_client_ca_reloads_total",
			Help: "Reloads of the client CA file after it changed, by result (success, error: the CA in force is kept).",
		}, []string{"result"}),
		logErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollgate_decision_log_errors_total",
			Help: "Decision log entries that could not be written (admission went on); the next line written is a gap record counting them.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_admission_rejected_total",
			Help: "Admission requests turned away before review with 429 (in_flight: too many requests in flight; in_flight_bytes: too many body bytes in flight; rate: over the rate limit) or 413 (too_large).",
		}, []string{"webhook", "reason"}),
		deployments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_deployments_total",
			Help: "Admitted changes to a workload's pod template (not scales, status updates, no-op re-applies or dry runs), by namespace, team and profile (none without profiles).",
		}, []string{"namespace", "team", "profile"}),
		leadTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tollgate_deployment_lead_time_seconds",
			Help: "Time from the commit a deployment carries (tollgate.dev/commit-time or the config's deployments.commitTimeAnnotations) to its admission, by profile.",
			// A minute to a quarter.
			Buckets: []float64{60, 300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 86400, 2 * 86400, 7 * 86400, 14 * 86400, 30 * 86400, 90 * 86400},
		}, []string{"profile"}),
	}
	reg.MustRegister(m.requests, m.latency, m.policyTime, m.violations, m.errors, m.reloads, m.loaded, m.inFlight, m.images,
		m.unauthenticated, m.caReloads, m.logErrors, m.rejected, m.deployments, m.leadTime)
	return m
}

func dryRunLabel(dry bool) string {
	if dry {
		return "true"
	}
	return "false"
}

// Reloaded counts a reload of the policy set by result and, after a good
// one, sets the number of policies loaded; it implements loader.Observer.
func (m *Metrics) Reloaded(result string, policies int) {
	if m == nil {
		return
	}
	m.reloads.WithLabelValues(result).Inc()
	if policies >= 0 {
		m.loaded.Set(float64(policies))
	}
}

// ImageVerdict counts one image verified against one policy; it
// implements review.VerdictObserver.
func (m *Metrics) ImageVerdict(policy string, res *imagesig.Result, err error) {
	if m == nil {
		return
	}
	result := "error"
	switch {
	case err != nil:
	case res.Cached:
		result = "cached"
	case res.Rule == "":
		result = "unmatched"
	case res.Verified:
		result = "verified"
	default:
		result = "failed"
	}
	m.images.WithLabelValues(policy, result).Inc()
}

// track counts a request in flight until the returned func is called.
func (m *Metrics) track(webhook string) func() {
	if m == nil {
		return func() {}
	}
	g := m.inFlight.WithLabelValues(webhook)
	g.Inc()
	return g.Dec
}

func (m *Metrics) observeRequest(webhook, op, kind, decision string, dry bool, took time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(webhook, op, kind, decision, dryRunLabel(dry)).Inc()
	m.latency.WithLabelValues(webhook, dryRunLabel(dry)).Observe(took.Seconds())
}

func (m *Metrics) unauthenticatedRequest(webhook, reason string) {
	if m == nil {
		return
	}
	m.unauthenticated.WithLabelValues(webhook, reason).Inc()
}

func (m *Metrics) clientCAReloaded(result string) {
	if m == nil {
		return
	}
	m.caReloads.WithLabelValues(result).Inc()
}

func (m *Metrics) decisionLogError() {
	if m == nil {
		return
	}
	m.logErrors.Inc()
}

func (m *Metrics) rejectedRequest(webhook, reason string) {
	if m == nil {
		return
	}
	m.rejected.WithLabelValues(webhook, reason).Inc()
}

func (m *Metrics) deployment(namespace string, d *Deployment) {
	if m == nil {
		return
	}
	m.deployments.WithLabelValues(namespace, d.Team, d.Profile).Inc()
	if d.LeadTimeSeconds != nil {
		m.leadTime.WithLabelValues(d.Profile).Observe(*d.LeadTimeSeconds)
	}
}
