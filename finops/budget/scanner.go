package budget

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/finops"
	"github.com/tollgate-dev/tollgate/finops/alerts"
	"github.com/tollgate-dev/tollgate/finops/usage"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
)

// Alerter delivers one alert to the channels its route names: the
// Budget's own channels when it lists some, else the one the namespace
// annotations name, else the default. Each result says whether a channel
// took it.
type Alerter interface {
	Send(ctx context.Context, a alerts.Alert, channels []string, annotations []map[string]string) []alerts.Result
}

// Options configure a Scanner.
type Options struct {
	// Client reads Budgets and writes their status.
	Client client.Client
	// Reader lists what is priced (pods, nodes, claims, namespaces, jobs),
	// live and in pages, so memory stays bounded by the cluster's size.
	Reader client.Reader
	// Model prices the cluster, in Currency (the price catalogue's); Usage,
	// when set, gives measured usage and node prices (nil: requests only).
	Model    *finops.Model
	Currency string
	// Governed gives the config's governed kinds as loaded now (they
	// follow the config as it is reloaded, as the gate's do): each scan
	// lists the objects of those with price lines and charges them. Nil
	// lists none.
	Governed func() []policies.GovernedKind
	// Mapper finds the version the API server serves of each governed
	// kind; required with Governed.
	Mapper apimeta.RESTMapper
	// TeamLabel and CostCenterLabel name the team and cost-center of a
	// selector Budget in its alerts (default team, cost-center).
	TeamLabel, CostCenterLabel string
	Usage                      *usage.Source
	// Alerter delivers threshold alerts; nil sends none.
	Alerter Alerter
	// Interval between scans (default 5m).
	Interval time.Duration
	// Cluster names the cluster in alerts, and in the shares of Budgets
	// across clusters it exports; a Budget across clusters that does not
	// name it (or "*") is not counted here.
	Cluster string
	// Fleet, set on the central Tollgate only, reads every cluster's
	// shares of the Budgets across clusters; this scanner then evaluates
	// them and writes their verdicts. Nil: Budgets across clusters found
	// here are mirrors (their shares exported) or an error in their status.
	Fleet *Fleet
	// Registerer receives the scanner's series; nil registers none.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	Now        func() time.Time
}

// Scanner tallies spend against every Budget, periodically.
type Scanner struct {
	opts    Options
	metrics *scanMetrics
}

