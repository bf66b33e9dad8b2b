package budget

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/finops"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
)

// Gate is budget-aware admission: it estimates the monthly cost a
// workload change adds and, for each Budget whose scope covers it, warns
// or denies (per the Budget's action) when the Budget's forecast plus the
// change would exceed its amount. It reads Budgets from the cache the
// scanner's status writes keep current, and sends nothing: a dry run is
// judged the same, with no side effect.
//
// The forecast a Budget's status holds is the scanner's, as of its last
// scan. What this gate admitted since (a burst of creates, a scale) is not
// in it yet: the gate keeps account of it in memory, per object, and adds
// it to the forecast until a scan newer than the admission has counted it
// (the scanner counts pending pods and replicas not yet created as well as
// running ones, and governed objects such as claims from their fields).
// Each replica of the server keeps its own account.
type Gate struct {
	// Budgets lists the Budgets (from an informer cache).
	Budgets client.Reader
	// Estimator prices workloads with the same catalogue as the scanner.
	Estimator *finops.Estimator
	// Nodes counts the nodes a DaemonSet's pods would run on; nil charges
	// a DaemonSet for the Estimator's node count.
	Nodes NodeCounter
	// Governed gives the config's governed kinds as loaded now (they
	// follow the config as it is reloaded); nil prices none of them.
	Governed func() []policies.GovernedKind
	// Now is the clock admissions are recorded by (default time.Now).
	Now func() time.Time
	// Cluster is this cluster's name (--cluster-name): a Budget across
	// clusters counts a change here only when it names it (or "*").
	Cluster string
	// MaxVerdictAge is how old the verdict of a Budget across clusters
	// may be (its last evaluation by the central Tollgate, as mirrored
	// here) before it stops denying: past it, a change it would deny is
	// warned instead, so a central cluster out of reach never denies by
	// surprise (default DefaultMaxVerdictAge).
	MaxVerdictAge time.Duration

	mu       sync.Mutex
	admitted map[admittedKey]*admittedChange
	undo     map[*policies.Input]undo
	// tallies keep, per Budget, the sum of the admitted changes it counts,
	// updated as the account changes: a check costs the number of Budgets,
	// not the number of changes admitted since their scans.
	tallies map[tallyKey]*tally
	// forgotUntil is the scan time the account was last trimmed to.
	forgotUntil time.Time
	// labelSets are the label sets the account's entries share.
	labelSets labelSets
}

// labelSets interns the label sets the account holds: the thousands of
// pods a burst creates from one template carry one set of labels, and a
// namespace's labels are one set, so each is held once rather than once
// per admitted change. Interned maps are never written.
type labelSets struct {
	byKey map[string]map[string]string
	key   []byte
}

// maxLabelSets bounds the table; past it, it starts again (entries keep
// the maps they hold).
const maxLabelSets = 4096

func (l *labelSets) intern(m map[string]string) map[string]string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	l.key = l.key[:0]
	for _, k := range keys {
		// Lengths first: no key or value can be mistaken for a separator.
		l.key = strconv.AppendInt(l.key, int64(len(k)), 10)
		l.key = append(append(l.key, ':'), k...)
		l.key = strconv.AppendInt(l.key, int64(len(m[k])), 10)
		l.key = append(append(l.key, ':'), m[k]...)
	}
	if same, ok := l.byKey[string(l.key)]; ok {
		return same
	}
	if l.byKey == nil || len(l.byKey) >= maxLabelSets {
		l.byKey = map[string]map[string]string{}
	}
	l.byKey[string(l.key)] = m
	return m
}

// tallyKey names a Budget across its lifetime: a Budget deleted and made
// again under its name is another.
type tallyKey struct {
	namespace, name string
	uid             types.UID
}

func tallyKeyOf(b *v1alpha1.Budget) tallyKey { return tallyKey{b.Namespace, b.Name, b.UID} }

// tally is what one Budget counts of the account: the changes in its
// scope admitted after since, each with what it adds.
type tally struct {
	since      time.Time
	generation int64
	scopeKey   string
	scope      Scope
	sum        float64
	parts      map[admittedKey]float64
}

