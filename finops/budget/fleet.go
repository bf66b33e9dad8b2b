package budget

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
)

// A Budget across clusters (spec.scope.clusters) is judged in three
// places, each from what it can see:
//
//   - every cluster's scanner tallies the Budget's scope in its own
//     cluster, with the same code as any Budget, and exports that share as
//     tollgate_budget_share_hourly (and _committed_hourly), labelled with
//     its --cluster-name;
//   - the central Tollgate (--fleet-prometheus) sums the shares from the
//     Prometheus that holds every cluster's series, accrues the spend and
//     alerts, as it does for a Budget of its own cluster, and writes the
//     verdict (spend, forecast, the per-cluster breakdown) to the Budget's
//     status;
//   - every execution cluster keeps a read-only mirror of the Budget and
//     its verdict (Mirror), which its admission reads: it never asks the
//     central cluster while a request waits.

// AllClusters in spec.scope.clusters spans every cluster that reports.
const AllClusters = "*"

// AcrossClusters reports whether a Budget spans clusters.
func AcrossClusters(b *v1alpha1.Budget) bool { return len(b.Spec.Scope.Clusters) > 0 }

// SpansCluster reports whether a Budget across clusters counts the named
// cluster. A Tollgate without a cluster name is in no fleet.
func SpansCluster(b *v1alpha1.Budget, cluster string) bool {
	if cluster == "" {
		return false
	}
	return slices.Contains(b.Spec.Scope.Clusters, AllClusters) || slices.Contains(b.Spec.Scope.Clusters, cluster)
}

// IsMirror reports whether a Budget is an execution cluster's copy of a
// central one.
func IsMirror(b *v1alpha1.Budget) bool { return b.Labels[v1alpha1.LabelMirror] != "" }

// countedUntil is the time a Budget's figures count admissions up to: the
// oldest cluster scan in them for a Budget across clusters, else its last
// scan; nil when never scanned.
func countedUntil(b *v1alpha1.Budget) *metav1.Time {
	if b.Status.SpendAsOf != nil {
		return b.Status.SpendAsOf
	}
	return b.Status.LastScanTime
}

// Share is one cluster's part of a Budget across clusters, as the fleet
// Prometheus holds it.
type Share struct {
	Cluster   string
	Hourly    float64
	Committed float64
	// ScannedAt is when the cluster's Tollgate last scanned (zero when
	// Prometheus has no scan time for it).
	ScannedAt time.Time
}

// FleetOptions configure a Fleet.
type FleetOptions struct {
	// Timeout bounds one Budget's queries (default 10s).
	Timeout time.Duration
	// RoundTripper for the HTTP client (default http.DefaultTransport).
	RoundTripper http.RoundTripper
	// MaxClusters bounds the clusters one answer may name (default
	// 1,000): a Prometheus cannot make the scanner hold unbounded data.
	MaxClusters int
}

// Fleet reads the shares of Budgets across clusters from a
// Prometheus-compatible API holding every cluster's Tollgate series (a
// Prometheus scraping them or federating theirs, or Thanos, Mimir or a
// central Prometheus they remote-write into).
type Fleet struct {
	api  promv1.API
	opts FleetOptions
}

// NewFleet checks the URL and builds a Fleet.
func NewFleet(url string, opts FleetOptions) (*Fleet, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.MaxClusters <= 0 {
		opts.MaxClusters = 1000
	}
	c, err := api.NewClient(api.Config{Address: url, RoundTripper: opts.RoundTripper})
	if err != nil {
		return nil, fmt.Errorf("fleet prometheus %q: %w", url, err)
	}
	return &Fleet{api: promv1.NewAPI(c), opts: opts}, nil
}

// Shares asks for every cluster's share of one Budget, and the time each
// cluster last scanned, at time at. Clusters are sorted by name. An error
// means the fleet's spend is not known now.
func (f *Fleet) Shares(ctx context.Context, namespace, name string, at time.Time) ([]Share, error) {
	ctx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
	defer cancel()
	sel := fmt.Sprintf(`{namespace=%s,budget=%s}`, strconv.Quote(namespace), strconv.Quote(name))
	byCluster := map[string]*Share{}
	for _, q := range []struct {
		query string
		set   func(*Share, float64)
	}{
		{`max by (cluster) (` + MetricShareHourly + sel + `)`, func(s *Share, v float64) { s.Hourly = v }},
		{`max by (cluster) (` + MetricShareCommitted + sel + `)`, func(s *Share, v float64) { s.Committed = v }},
	} {
		vec, err := f.query(ctx, q.query, at)
		if err != nil {
			return nil, err
		}
		for _, sm := range vec {
			c := string(sm.Metric["cluster"])
			v := float64(sm.Value)
			if c == "" || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				continue // no cluster label, or not a cost
			}
			s := byCluster[c]
			if s == nil {
				s = &Share{Cluster: c}
				byCluster[c] = s
			}
			q.set(s, v)
		}
	}
	vec, err := f.query(ctx, `max by (cluster) (`+MetricLastScan+`)`, at)
	if err != nil {
		return nil, err
	}
	for _, sm := range vec {
		if s := byCluster[string(sm.Metric["cluster"])]; s != nil {
			if v := float64(sm.Value); v > 0 && !math.IsInf(v, 0) {
				s.ScannedAt = time.Unix(int64(v), 0).UTC()
			}
		}
	}
	out := make([]Share, 0, len(byCluster))
	for _, s := range byCluster {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b Share) int { return strings.Compare(a.Cluster, b.Cluster) })
	return out, nil
}