// New checks the options.
func New(opts Options) (*Scanner, error) {
	if opts.Client == nil || opts.Reader == nil || opts.Model == nil {
		return nil, errors.New("budget scanner: Client, Reader and Model are required")
	}
	if opts.Governed != nil && opts.Mapper == nil {
		return nil, errors.New("budget scanner: Mapper is required with Governed")
	}
	if opts.Interval <= 0 {
		opts.Interval = 5 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Currency == "" {
		opts.Currency = "USD"
	}
	if opts.TeamLabel == "" {
		opts.TeamLabel = finops.DefaultTeamLabel
	}
	if opts.CostCenterLabel == "" {
		opts.CostCenterLabel = finops.DefaultCostCenterLabel
	}
	s := &Scanner{opts: opts}
	if opts.Registerer != nil {
		s.metrics = newScanMetrics(opts.Registerer)
	}
	return s, nil
}

// Run scans now and then every Interval until ctx ends. The server runs
// it on the elected leader only.
func (s *Scanner) Run(ctx context.Context) error {
	tick := time.NewTicker(s.opts.Interval)
	defer tick.Stop()
	for {
		if _, err := s.Scan(ctx); err != nil && ctx.Err() == nil {
			s.opts.Logger.ErrorContext(ctx, "budget scan failed; spend is added on the next scan", "error", err)
		}
		select {
		case <-ctx.Done():
			// No longer the leader (or stopping): this replica's shares
			// would otherwise stay on its /metrics beside the new
			// leader's, and be summed again.
			s.metrics.forgetShares()
			return nil
		case <-tick.C:
		}
	}
}

// Report is what one scan did.
type Report struct {
	At time.Time
	// Stale is true when usage could not be read: spend was counted from
	// requests and no alert fired.
	Stale bool
	// Tally is the whole cluster's spend; its Unpriced are the governed
	// objects no Budget counts, each with the field at fault.
	Tally *finops.Tally
	// Unlisted is why governed kinds could not be listed (one error per
	// kind, joined); the others are counted all the same.
	Unlisted error
	// Budgets are the budgets' figures after the scan.
	Budgets []Figures
	// Shares are this cluster's parts of the Budgets across clusters that
	// span it, exported for the central Tollgate to sum.
	Shares []Figures
}

// Figures are one Budget's after a scan.
type Figures struct {
	Namespace, Name string
	Scope           string
	Hourly          float64
	// Committed is the hourly cost of what is admitted but not running
	// (see Committed), which the forecast counts beside Hourly.
	Committed       float64
	Spend, Forecast float64
	Amount          float64
	// Alerted are the thresholds alerted by this scan; Failed those whose
	// delivery failed (retried on the next scans).
	Alerted, Failed []int32
	// Unpriced are the governed objects in the Budget's scope that could
	// not be priced: its figures leave them out, and its status says so.
	Unpriced []finops.Unpriced
	// Mirror is set for an execution cluster's copy of a Budget across
	// clusters: its figures are this cluster's share only, and its verdict
	// the central's.
	Mirror bool
	Err    error
}

// Scan lists the cluster once, tallies it, and adds each Budget's spend
// since its last scan.
func (s *Scanner) Scan(ctx context.Context) (*Report, error) {
	now := s.opts.Now()
	model := s.opts.Model
	var kinds []policies.GovernedKind
	if s.opts.Governed != nil {
		kinds = s.opts.Governed()
		model = model.WithGovernedKinds(kinds)
	}
	c, err := ListCluster(ctx, s.opts.Reader)
	if err != nil {
		return nil, err
	}
	rep := &Report{At: now}
	if len(kinds) > 0 {
		var unserved []schema.GroupKind
		c.Governed, unserved, rep.Unlisted = ListGoverned(ctx, s.opts.Reader, s.opts.Mapper, kinds)
		for _, gk := range unserved {
			s.opts.Logger.DebugContext(ctx, "governed kind not served by the API server; nothing to count", "kind", gk.String())
		}
		if rep.Unlisted != nil {
			s.opts.Logger.WarnContext(ctx, "governed kinds could not be listed; Budgets leave them out until they can", "error", rep.Unlisted)
		}
	}
	if s.opts.Usage != nil {
		snap, err := s.opts.Usage.Snapshot(ctx, now)
		if err != nil {
			rep.Stale = true
			s.opts.Logger.WarnContext(ctx, "usage is stale: spend is counted from requests, and no alert fires on it", "error", err)
		} else {
			WithUsage(&c, snap)
		}
	}
	rep.Tally = model.Tally(c)
	for _, u := range rep.Tally.Unpriced {
		s.opts.Logger.WarnContext(ctx, "governed object cannot be priced; no Budget counts it",
			"kind", u.Kind, "namespace", u.Namespace, "name", u.Name, "field", u.Field, "reason", u.Reason)
	}
	w, err := ListControllers(ctx, s.opts.Reader)
	if err != nil {
		return rep, err
	}
	committed := Commit(model, c, w)

	var budgets v1alpha1.BudgetList
	if err := s.opts.Client.List(ctx, &budgets); err != nil {
		return rep, fmt.Errorf("listing Budgets: %w", err)
	}
	idx := indexCluster(c)
	for i := range budgets.Items {
		b := &budgets.Items[i]
		br := s.scanBudget(ctx, model, b, idx, committed, rep, now)
		rep.Budgets = append(rep.Budgets, br)
	}
	s.metrics.observe(rep)
	return rep, nil
}

// ListCluster reads what is priced (pods, nodes, claims, namespaces,
// jobs), in pages of 500, for a Tally; the CLI's live `tollgate cost`
// lists the same way.
func ListCluster(ctx context.Context, r client.Reader) (finops.Cluster, error) {
	var c finops.Cluster
	var err error
	if c.Pods, err = listAll[corev1.Pod, *corev1.PodList](ctx, r, &corev1.PodList{}); err != nil {
		return c, err
	}
	if c.Nodes, err = listAll[corev1.Node, *corev1.NodeList](ctx, r, &corev1.NodeList{}); err != nil {
		return c, err
	}
	if c.PersistentVolumeClaims, err = listAll[corev1.PersistentVolumeClaim, *corev1.PersistentVolumeClaimList](ctx, r, &corev1.PersistentVolumeClaimList{}); err != nil {
		return c, err
	}
	if c.Namespaces, err = listAll[corev1.Namespace, *corev1.NamespaceList](ctx, r, &corev1.NamespaceList{}); err != nil {
		return c, err
	}
	if c.Jobs, err = listAll[batchv1.Job, *batchv1.JobList](ctx, r, &batchv1.JobList{}); err != nil {
		return c, err
	}
	return c, nil
}

// ListGoverned lists, in pages of 500, the objects of every governed kind
// with price lines (a kind without any costs nothing to list). A kind the
// API server does not serve (its CRD not installed) is returned in
// unserved, not as an error; a kind that cannot be listed (no RBAC to list
// it, say) is one error among the joined ones, and the other kinds'
// objects are returned all the same.
func ListGoverned(ctx context.Context, r client.Reader, mapper apimeta.RESTMapper, kinds []policies.GovernedKind) (objs []unstructured.Unstructured, unserved []schema.GroupKind, err error) {
	var errs []error
	for _, k := range kinds {
		if len(k.Pricing) == 0 {
			continue
		}
		gk := schema.GroupKind{Group: k.Group, Kind: k.Kind}
		m, merr := mapper.RESTMapping(gk)
		if apimeta.IsNoMatchError(merr) {
			unserved = append(unserved, gk)
			continue
		}
		if merr != nil {
			errs = append(errs, fmt.Errorf("finding %s: %w", gk, merr))
			continue
		}
		got, lerr := listKind(ctx, r, m.GroupVersionKind)
		if lerr != nil {
			errs = append(errs, fmt.Errorf("listing %s: %w", gk, lerr))
			continue
		}
		objs = append(objs, got...)
	}
	return objs, unserved, errors.Join(errs...)
}

// listKind lists every object of a kind, in pages of 500.
func listKind(ctx context.Context, r client.Reader, gvk schema.GroupVersionKind) ([]unstructured.Unstructured, error) {
	var out []unstructured.Unstructured
	opts := []client.ListOption{client.Limit(500)}
	for {
		var list unstructured.UnstructuredList
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := r.List(ctx, &list, opts...); err != nil {
			return nil, err
		}
		out = append(out, list.Items...)
		cont := list.GetContinue()
		if cont == "" {
			return out, nil
		}
		opts = []client.ListOption{client.Limit(500), client.Continue(cont)}
	}
}

// WithUsage adds a Prometheus snapshot's usage and node prices to a
// listed cluster.
func WithUsage(c *finops.Cluster, snap *usage.Snapshot) {
	c.Usage = make(map[finops.ContainerKey]finops.Usage, len(snap.CPU))
	for k, v := range snap.CPU {
		key := finops.ContainerKey(k)
		u := c.Usage[key]
		u.CPU = v
		c.Usage[key] = u
	}
	for k, v := range snap.Memory {
		key := finops.ContainerKey(k)
		u := c.Usage[key]
		u.Memory = v
		c.Usage[key] = u
	}
	c.NodePrices = map[string]finops.Rates{}
	for node, v := range snap.NodeCPUHourly {
		r := c.NodePrices[node]
		r.CPU = v
		c.NodePrices[node] = r
	}
	for node, v := range snap.NodeRAMHourly {
		r := c.NodePrices[node]
		r.RAM = v
		c.NodePrices[node] = r
	}
}

// itemList is a typed list whose items are T.
type itemList[T any] interface {
	client.ObjectList
	*corev1.PodList | *corev1.NodeList | *corev1.PersistentVolumeClaimList | *corev1.NamespaceList | *batchv1.JobList |
		*appsv1.DeploymentList | *appsv1.ReplicaSetList | *appsv1.StatefulSetList | *corev1.ReplicationControllerList
}

func listAll[T any, L itemList[T]](ctx context.Context, r client.Reader, list L) ([]T, error) {
	var out []T
	opts := []client.ListOption{client.Limit(500)}
	for {
		if err := r.List(ctx, list, opts...); err != nil {
			return nil, fmt.Errorf("listing %T: %w", list, err)
		}
		items, err := apimeta.ExtractList(list)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			if v, ok := any(it).(*T); ok {
				out = append(out, *v)
			}
		}
		cont := list.GetContinue()
		if cont == "" {
			return out, nil
		}
		opts = []client.ListOption{client.Limit(500), client.Continue(cont)}
	}
}