// counts reports whether the tally counts an admitted change, and what it
// adds.
func (t *tally) counts(a *admittedChange) (float64, bool) {
	if a == nil || !a.at.After(t.since) || !t.scope.Covers(a.namespace, a.nsLabels, a.labels) {
		return 0, false
	}
	base, ok := a.baseSince(t.since)
	if !ok {
		return 0, false
	}
	return max(a.latest-base, 0), true
}

// setLocked records the account's entry for key (nil removes it) and
// keeps every tally in step. The caller holds g.mu.
func (g *Gate) setLocked(key admittedKey, a *admittedChange) {
	if a == nil {
		delete(g.admitted, key)
	} else {
		g.admitted[key] = a
	}
	for _, t := range g.tallies {
		if p, ok := t.parts[key]; ok {
			t.sum -= p
			delete(t.parts, key)
		}
		if p, ok := t.counts(a); ok {
			t.sum += p
			t.parts[key] = p
		}
	}
}

// tallyLocked returns the tally of a Budget, building it from the account
// when the Budget is new to the gate or its scope or last scan changed.
func (g *Gate) tallyLocked(b *v1alpha1.Budget, scope Scope) *tally {
	since := b.CreationTimestamp.Time
	if t := countedUntil(b); t != nil {
		since = t.Time
	}
	scopeKey := scope.Namespace + "\x00"
	if scope.Selector != nil {
		scopeKey += scope.Selector.String()
	}
	if t, ok := g.tallies[tallyKeyOf(b)]; ok && t.since.Equal(since) && t.generation == b.Generation && t.scopeKey == scopeKey {
		return t
	}
	t := &tally{since: since, generation: b.Generation, scopeKey: scopeKey, scope: scope, parts: map[admittedKey]float64{}}
	for k, a := range g.admitted {
		if p, ok := t.counts(a); ok {
			t.sum += p
			t.parts[k] = p
		}
	}
	if g.tallies == nil {
		g.tallies = map[tallyKey]*tally{}
	}
	g.tallies[tallyKeyOf(b)] = t
	return t
}

// undo is what Settle restores when a counted change is denied after all.
type undo struct {
	key        admittedKey
	prev, made *admittedChange
}

// admittedKey names the object an admitted change was made to.
type admittedKey struct{ group, kind, namespace, name string }

// admittedChange is what the gate admitted for one object since a scan:
// its changes with the cost before each (steps), its monthly cost after
// the last (latest), where it lives and the labels its pods carry.
type admittedChange struct {
	at     time.Time
	latest float64
	// steps are the object's admitted changes since the account first
	// held it: when each was admitted and the cost the object had before
	// it. A Budget counts from the first change after its last scan: what
	// came before is in its forecast already, whatever other Budgets'
	// scans have or have not counted.
	steps     []costStep
	namespace string
	nsLabels  map[string]string
	labels    map[string]string
}

// costStep is one admitted change of an object: when, and the cost the
// object had before it.
type costStep struct {
	at  time.Time
	old float64
}

// maxSteps bounds the changes remembered per object; past it the oldest
// go, and a Budget scanned before the first kept one counts from it.
const maxSteps = 32

// baseSince is the cost the object had when its first change after since
// was admitted, and whether it changed after since at all.
func (a *admittedChange) baseSince(since time.Time) (float64, bool) {
	for _, st := range a.steps {
		if st.at.After(since) {
			return st.old, true
		}
	}
	return 0, false
}

// maxAdmitted bounds the account: beyond it the oldest entries go (the
// next scan counts them).
const maxAdmitted = 100000

