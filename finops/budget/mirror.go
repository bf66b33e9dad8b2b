package budget

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
)

// MirrorOptions configure a Mirror.
type MirrorOptions struct {
	// Central reads the central cluster's Budgets (a client of its API
	// server, with get and list on budgets.tollgate.dev and nothing else).
	Central client.Reader
	// Local writes the mirrors in this cluster.
	Local client.Client
	// Cluster is this cluster's name: the Budgets across clusters naming
	// it (or "*") are mirrored.
	Cluster string
	// CentralName names the central cluster in the mirrors' label and
	// status (default "central").
	CentralName string
	// Interval between syncs (default 1m); Timeout bounds one read of the
	// central cluster (default 10s).
	Interval, Timeout time.Duration
	// Registerer receives the mirror's series; nil registers none.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	Now        func() time.Time
}

// Mirror keeps, in an execution cluster, a read-only copy of every Budget
// across clusters of the central cluster that spans it: the spec, so this
// cluster's scanner exports its share, and the central verdict (status),
// so this cluster's admission judges by it without asking the central
// cluster while a request waits. A mirror edited here is put back at the
// next sync; a mirror whose original is gone is deleted; Budgets without
// the mirror label are never touched. When the central cluster cannot be
// read, the mirrors stay as they are and age: past the gate's
// MaxVerdictAge they warn instead of denying.
type Mirror struct {
	opts    MirrorOptions
	metrics *mirrorMetrics
}

// NewMirror checks the options.
func NewMirror(opts MirrorOptions) (*Mirror, error) {
	if opts.Central == nil || opts.Local == nil {
		return nil, errors.New("budget mirror: Central and Local are required")
	}
	if opts.Cluster == "" {
		return nil, errors.New("budget mirror: this cluster's name is required (--cluster-name)")
	}
	opts.CentralName = cmp.Or(opts.CentralName, "central")
	opts.Interval = cmp.Or(opts.Interval, time.Minute)
	opts.Timeout = cmp.Or(opts.Timeout, 10*time.Second)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m := &Mirror{opts: opts}
	if opts.Registerer != nil {
		m.metrics = newMirrorMetrics(opts.Registerer)
	}
	return m, nil
}