// clusterIndex finds a scope's objects without scanning everything for
// every namespace budget.
type clusterIndex struct {
	all        finops.Cluster
	pods       map[string][]corev1.Pod
	claims     map[string][]corev1.PersistentVolumeClaim
	governed   map[string][]unstructured.Unstructured
	namespaces map[string]corev1.Namespace
}

func indexCluster(c finops.Cluster) *clusterIndex {
	idx := &clusterIndex{all: c, pods: map[string][]corev1.Pod{}, claims: map[string][]corev1.PersistentVolumeClaim{},
		governed: map[string][]unstructured.Unstructured{}, namespaces: map[string]corev1.Namespace{}}
	for _, g := range c.Governed {
		idx.governed[g.GetNamespace()] = append(idx.governed[g.GetNamespace()], g)
	}
	for _, p := range c.Pods {
		idx.pods[p.Namespace] = append(idx.pods[p.Namespace], p)
	}
	for _, pvc := range c.PersistentVolumeClaims {
		idx.claims[pvc.Namespace] = append(idx.claims[pvc.Namespace], pvc)
	}
	for _, ns := range c.Namespaces {
		idx.namespaces[ns.Name] = ns
	}
	return idx
}

// scope returns the part of the cluster a Budget counts, its description,
// and the annotation sets that route its alerts.
func (idx *clusterIndex) scope(b *v1alpha1.Budget) (finops.Cluster, string, []map[string]string, error) {
	sub := finops.Cluster{Nodes: idx.all.Nodes, Jobs: idx.all.Jobs, Usage: idx.all.Usage, NodePrices: idx.all.NodePrices}
	own := idx.namespaces[b.Namespace].Annotations
	scope, err := ScopeOf(b)
	if err != nil {
		return sub, "", nil, err
	}
	if scope.Selector != nil {
		for _, p := range idx.all.Pods {
			if scope.Covers(p.Namespace, idx.namespaces[p.Namespace].Labels, p.Labels) {
				sub.Pods = append(sub.Pods, p)
			}
		}
		for _, pvc := range idx.all.PersistentVolumeClaims {
			if scope.Covers(pvc.Namespace, idx.namespaces[pvc.Namespace].Labels, pvc.Labels) {
				sub.PersistentVolumeClaims = append(sub.PersistentVolumeClaims, pvc)
			}
		}
		for _, g := range idx.all.Governed {
			if scope.Covers(g.GetNamespace(), idx.namespaces[g.GetNamespace()].Labels, g.GetLabels()) {
				sub.Governed = append(sub.Governed, g)
			}
		}
		return sub, scope.String(), []map[string]string{own}, nil
	}
	ns := scope.Namespace
	sub.Pods, sub.PersistentVolumeClaims, sub.Governed = idx.pods[ns], idx.claims[ns], idx.governed[ns]
	if n, ok := idx.namespaces[ns]; ok {
		sub.Namespaces = []corev1.Namespace{n}
	}
	return sub, scope.String(), []map[string]string{idx.namespaces[ns].Annotations, own}, nil
}