// Evaluate implements the review core's Evaluator: the findings of one
// change, one per Budget it would take over its amount. Budgets are advice
// about money, not safety: Budgets that cannot be read give a warning,
// never a reason to stop the cluster's changes.
//
// An admission (not a dry run) that no Budget denies is counted at once,
// in the same step as its check, so concurrent requests see each other;
// Settle keeps or drops it once the review has decided.
func (g *Gate) Evaluate(ctx context.Context, in *policies.Input) *policies.Decision {
	if g == nil || in.Object == nil {
		return &policies.Decision{}
	}
	change, ok, unpriced := g.priced(ctx, in)
	if unpriced != nil {
		return &policies.Decision{Findings: []policies.Finding{unpricedFinding(in, unpriced)}}
	}
	if !ok || change.Monthly.Total <= 0 {
		return &policies.Decision{} // saves money, or costs nothing: never stopped, nothing to count
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	found, err := g.check(ctx, in, change)
	if err != nil {
		found = []policies.Finding{{Policy: "budget", Action: policies.ActionWarn, Severity: policies.SeverityLow,
			Message: "the cost of this change could not be checked against budgets: " + err.Error()}}
	}
	denied := slices.ContainsFunc(found, func(f policies.Finding) bool { return f.Action == policies.ActionEnforce })
	if !denied && in.Source == policies.SourceAdmission && !in.DryRun {
		g.reserveLocked(in, change)
	}
	return &policies.Decision{Findings: found}
}

// Settle implements review.Committer: a change the review denied (for
// this gate's reasons or another's) is no longer counted.
func (g *Gate) Settle(_ context.Context, in *policies.Input, allowed bool) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	u, ok := g.undo[in]
	if !ok {
		return
	}
	delete(g.undo, in)
	if allowed {
		return
	}
	if g.admitted[u.key] == u.made {
		g.setLocked(u.key, u.prev)
	}
}

// priced returns the change an input makes to the monthly cost. Whole
// objects are priced as written; a pod's in-place resize is priced as the
// pod itself, owned or not (its owner's template no longer says what it
// reserves); a scale arrives judged as its parent at the new size (see
// review.Subresources). Other subresources cost nothing. unpriced is why
// a governed kind's new object cannot be priced: the API server knows
// nothing of its price fields, so the gate says so rather than count it
// free.
func (g *Gate) priced(ctx context.Context, in *policies.Input) (change finops.Change, ok bool, unpriced error) {
	oldObj, newObj := in.OldObject, in.Object
	switch in.SubResource {
	case "", "scale":
		if in.UserInfo != nil && !builtinController(in.UserInfo) {
			// Only the built-in controllers make the objects their owner's
			// estimate covers (a Deployment's ReplicaSets, a ReplicaSet's
			// pods): anyone else's claim of a controller owner is no
			// reason to price an object at nothing.
			oldObj, newObj = withoutOwners(oldObj), withoutOwners(newObj)
		}
	case "resize":
		oldObj, newObj = withoutOwners(oldObj), withoutOwners(newObj)
	default:
		return finops.Change{}, false, nil
	}
	if oldObj != nil {
		est, _, err := g.estimatorFor(ctx, oldObj).Estimate(oldObj)
		switch {
		case err == nil:
			change.Old = est
		case !g.governed(in.Kind):
			return finops.Change{}, false, nil // an object that cannot be priced is judged by the other policies and the API server
		}
		// A governed kind's old object that could not be priced was never
		// counted: the new one counts in full.
	}
	est, _, err := g.estimatorFor(ctx, newObj).Estimate(newObj)
	if err != nil {
		if g.governed(in.Kind) {
			// The API server knows nothing of a governed kind's price
			// fields: a claim that cannot be priced is said so, never
			// counted as free in silence.
			return finops.Change{}, false, err
		}
		return finops.Change{}, false, nil
	}
	change.New = est
	if in.Operation == "CREATE" && in.Kind.Group == "" && in.Kind.Kind == "PersistentVolumeClaim" && in.UserInfo != nil &&
		slices.Contains(statefulSetControllers, in.UserInfo.Username) {
		// A StatefulSet's claim, made from its volumeClaimTemplates: the
		// StatefulSet's estimate counted it.
		change.New = finops.WorkloadEstimate{}
	}
	change.Monthly = change.New.Monthly.Sub(change.Old.Monthly)
	return change, true, nil
}

// builtinController reports whether a user is one of
// kube-controller-manager's identities (the controller manager's own, or a
// controller's service account in kube-system) or a cluster administrator
// (system:masters, which a controller manager run with admin credentials
// also is, and who can remove any Budget anyway).
func builtinController(u *policies.UserInfo) bool {
	return u.Username == "system:kube-controller-manager" || strings.HasPrefix(u.Username, "system:serviceaccount:kube-system:") ||
		slices.Contains(u.Groups, "system:masters")
}

// statefulSetControllers are the identities the StatefulSet controller
// creates its pods' claims as (with and without per-controller
// credentials): only kube-controller-manager holds them.
var statefulSetControllers = []string{"system:serviceaccount:kube-system:statefulset-controller", "system:kube-controller-manager"}