// Run syncs now and then every Interval until ctx ends; the server runs it
// on the elected leader only.
func (m *Mirror) Run(ctx context.Context) error {
	tick := time.NewTicker(m.opts.Interval)
	defer tick.Stop()
	for {
		if _, err := m.Sync(ctx); err != nil && ctx.Err() == nil {
			m.opts.Logger.WarnContext(ctx, "mirroring the central Budgets failed; the mirrors keep their last verdicts", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// MirrorReport is what one sync did.
type MirrorReport struct {
	// Mirrored are the mirrors written or confirmed (namespace/name).
	Mirrored []string
	// Deleted are the mirrors whose original is gone.
	Deleted []string
}

// Sync reads the central Budgets once and brings the mirrors in line. The
// error joins what could not be done (one Budget's failure does not stop
// the others); a central cluster out of reach changes nothing here.
func (m *Mirror) Sync(ctx context.Context) (*MirrorReport, error) {
	rep := &MirrorReport{}
	central, err := m.readCentral(ctx)
	if err != nil {
		m.metrics.fail("central-unreachable")
		return rep, fmt.Errorf("reading the central cluster's Budgets: %w", err)
	}
	now := m.opts.Now()
	want := map[client.ObjectKey]bool{}
	var errs []error
	for i := range central {
		b := &central[i]
		if !AcrossClusters(b) || !SpansCluster(b, m.opts.Cluster) || IsMirror(b) {
			continue
		}
		key := client.ObjectKeyFromObject(b)
		want[key] = true
		if reason, err := m.mirror(ctx, b, now); err != nil {
			m.metrics.fail(reason)
			errs = append(errs, fmt.Errorf("budget %s: %w", key, err))
			continue
		}
		rep.Mirrored = append(rep.Mirrored, key.String())
	}
	var local v1alpha1.BudgetList
	if err := m.opts.Local.List(ctx, &local, client.MatchingLabels{v1alpha1.LabelMirror: m.opts.CentralName}); err != nil {
		m.metrics.fail("local")
		errs = append(errs, fmt.Errorf("listing this cluster's mirrors: %w", err))
	}
	for i := range local.Items {
		b := &local.Items[i]
		if want[client.ObjectKeyFromObject(b)] {
			continue
		}
		if err := m.opts.Local.Delete(ctx, b); err != nil && !apierrors.IsNotFound(err) {
			m.metrics.fail("local")
			errs = append(errs, fmt.Errorf("deleting mirror %s/%s: %w", b.Namespace, b.Name, err))
			continue
		}
		m.opts.Logger.InfoContext(ctx, "mirror deleted: its central Budget is gone or no longer spans this cluster", "budget", b.Namespace+"/"+b.Name)
		rep.Deleted = append(rep.Deleted, b.Namespace+"/"+b.Name)
	}
	m.metrics.synced(now, len(rep.Mirrored))
	return rep, errors.Join(errs...)
}

// readCentral lists the central cluster's Budgets, in pages of 500.
func (m *Mirror) readCentral(ctx context.Context) ([]v1alpha1.Budget, error) {
	ctx, cancel := context.WithTimeout(ctx, m.opts.Timeout)
	defer cancel()
	var out []v1alpha1.Budget
	opts := []client.ListOption{client.Limit(500)}
	for {
		var list v1alpha1.BudgetList
		if err := m.opts.Central.List(ctx, &list, opts...); err != nil {
			return nil, err
		}
		out = append(out, list.Items...)
		if list.Continue == "" {
			return out, nil
		}
		opts = []client.ListOption{client.Limit(500), client.Continue(list.Continue)}
	}
}

// mirror writes one Budget's mirror: spec and labels, then the verdict.
// The reason names a failure for the metric.
func (m *Mirror) mirror(ctx context.Context, orig *v1alpha1.Budget, now time.Time) (string, error) {
	labels := maps.Clone(orig.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[v1alpha1.LabelMirror] = m.opts.CentralName
	var cur v1alpha1.Budget
	err := m.opts.Local.Get(ctx, client.ObjectKeyFromObject(orig), &cur)
	switch {
	case apierrors.IsNotFound(err):
		cur = v1alpha1.Budget{ObjectMeta: metav1.ObjectMeta{Namespace: orig.Namespace, Name: orig.Name, Labels: labels}, Spec: orig.Spec}
		if err := m.opts.Local.Create(ctx, &cur); err != nil {
			if apierrors.IsNotFound(err) {
				return "namespace-missing", fmt.Errorf("namespace %s does not exist in this cluster: create it (or keep Budgets across clusters in a namespace every cluster has)", orig.Namespace)
			}
			return "local", fmt.Errorf("creating the mirror: %w", err)
		}
		m.opts.Logger.InfoContext(ctx, "Budget across clusters mirrored", "budget", orig.Namespace+"/"+orig.Name)
	case err != nil:
		return "local", fmt.Errorf("reading the mirror: %w", err)
	case cur.Labels[v1alpha1.LabelMirror] != m.opts.CentralName:
		return "name-taken", fmt.Errorf("a Budget of this cluster holds the name, and it is not a mirror; rename one of them")
	case !reflect.DeepEqual(cur.Spec, orig.Spec) || !reflect.DeepEqual(cur.Labels, labels):
		m.opts.Logger.InfoContext(ctx, "mirror put back in line with the central Budget", "budget", orig.Namespace+"/"+orig.Name)
		cur.Spec, cur.Labels = orig.Spec, labels
		if err := m.opts.Local.Update(ctx, &cur); err != nil {
			return "local", fmt.Errorf("updating the mirror: %w", err)
		}
	}
	st := *orig.Status.DeepCopy()
	st.Mirror = &v1alpha1.BudgetMirror{Cluster: m.opts.CentralName, Budget: orig.Namespace + "/" + orig.Name, Time: metav1.NewTime(now)}
	cur.Status = st
	if err := m.opts.Local.Status().Update(ctx, &cur); err != nil {
		return "local", fmt.Errorf("writing the mirror's verdict: %w", err)
	}
	return "", nil
}

// mirrorMetrics are the mirror's series.
type mirrorMetrics struct {
	failures *prometheus.CounterVec
	lastSync prometheus.Gauge
	budgets  prometheus.Gauge
}

func newMirrorMetrics(reg prometheus.Registerer) *mirrorMetrics {
	m := &mirrorMetrics{
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_fleet_mirror_failures_total",
			Help: "Failures mirroring the central cluster's Budgets across clusters, by reason: central-unreachable, namespace-missing, name-taken, local.",
		}, []string{"reason"}),
		lastSync: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tollgate_fleet_mirror_last_sync_timestamp_seconds",
			Help: "When the central cluster's Budgets were last read, as a Unix time; alert when it falls behind.",
		}),
		budgets: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tollgate_fleet_mirror_budgets",
			Help: "Budgets across clusters mirrored in this cluster at the last sync.",
		}),
	}
	reg.MustRegister(m.failures, m.lastSync, m.budgets)
	return m
}

func (m *mirrorMetrics) fail(reason string) {
	if m != nil {
		m.failures.WithLabelValues(reason).Inc()
	}
}

func (m *mirrorMetrics) synced(at time.Time, n int) {
	if m != nil {
		m.lastSync.Set(float64(at.Unix()))
		m.budgets.Set(float64(n))
	}
}