// withNamespaceLabels is a pod's labels as they are charged: its
// namespace's value for every key the namespace sets, the pod's own for the
// rest, so a workload cannot label itself out of (or into) a selector
// Budget that names its namespace's team or cost-center.
func withNamespaceLabels(obj, ns map[string]string) labels.Set {
	return labels.Set(finops.LabelsOfRecord(obj, ns))
}

func (s *Scanner) scanBudget(ctx context.Context, model *finops.Model, b *v1alpha1.Budget, idx *clusterIndex, committed *Committed, rep *Report, now time.Time) Figures {
	stale := rep.Stale
	br := Figures{Namespace: b.Namespace, Name: b.Name}
	fail := func(err error) Figures {
		br.Err = err
		_ = s.writeStatus(ctx, b, func(st *v1alpha1.BudgetStatus) {
			st.LastError = limit(err.Error())
			setReady(st, b.Generation, err)
		})
		return br
	}
	amount, err := ParseAmount(b.Spec.Amount)
	if err != nil {
		return fail(fmt.Errorf("spec.amount: %w", err))
	}
	if cur := s.opts.Currency; b.Spec.Currency != "" && b.Spec.Currency != cur {
		return fail(fmt.Errorf("spec.currency %s: prices are in %s", b.Spec.Currency, cur))
	}
	br.Amount = amount
	sub, scope, annotations, err := idx.scope(b)
	if err != nil {
		return fail(err)
	}
	br.Scope = scope
	tally := model.Tally(sub)
	br.Unpriced = tally.Unpriced
	priced := pricedCondition(b.Generation, tally.Unpriced, rep.Unlisted)
	if br.Committed, err = committed.Hourly(model, b); err != nil {
		return fail(err)
	}
	br.Hourly = tally.Hourly.Total
	// fleet is set for a Budget across clusters: this cluster's share is
	// exported, and only the central Tollgate sums the shares into the
	// Budget's figures.
	var fleet *fleetVerdict
	if AcrossClusters(b) {
		// Only a mirror's scope, or the central's own Budget's, is
		// exported: a Budget across clusters made here by hand must not
		// speak for this cluster in the central sum.
		if SpansCluster(b, s.opts.Cluster) && (IsMirror(b) || s.opts.Fleet != nil) {
			rep.Shares = append(rep.Shares, Figures{Namespace: b.Namespace, Name: b.Name, Scope: scope, Hourly: br.Hourly, Committed: br.Committed})
		}
		if IsMirror(b) {
			br.Mirror = true
			return br // its verdict is the central cluster's, copied by the mirror
		}
		if s.opts.Fleet == nil {
			return fail(errNotCentral)
		}
		fleet = s.fleetVerdict(ctx, b, now)
		if fleet.err != nil {
			br.Err = fleet.err
			_ = s.writeStatus(ctx, b, func(st *v1alpha1.BudgetStatus) {
				st.Stale = true
				apimeta.SetStatusCondition(&st.Conditions, fleet.cond)
			})
			return br // nothing accrues or alerts on figures not read
		}
		br.Hourly, br.Committed, stale = fleet.hourly, fleet.committed, false
		scope += " in " + fleet.names()
		br.Scope = scope
		tally = &finops.Tally{} // the top workloads are each cluster's own
	}
	ledger, err := LedgerFromStatus(b, now)
	if err != nil {
		return fail(err)
	}
	ledger.Accrue(br.Hourly, now)
	// Spend accrues what ran; the forecast adds what is admitted and
	// about to run.
	br.Spend, br.Forecast = ledger.Spend, ledger.Forecast(br.Hourly+br.Committed, now)

	// Thresholds: recorded before they are sent (a restart after the
	// record retries an undelivered one, never repeats a delivered one).
	var due []int32
	if !stale {
		due = ledger.Due(amount, b.Spec.Thresholds)
		for _, t := range due {
			ledger.Alerted = append(ledger.Alerted, v1alpha1.BudgetAlert{Threshold: t, At: metav1.NewTime(now)})
		}
	}
	retry := ledger.Undelivered()
	record := func(st *v1alpha1.BudgetStatus) {
		st.ObservedGeneration = b.Generation
		st.Scope = scope
		st.PeriodStart, st.PeriodEnd = &metav1.Time{Time: ledger.PeriodStart}, &metav1.Time{Time: ledger.PeriodEnd}
		st.Spend = spendString(ledger.Spend)
		st.Forecast = finops.Amount(br.Forecast)
		st.HourlyRate = strconv.FormatFloat(br.Hourly, 'f', 4, 64)
		st.Utilization = percent(ledger.Spend, amount)
		st.LastScanTime = &metav1.Time{Time: ledger.LastScan}
		st.Alerted = ledger.Alerted
		st.AlertedSummary = alertedSummary(ledger.Alerted)
		st.Stale = stale
		setReady(st, b.Generation, nil)
		apimeta.SetStatusCondition(&st.Conditions, priced)
		if fleet != nil {
			fleet.record(st)
		}
		// LastError says the latest problem: an object left out for want
		// of a price is one, until it is priced.
		if priced.Status == metav1.ConditionFalse {
			st.LastError = priced.Message
		} else if strings.HasPrefix(st.LastError, notCountedPrefix) {
			st.LastError = ""
		}
	}
	if err := s.writeStatus(ctx, b, record); err != nil {
		br.Err = err
		return br // not recorded: nothing is sent, and the next scan adds this time
	}
	if s.opts.Alerter == nil || len(retry) == 0 {
		return br
	}
	a := alerts.Alert{
		Budget: b.Namespace + "/" + b.Name, Scope: scope, Spend: ledger.Spend, Amount: amount, Forecast: br.Forecast,
		Currency: s.opts.Currency, PeriodStart: ledger.PeriodStart, PeriodEnd: ledger.PeriodEnd,
		Utilization: ledger.Spend / amount * 100, Cluster: s.opts.Cluster, Time: now,
	}
	if fleet != nil {
		a.Cluster = fleet.names()
	}
	if b.Spec.Scope.Selector == nil {
		a.Namespace = strings.TrimPrefix(scope, "namespace ")
	}
	if ml := b.Spec.Scope.Selector; ml != nil {
		a.Team, a.CostCenter = ml.MatchLabels[s.opts.TeamLabel], ml.MatchLabels[s.opts.CostCenterLabel]
	}
	hours := ledger.LastScan.Sub(ledger.PeriodStart).Hours()
	for _, w := range tally.Top {
		a.TopWorkloads = append(a.TopWorkloads, alerts.Workload{Kind: w.Kind, Namespace: w.Namespace, Name: w.Name, Cost: w.Hourly.Total * hours})
	}
	var lastErr error
	for i := range ledger.Alerted {
		al := &ledger.Alerted[i]
		if al.Delivered {
			continue
		}
		a.ID = fmt.Sprintf("%s/%s/%s/%d", b.UID, ledger.PeriodStart.Format("2006-01-02"), b.Name, al.Threshold)
		a.Threshold = int(al.Threshold)
		results := s.opts.Alerter.Send(ctx, a, b.Spec.Channels, annotations)
		delivered := len(results) > 0
		al.Channels = al.Channels[:0]
		for _, r := range results {
			al.Channels = append(al.Channels, r.Channel)
			if !r.Delivered {
				delivered = false
				lastErr = fmt.Errorf("alert %d%% to %s: %w", al.Threshold, r.Channel, r.Err)
			}
		}
		al.Delivered = delivered
		if delivered {
			br.Alerted = append(br.Alerted, al.Threshold)
		} else {
			br.Failed = append(br.Failed, al.Threshold)
		}
	}
	_ = s.writeStatus(ctx, b, func(st *v1alpha1.BudgetStatus) {
		record(st)
		if lastErr != nil {
			st.FailedDeliveries += int32(len(br.Failed))
			st.LastError = limit(lastErr.Error())
		} else if priced.Status == metav1.ConditionFalse {
			st.LastError = priced.Message
		} else {
			st.LastError = ""
		}
	})
	return br
}