// NodeCounter counts the nodes whose labels match a nodeSelector (all
// nodes for an empty one).
type NodeCounter interface {
	CountNodes(ctx context.Context, selector map[string]string) (int, error)
}

// estimatorFor is the Estimator for an object: for a DaemonSet, one that
// charges the nodes its nodeSelector picks, when they can be counted.
func (g *Gate) estimatorFor(ctx context.Context, obj map[string]any) *finops.Estimator {
	est := g.Estimator
	if g.Governed != nil {
		est = est.WithGovernedKinds(g.Governed())
	}
	if g.Nodes == nil || obj["kind"] != "DaemonSet" {
		return est
	}
	spec := dig(obj, []string{"spec", "template", "spec"})
	n, err := g.Nodes.CountNodes(ctx, stringMap(spec["nodeSelector"]))
	if err != nil {
		return est
	}
	return est.WithNodes(n)
}

// governed reports whether a kind is one of the config's governed kinds
// with price lines.
func (g *Gate) governed(gvk policies.GroupVersionKind) bool {
	if g.Governed == nil {
		return false
	}
	for _, k := range g.Governed() {
		if k.Group == gvk.Group && k.Kind == gvk.Kind {
			return len(k.Pricing) > 0
		}
	}
	return false
}

// unpricedFinding warns that a governed kind's object could not be priced,
// naming the kind, the object and the field.
func unpricedFinding(in *policies.Input, err error) policies.Finding {
	meta, _ := in.Object["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	f := policies.Finding{
		Policy: "budget", Title: "Changes stay within the budget", Action: policies.ActionWarn, Severity: policies.SeverityMedium,
		Message:     fmt.Sprintf("%s %s/%s cannot be priced, so no Budget counts it: %v", in.Kind.Kind, in.ObjectNamespace(), name, err),
		Remediation: "Set the field the config's governedKinds pricing names, to a class the price catalogue lists.",
	}
	var fe *finops.FieldError
	if errors.As(err, &fe) {
		f.Path = policies.FormatPath(fe.Path)
	}
	return f
}

// NodeCount counts nodes from a reader of their metadata (an informer
// cache: nodes are few, and their labels are all it keeps).
type NodeCount struct {
	Reader client.Reader
}

var _ NodeCounter = (*NodeCount)(nil)

// CountNodes implements NodeCounter.
func (c *NodeCount) CountNodes(ctx context.Context, selector map[string]string) (int, error) {
	var list metav1.PartialObjectMetadataList
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NodeList"))
	if err := c.Reader.List(ctx, &list); err != nil {
		return 0, fmt.Errorf("listing nodes: %w", err)
	}
	n := 0
	for i := range list.Items {
		if labels.SelectorFromSet(selector).Matches(labels.Set(list.Items[i].Labels)) {
			n++
		}
	}
	return n, nil
}