func (f *Fleet) query(ctx context.Context, q string, at time.Time) (model.Vector, error) {
	val, _, _, err := f.api.Query(ctx, q, at, promv1.WithTimeout(f.opts.Timeout))
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("fleet prometheus did not answer within %s: %w", f.opts.Timeout, err)
		}
		return nil, fmt.Errorf("fleet prometheus: %w", err)
	}
	vec, ok := val.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("fleet prometheus: want a vector, got %s", val.Type())
	}
	if len(vec) > f.opts.MaxClusters {
		return nil, fmt.Errorf("fleet prometheus: %d clusters, over the %d read", len(vec), f.opts.MaxClusters)
	}
	return vec, nil
}

// fleetFigures sums the shares of the clusters a Budget spans, and says
// which named clusters did not report (and so are not counted).
func fleetFigures(b *v1alpha1.Budget, shares []Share) (hourly, committed float64, counted []Share, missing []string) {
	all := slices.Contains(b.Spec.Scope.Clusters, AllClusters)
	seen := map[string]bool{}
	for _, s := range shares {
		if !all && !slices.Contains(b.Spec.Scope.Clusters, s.Cluster) {
			continue
		}
		seen[s.Cluster] = true
		hourly += s.Hourly
		committed += s.Committed
		counted = append(counted, s)
	}
	for _, c := range b.Spec.Scope.Clusters {
		if c != AllClusters && !seen[c] && !slices.Contains(missing, c) {
			missing = append(missing, c)
		}
	}
	slices.Sort(missing)
	return hourly, committed, counted, missing
}

// reportingCondition says which clusters a Budget across clusters counts.
func reportingCondition(gen int64, counted []Share, missing []string, fleetErr error) metav1.Condition {
	cond := metav1.Condition{Type: v1alpha1.ConditionClustersReporting, Status: metav1.ConditionTrue,
		Reason: v1alpha1.ReasonReporting, ObservedGeneration: gen}
	names := make([]string, len(counted))
	for i, s := range counted {
		names[i] = s.Cluster
	}
	switch {
	case fleetErr != nil:
		cond.Status, cond.Reason = metav1.ConditionFalse, v1alpha1.ReasonFleetUnreachable
		cond.Message = limit("the fleet Prometheus did not answer; the figures are the last read, no spend is added and no alert fires until it does: " + fleetErr.Error())
	case len(missing) > 0:
		cond.Status, cond.Reason = metav1.ConditionFalse, v1alpha1.ReasonNotReporting
		cond.Message = limit(fmt.Sprintf("no spend reported by %s (an unknown cluster name, or its Tollgate is down or not scraped by the fleet Prometheus): not counted; counting %s",
			strings.Join(missing, ", "), orNone(names)))
	case len(counted) == 0:
		cond.Status, cond.Reason = metav1.ConditionFalse, v1alpha1.ReasonNotReporting
		cond.Message = "no cluster reported spend for this Budget yet"
	default:
		cond.Message = "counting " + strings.Join(names, ", ")
	}
	return cond
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// errNotCentral is a Budget across clusters found where no central
// Tollgate evaluates it.
var errNotCentral = errors.New("spec.scope.clusters: a Budget across clusters is evaluated by the central Tollgate (tollgate serve --fleet-prometheus); create it in the central cluster, whose Tollgate mirrors it here")

// fleetVerdict is what the central Tollgate read of a Budget across
// clusters in one scan.
type fleetVerdict struct {
	hourly, committed float64
	counted           []Share
	missing           []string
	cond              metav1.Condition
	asOf              time.Time
	err               error
}

// fleetVerdict reads a Budget's shares from the fleet Prometheus.
func (s *Scanner) fleetVerdict(ctx context.Context, b *v1alpha1.Budget, now time.Time) *fleetVerdict {
	shares, err := s.opts.Fleet.Shares(ctx, b.Namespace, b.Name, now)
	if err != nil {
		s.opts.Logger.WarnContext(ctx, "the fleet Prometheus did not answer; the Budget across clusters keeps its last figures", "budget", b.Namespace+"/"+b.Name, "error", err)
		return &fleetVerdict{err: err, cond: reportingCondition(b.Generation, nil, nil, err)}
	}
	v := &fleetVerdict{}
	v.hourly, v.committed, v.counted, v.missing = fleetFigures(b, shares)
	v.cond = reportingCondition(b.Generation, v.counted, v.missing, nil)
	v.asOf = now
	for _, sh := range v.counted {
		if !sh.ScannedAt.IsZero() && sh.ScannedAt.Before(v.asOf) {
			v.asOf = sh.ScannedAt
		}
	}
	if len(v.missing) > 0 {
		s.opts.Logger.WarnContext(ctx, "clusters a Budget names report no spend; it is not counted", "budget", b.Namespace+"/"+b.Name, "clusters", v.missing)
	}
	return v
}

// names lists the clusters counted, for the scope and the alerts.
func (v *fleetVerdict) names() string {
	names := make([]string, len(v.counted))
	for i, s := range v.counted {
		names[i] = s.Cluster
	}
	return "clusters " + orNone(names)
}

// record writes the breakdown into the Budget's status.
func (v *fleetVerdict) record(st *v1alpha1.BudgetStatus) {
	st.Clusters = st.Clusters[:0]
	for _, s := range v.counted {
		c := v1alpha1.BudgetClusterSpend{Name: s.Cluster, HourlyRate: strconv.FormatFloat(s.Hourly, 'f', 4, 64),
			CommittedRate: strconv.FormatFloat(s.Committed, 'f', 4, 64)}
		if !s.ScannedAt.IsZero() {
			c.ScannedAt = &metav1.Time{Time: s.ScannedAt}
		}
		st.Clusters = append(st.Clusters, c)
	}
	st.SpendAsOf = &metav1.Time{Time: v.asOf}
	apimeta.SetStatusCondition(&st.Conditions, v.cond)
}