// writeStatus applies f to the Budget's current status and writes it,
// again on a conflict.
func (s *Scanner) writeStatus(ctx context.Context, b *v1alpha1.Budget, f func(*v1alpha1.BudgetStatus)) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var cur v1alpha1.Budget
		if err := s.opts.Client.Get(ctx, client.ObjectKeyFromObject(b), &cur); err != nil {
			return err
		}
		f(&cur.Status)
		return s.opts.Client.Status().Update(ctx, &cur)
	})
	if err != nil {
		s.opts.Logger.ErrorContext(ctx, "writing Budget status failed", "budget", b.Namespace+"/"+b.Name, "error", err)
		return fmt.Errorf("writing status: %w", err)
	}
	return nil
}

// spendString is status.spend: to a millionth, since the next scan adds
// to the value read back from it, and a value rounded to cents would gain
// or lose up to half a cent on every scan.
func spendString(v float64) string { return strconv.FormatFloat(v, 'f', 6, 64) }

func setReady(st *v1alpha1.BudgetStatus, gen int64, err error) {
	cond := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Scanned", Message: "spend is tallied", ObservedGeneration: gen}
	if err != nil {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, v1alpha1.ReasonInvalid, limit(err.Error())
	}
	apimeta.SetStatusCondition(&st.Conditions, cond)
}