// Check returns the findings of one change: one per Budget the change
// would take over its amount, counting what the gate admitted since the
// Budget's last scan. Changes that save money, and kinds that cost
// nothing, find nothing.
func (g *Gate) Check(ctx context.Context, in *policies.Input) ([]policies.Finding, error) {
	if g == nil {
		return nil, nil
	}
	if in.Object == nil {
		return nil, nil
	}
	change, ok, _ := g.priced(ctx, in)
	if !ok || change.Monthly.Total <= 0 {
		return nil, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.check(ctx, in, change)
}

// check judges a change that adds cost; the caller holds g.mu.
func (g *Gate) check(ctx context.Context, in *policies.Input, change finops.Change) ([]policies.Finding, error) {
	var list v1alpha1.BudgetList
	if err := g.Budgets.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("reading Budgets: %w", err)
	}
	g.forgetScanned(&list)
	g.keepTallies(&list)
	var nsLabels map[string]string
	if meta, ok := in.Namespace["metadata"].(map[string]any); ok {
		nsLabels = stringMap(meta["labels"])
	}
	ns := in.ObjectNamespace()
	podLabels := templateLabels(in.Object)
	added := change.Monthly.Total
	key := keyOf(in)
	cur := g.Estimator.Currency()
	money := func(v float64) string { return finops.Money(v, cur, finops.Cents) }
	var out []policies.Finding
	for i := range list.Items {
		b := &list.Items[i]
		if b.Spec.Action == v1alpha1.BudgetActionNone {
			continue
		}
		scope, err := ScopeOf(b)
		if err != nil || !scope.Covers(ns, nsLabels, podLabels) {
			continue
		}
		amount, err := ParseAmount(b.Spec.Amount)
		if err != nil || amount <= 0 {
			continue
		}
		var staleVerdict string
		if AcrossClusters(b) {
			// Judged by the central verdict, only in the clusters it
			// spans, and only once there is one.
			if !SpansCluster(b, g.Cluster) || b.Status.LastScanTime == nil {
				continue
			}
			staleVerdict = g.staleVerdict(b)
		}
		forecast, _ := strconv.ParseFloat(b.Status.Forecast, 64)
		forecast += g.admittedSince(g.tallyLocked(b, scope), key, in.Operation == "CREATE", change.Old.Monthly.Total)
		if forecast+added <= amount {
			continue
		}
		period := b.Spec.Period
		if period == "" {
			period = v1alpha1.PeriodMonthly
		}
		msg := fmt.Sprintf("this adds %s/month; %s is forecast at %s of its %s %s budget (%s/%s), %s with this change",
			money(added), scope, money(forecast), money(amount), period, b.Namespace, b.Name, money(forecast+added))
		action := policies.ActionWarn
		if b.Spec.Action == v1alpha1.BudgetActionDeny && staleVerdict == "" {
			action = policies.ActionEnforce
		}
		if AcrossClusters(b) {
			msg = strings.Replace(msg, scope.String(), scope.String()+" across clusters", 1)
		}
		if staleVerdict != "" {
			msg = staleVerdict + "; " + msg
		}
		out = append(out, policies.Finding{
			Policy: "budget/" + b.Namespace + "/" + b.Name, Title: "Changes stay within the budget",
			Message: msg, Severity: policies.SeverityMedium, Action: action,
			Remediation: "Lower the replicas or requests, or raise the Budget " + b.Namespace + "/" + b.Name + " with the team's FinOps owner.",
		})
	}
	return out, nil
}

// DefaultMaxVerdictAge is how old a Budget across clusters' verdict may be
// before it warns instead of denying: three default scans, so one missed
// scan or mirror sync does not change a thing.
const DefaultMaxVerdictAge = 15 * time.Minute

// clock is the gate's Now, time.Now by default.
func (g *Gate) clock() func() time.Time {
	if g.Now != nil {
		return g.Now
	}
	return time.Now
}