// notCountedPrefix begins the Priced condition's message, and lastError,
// when objects in a Budget's scope are left out of its figures.
const notCountedPrefix = "not counted: "

// pricedCondition says whether every governed object in a Budget's scope
// is counted: False names each one that cannot be priced (kind,
// namespace/name, the field at fault) and each governed kind that could
// not be listed, so the hole in the forecast is seen where the forecast
// is read.
func pricedCondition(gen int64, unpriced []finops.Unpriced, unlisted error) metav1.Condition {
	cond := metav1.Condition{Type: v1alpha1.ConditionPriced, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonPriced,
		Message: "every governed object in scope is priced", ObservedGeneration: gen}
	if len(unpriced) == 0 && unlisted == nil {
		return cond
	}
	var parts []string
	if len(unpriced) > 0 {
		items := make([]string, len(unpriced))
		for i, u := range unpriced {
			items[i] = u.String()
		}
		parts = append(parts, fmt.Sprintf("%d cannot be priced: %s", len(unpriced), strings.Join(items, "; ")))
		cond.Reason = v1alpha1.ReasonUnpriced
	}
	if unlisted != nil {
		parts = append(parts, "governed kinds could not be listed: "+strings.ReplaceAll(unlisted.Error(), "\n", "; "))
		if cond.Reason == v1alpha1.ReasonPriced {
			cond.Reason = v1alpha1.ReasonUnlisted
		}
	}
	cond.Status = metav1.ConditionFalse
	cond.Message = limit(notCountedPrefix + strings.Join(parts, "; "))
	return cond
}