// staleVerdict says why a Budget across clusters' verdict is too old to
// deny on, or "".
func (g *Gate) staleVerdict(b *v1alpha1.Budget) string {
	maxAge := cmp.Or(g.MaxVerdictAge, DefaultMaxVerdictAge)
	age := g.clock()().Sub(b.Status.LastScanTime.Time)
	if age <= maxAge {
		return ""
	}
	// Said first, and short: the API server may cut a warning past 256
	// characters.
	if m := b.Status.Mirror; m != nil {
		return fmt.Sprintf("verdict %s old, over %s (central cluster last reached %s): warned, not denied",
			(age + time.Second - 1).Truncate(time.Second), maxAge, m.Time.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("verdict %s old, over %s (fleet Prometheus not read since): warned, not denied", (age + time.Second - 1).Truncate(time.Second), maxAge)
}

// admittedSince is what the gate admitted, in the Budget's scope, after
// its last scan (or its creation) and not yet in its forecast: its tally.
// The object being changed counts what its earlier admitted changes added
// to the cost it has now (old): a retried request is not counted twice,
// and a CREATE replaces what was admitted for the same name before.
func (g *Gate) admittedSince(t *tally, key admittedKey, create bool, old float64) float64 {
	sum := t.sum
	if p, ok := t.parts[key]; ok {
		sum -= p
		if !create {
			if base, ok := g.admitted[key].baseSince(t.since); ok {
				sum += max(old-base, 0)
			}
		}
	}
	return max(sum, 0)
}

// keepTallies drops the tallies of Budgets that no longer exist.
func (g *Gate) keepTallies(list *v1alpha1.BudgetList) {
	if len(g.tallies) == 0 {
		return
	}
	live := make(map[tallyKey]bool, len(list.Items))
	for i := range list.Items {
		live[tallyKeyOf(&list.Items[i])] = true
	}
	for k := range g.tallies {
		if !live[k] {
			delete(g.tallies, k)
		}
	}
}

// reserveLocked counts a change being admitted, remembering what it
// replaced so that Settle can undo it.
func (g *Gate) reserveLocked(in *policies.Input, change finops.Change) {
	now := g.clock()
	key := keyOf(in)
	if g.admitted == nil {
		g.admitted = map[admittedKey]*admittedChange{}
		g.undo = map[*policies.Input]undo{}
	}
	prev := g.admitted[key]
	a := &admittedChange{at: now(), latest: change.New.Monthly.Total}
	if prev != nil && in.Operation != "CREATE" {
		// A new slice: prev stays as it was for Settle to restore.
		keep := prev.steps[max(len(prev.steps)-(maxSteps-1), 0):]
		a.steps = append(slices.Clone(keep), costStep{at: a.at, old: change.Old.Monthly.Total})
	} else {
		a.steps = []costStep{{at: a.at, old: change.Old.Monthly.Total}}
	}
	a.namespace, a.labels = in.ObjectNamespace(), g.labelSets.intern(templateLabels(in.Object))
	if meta, ok := in.Namespace["metadata"].(map[string]any); ok {
		a.nsLabels = g.labelSets.intern(stringMap(meta["labels"]))
	}
	g.setLocked(key, a)
	if len(g.undo) >= maxAdmitted {
		clear(g.undo) // reviews that never settled (a panic contained between check and verdict)
	}
	g.undo[in] = undo{key: key, prev: prev, made: a}
	if len(g.admitted) > maxAdmitted {
		g.pruneLocked()
	}
}

// pruneLocked drops the oldest tenth of the account.
func (g *Gate) pruneLocked() {
	times := make([]time.Time, 0, len(g.admitted))
	for _, a := range g.admitted {
		times = append(times, a.at)
	}
	slices.SortFunc(times, time.Time.Compare)
	cut := times[len(times)/10]
	for k, a := range g.admitted {
		if !a.at.After(cut) {
			g.setLocked(k, nil)
		}
	}
}

// forgetScanned drops what every Budget's last scan has counted: what was
// admitted before the oldest of their scans.
func (g *Gate) forgetScanned(list *v1alpha1.BudgetList) {
	var oldest time.Time
	for i := range list.Items {
		st := countedUntil(&list.Items[i])
		if st == nil {
			return // a Budget never scanned counts everything admitted
		}
		if oldest.IsZero() || st.Before(&metav1.Time{Time: oldest}) {
			oldest = st.Time
		}
	}
	if oldest.IsZero() || !oldest.After(g.forgotUntil) {
		return // nothing scanned since the last trim
	}
	g.forgotUntil = oldest
	for k, a := range g.admitted {
		if !a.at.After(oldest) {
			g.setLocked(k, nil)
		}
	}
}

func keyOf(in *policies.Input) admittedKey {
	meta, _ := in.Object["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	return admittedKey{in.Kind.Group, in.Kind.Kind, in.ObjectNamespace(), name}
}

// withoutOwners is a copy of obj with no ownerReferences.
func withoutOwners(obj map[string]any) map[string]any {
	if obj == nil {
		return nil
	}
	out := make(map[string]any, len(obj))
	for k, v := range obj {
		out[k] = v
	}
	if meta, ok := obj["metadata"].(map[string]any); ok {
		m := make(map[string]any, len(meta))
		for k, v := range meta {
			if k != "ownerReferences" {
				m[k] = v
			}
		}
		out["metadata"] = m
	}
	return out
}

// templateLabels are the labels the object's pods will carry: a pod's own,
// or its template's (CronJob: the job template's pod template).
func templateLabels(obj map[string]any) map[string]string {
	cur := obj
	for _, path := range [][]string{{"spec", "jobTemplate", "spec", "template"}, {"spec", "template"}} {
		if m := dig(obj, path); m != nil {
			cur = m
			break
		}
	}
	meta, _ := cur["metadata"].(map[string]any)
	return stringMap(meta["labels"])
}

func dig(obj map[string]any, path []string) map[string]any {
	cur := obj
	for _, k := range path {
		next, ok := cur[k].(map[string]any)
		if !ok {
			return nil
		}
		cur = next
	}
	return cur
}

func stringMap(v any) map[string]string {
	m, _ := v.(map[string]any)
	out := make(map[string]string, len(m))
	for k, v := range m {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}