func percent(spend, amount float64) string {
	if amount <= 0 {
		return ""
	}
	return strconv.FormatFloat(spend/amount*100, 'f', 0, 64) + "%"
}

func alertedSummary(a []v1alpha1.BudgetAlert) string {
	parts := make([]string, 0, len(a))
	for _, x := range a {
		p := strconv.Itoa(int(x.Threshold)) + "%"
		if !x.Delivered {
			p += "(pending)"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ",")
}

func limit(s string) string {
	const max = 1024
	if len(s) > max {
		return s[:max-3] + "..."
	}
	return s
}

// NotifierAlerter sends through an alerts.Notifier: to each of the
// Budget's channels when it names some, else to the one the namespace
// annotations route to.
func NotifierAlerter(n *alerts.Notifier) Alerter { return notifierAlerter{n} }

type notifierAlerter struct{ n *alerts.Notifier }

func (a notifierAlerter) Send(ctx context.Context, al alerts.Alert, channels []string, annotations []map[string]string) []alerts.Result {
	if len(channels) == 0 {
		return []alerts.Result{a.n.Deliver(ctx, al, annotations...)}
	}
	out := make([]alerts.Result, 0, len(channels))
	for _, ch := range channels {
		out = append(out, a.n.Deliver(ctx, al, map[string]string{alerts.ChannelAnnotation: ch}))
	}
	return out
}
