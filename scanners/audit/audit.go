// Package audit is the background audit: it lists every object of the
// kinds the policies match — in pages, one page in memory at a time —
// judges each through the same review core as admission (no operation, as
// an audit), and hands the findings, grouped by namespace, to a Sink that
// writes them as PolicyReports. It rescans on an interval and whenever the
// policies, exceptions or config change.
package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/review"
	"github.com/tollgate-dev/tollgate/policies/vuln"
)

// Options configure an Auditor.
type Options struct {
	// Reader lists objects (live, in pages).
	Reader client.Reader
	// Mapper resolves kinds to resources and says which are namespaced.
	Mapper apimeta.RESTMapper
	// Policies returns the set to judge with now (read once per scan, so
	// a reload mid-scan never mixes versions); nil means not loaded yet.
	Policies func() *review.Set
	// Reviewer is the review core the audit judges through (default: one
	// with no image gate and no gates: the audit judges stored objects
	// as they are, without the registry or Budgets).
	Reviewer *review.Reviewer
	// Sink receives each scan's results.
	Sink Sink
	// Skip names namespaces never audited (Tollgate's own; the config's
	// exempt namespaces are skipped as well).
	Skip []string
	// Interval between scans (default 10m); Trigger scans sooner.
	Interval time.Duration
	// PageSize of each list call (default 500).
	PageSize int64
	// Registerer receives the audit's series; nil registers none.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	Now        func() time.Time
	// Facts measures the cluster itself (its API server's TLS, what an
	// anonymous request gets, Tollgate's decision log) as a ClusterFacts
	// object, judged once per scan by the policies of that kind; nil
	// judges none.
	Facts func(ctx context.Context) (map[string]any, error)
}

// ClusterFactsKind is the kind of the object the audit judges for what it
// measured of the cluster itself. It is not stored in the API: the
// cluster's Report names it like any other object.
var ClusterFactsKind = schema.GroupKind{Group: "tollgate.dev", Kind: "ClusterFacts"}

// maxPassExamples bounds the objects a Report lists as having passed a
// policy in a namespace: examples an auditor can look at, beside the count.
const maxPassExamples = 10

// Sink writes a scan's results: every namespace's (and the cluster
// scope's, namespace "") complete set, so whatever is not in it — fixed
// or deleted resources — is removed.
type Sink interface {
	Write(ctx context.Context, scan *Scan) error
}

// Result is one finding on one object.
type Result struct {
	Resource Resource
	Finding  policies.Finding
	// Image and Scan are set when the finding is on a container's image
	// and the review had that image's scan: the Report result carries
	// the scan's counts and most severe vulnerabilities. Team is then the
	// workload's team, which the compliance report groups them by.
	Image string
	Scan  *vuln.Summary
	Team  string
}

// Resource names the object a result is about.
type Resource struct {
	APIVersion, Kind, Namespace, Name, UID string
}

// Scan is one audit's outcome.
type Scan struct {
	Started, Finished time.Time
	Generation        int64
	// PolicySet names the policy set that judged (review.Set.PolicySet).
	PolicySet string
	// Scanned counts objects judged, by kind; Evaluated counts (object,
	// policy) pairs, so passes are known without listing them.
	Scanned   map[string]int
	Evaluated map[string]int // by namespace ("" cluster-scoped)
	// Examined counts the objects each Rego policy judged, by namespace
	// ("" cluster-scoped), policy and kind ("Namespace",
	// "rbac.authorization.k8s.io/ClusterRoleBinding"): the evidence of
	// what a control's policies looked at. Passed holds up to
	// maxPassExamples objects per namespace and policy that passed.
	Examined map[string]map[string]map[string]int
	Passed   map[string]map[string][]Resource
	// Inventory counts the objects of the cluster inventory policies
	// read, and says whether it was complete.
	Inventory         int
	InventoryComplete bool
	// Results are the findings, by namespace ("" for cluster-scoped).
	Results map[string][]Result
	// Errors are the kinds that could not be listed or policies that
	// errored, each with its reason.
	Errors []string
}

// Auditor runs scans.
type Auditor struct {
	opts    Options
	trigger chan struct{}
	metrics *auditMetrics

	mu   sync.Mutex
	last *Scan
}

// New checks the options.
func New(opts Options) (*Auditor, error) {
	if opts.Reader == nil || opts.Mapper == nil || opts.Policies == nil || opts.Sink == nil {
		return nil, errors.New("audit: Reader, Mapper, Policies and Sink are required")
	}
	if opts.Reviewer == nil {
		opts.Reviewer = review.New(review.Options{Now: opts.Now})
	}
	if opts.Interval <= 0 {
		opts.Interval = 10 * time.Minute
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 500
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	a := &Auditor{opts: opts, trigger: make(chan struct{}, 1)}
	if opts.Registerer != nil {
		a.metrics = newAuditMetrics(opts.Registerer)
	}
	return a, nil
}

// Trigger asks for a scan soon (policies, exceptions or config changed).
func (a *Auditor) Trigger() {
	select {
	case a.trigger <- struct{}{}:
	default:
	}
}

// Last is the last complete scan, nil before the first.
func (a *Auditor) Last() *Scan {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

// Run scans now, then on every interval or trigger, until ctx ends. The
// server runs it on the elected leader.
func (a *Auditor) Run(ctx context.Context) error {
	tick := time.NewTicker(a.opts.Interval)
	defer tick.Stop()
	for {
		if a.opts.Policies() != nil {
			if _, err := a.ScanOnce(ctx); err != nil && ctx.Err() == nil {
				a.opts.Logger.ErrorContext(ctx, "audit scan failed", "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-a.trigger:
			// Let a burst of changes settle.
			select {
			case <-time.After(2 * time.Second):
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// ScanOnce lists and judges everything the policies match, then writes
// the results through the Sink.
func (a *Auditor) ScanOnce(ctx context.Context) (*Scan, error) {
	set := a.opts.Policies()
	if set == nil || set.Engine == nil {
		return nil, errors.New("audit: policies are not loaded yet")
	}
	scan := &Scan{
		Started: a.opts.Now(), Generation: set.Generation, PolicySet: set.PolicySet, Scanned: map[string]int{}, Evaluated: map[string]int{},
		Results: map[string][]Result{}, Examined: map[string]map[string]map[string]int{}, Passed: map[string]map[string][]Resource{},
	}
	namespaces, err := a.namespaces(ctx)
	if err != nil {
		return nil, err
	}
	inv := a.inventory(ctx, scan)
	scan.Inventory, scan.InventoryComplete = inv.Len(), inv.Complete()
	skip := map[string]bool{}
	for _, ns := range append(slices.Clone(a.opts.Skip), set.Engine.Config().ExemptNamespaces...) {
		skip[ns] = true
	}
	kinds := review.AuditedKinds(set)
	audited := map[schema.GroupKind]bool{}
	for _, gk := range kinds {
		audited[gk] = true
	}
	sort.Slice(kinds, func(i, j int) bool { return kinds[i].String() < kinds[j].String() })
	if audited[ClusterFactsKind] && a.opts.Facts != nil {
		a.judgeFacts(ctx, set, inv, scan)
	}
	for _, gk := range slices.Compact(kinds) {
		if gk == ClusterFactsKind {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		mapping, err := a.opts.Mapper.RESTMapping(gk)
		if err != nil {
			if !apimeta.IsNoMatchError(err) {
				scan.Errors = append(scan.Errors, fmt.Sprintf("%s: %v", gk, err))
			}
			continue // a kind this cluster does not serve
		}
		if err := a.scanKind(ctx, set, mapping, namespaces, skip, audited, inv, scan); err != nil {
			scan.Errors = append(scan.Errors, fmt.Sprintf("%s: %v", gk, err))
		}
	}
	scan.Finished = a.opts.Now()
	if err := a.opts.Sink.Write(ctx, scan); err != nil {
		return scan, fmt.Errorf("writing reports: %w", err)
	}
	a.mu.Lock()
	a.last = scan
	a.mu.Unlock()
	a.metrics.observe(scan)
	a.opts.Logger.InfoContext(ctx, "audit scan done", "objects", total(scan.Scanned), "findings", totalResults(scan), "took", scan.Finished.Sub(scan.Started).String(), "errors", len(scan.Errors))
	return scan, nil
}

func (a *Auditor) namespaces(ctx context.Context) (map[string]map[string]any, error) {
	out := map[string]map[string]any{}
	var list corev1.NamespaceList
	opts := []client.ListOption{client.Limit(a.opts.PageSize)}
	for {
		if err := a.opts.Reader.List(ctx, &list, opts...); err != nil {
			return nil, fmt.Errorf("listing namespaces: %w", err)
		}
		for i := range list.Items {
			ns := &list.Items[i]
			out[ns.Name] = map[string]any{"metadata": map[string]any{"name": ns.Name, "labels": toAny(ns.Labels), "annotations": toAny(ns.Annotations)}}
		}
		if list.Continue == "" {
			return out, nil
		}
		opts = []client.ListOption{client.Limit(a.opts.PageSize), client.Continue(list.Continue)}
	}
}

// scanKind judges one kind page by page; only findings are kept.
func (a *Auditor) scanKind(ctx context.Context, set *review.Set, m *apimeta.RESTMapping, namespaces map[string]map[string]any, skip map[string]bool, audited map[schema.GroupKind]bool, inv *policies.Inventory, scan *Scan) error {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(m.GroupVersionKind.GroupVersion().WithKind(m.GroupVersionKind.Kind + "List"))
	namespaced := m.Scope.Name() == apimeta.RESTScopeNameNamespace
	opts := []client.ListOption{client.Limit(a.opts.PageSize)}
	kind := m.GroupVersionKind.GroupKind().String()
	found := map[policies.OwnerRef]bool{}
	for {
		if err := a.opts.Reader.List(ctx, list, opts...); err != nil {
			return fmt.Errorf("listing: %w", err)
		}
		for i := range list.Items {
			obj := &list.Items[i]
			ns := obj.GetNamespace()
			if namespaced && skip[ns] || !namespaced && m.GroupVersionKind.Kind == "Namespace" && skip[obj.GetName()] {
				continue
			}
			owned, err := a.ownedByAudited(ctx, obj, audited, found)
			if err != nil {
				return err
			}
			if owned {
				continue // its controller is judged: one finding, not one per pod
			}
			var nsObj map[string]any
			if namespaced {
				nsObj = namespaces[ns]
			}
			in := policies.ObjectInput(policies.SourceAudit, obj.Object, nsObj)
			in.Inventory = inv
			res := Resource{APIVersion: obj.GetAPIVersion(), Kind: obj.GetKind(), Namespace: ns, Name: obj.GetName(), UID: string(obj.GetUID())}
			a.judge(ctx, set, in, res, kind, nsObj, obj.GetLabels(), scan)
		}
		cont := list.GetContinue()
		if cont == "" {
			return nil
		}
		opts = []client.ListOption{client.Limit(a.opts.PageSize), client.Continue(cont)}
		list = &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(m.GroupVersionKind.GroupVersion().WithKind(m.GroupVersionKind.Kind + "List"))
	}
}

// judge reviews one object and records what was found and examined.
func (a *Auditor) judge(ctx context.Context, set *review.Set, in *policies.Input, res Resource, kind string, nsObj map[string]any, labels map[string]string, scan *Scan) {
	ns := res.Namespace
	d, err := review1(ctx, a.opts.Reviewer, set, in)
	scan.Scanned[kind]++
	if err != nil {
		scan.Errors = append(scan.Errors, fmt.Sprintf("%s %s/%s: %v", kind, ns, res.Name, err))
		return
	}
	scan.Evaluated[ns] += d.Applied
	images := scannedImages(set, in, d)
	team := ""
	if len(images) > 0 {
		team = teamOf(set, labels, nsObj)
	}
	failed := map[string]bool{}
	for _, f := range d.Findings {
		r := Result{Resource: res, Finding: f}
		if img, ok := images[f.Path]; ok {
			r.Image, r.Scan, r.Team = img, d.ImageScans[img], team
		}
		scan.Results[ns] = append(scan.Results[ns], r)
		failed[f.Policy] = true
	}
	for _, e := range d.Errors {
		scan.Errors = append(scan.Errors, fmt.Sprintf("%s %s/%s: %v", kind, ns, res.Name, e))
		failed[e.Policy] = true
	}
	if len(d.Checked) == 0 {
		return
	}
	byPolicy := scan.Examined[ns]
	if byPolicy == nil {
		byPolicy = map[string]map[string]int{}
		scan.Examined[ns] = byPolicy
	}
	passed := scan.Passed[ns]
	if passed == nil {
		passed = map[string][]Resource{}
		scan.Passed[ns] = passed
	}
	examined := res.Kind
	if group, _, ok := strings.Cut(res.APIVersion, "/"); ok {
		examined = group + "/" + res.Kind
	}
	for _, id := range d.Checked {
		byKind := byPolicy[id]
		if byKind == nil {
			byKind = map[string]int{}
			byPolicy[id] = byKind
		}
		byKind[examined]++
		if !failed[id] && len(passed[id]) < maxPassExamples {
			passed[id] = append(passed[id], res)
		}
	}
}

// inventory lists the kinds policies read beside the object they judge
// (NetworkPolicies, RBAC, ServiceAccounts, webhook configurations). A kind
// that cannot be listed leaves the inventory incomplete, so no policy
// concludes from it that something is missing, and is a scan error.
func (a *Auditor) inventory(ctx context.Context, scan *Scan) *policies.Inventory {
	b := policies.NewInventory(true)
	gvks := make([]policies.GroupVersionKind, 0, len(policies.InventoryKinds))
	for gvk := range policies.InventoryKinds {
		gvks = append(gvks, gvk)
	}
	sort.Slice(gvks, func(i, j int) bool { return gvks[i].Group+"/"+gvks[i].Kind < gvks[j].Group+"/"+gvks[j].Kind })
	for _, gvk := range gvks {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(schema.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind + "List"})
		opts := []client.ListOption{client.Limit(a.opts.PageSize)}
		for {
			if err := a.opts.Reader.List(ctx, list, opts...); err != nil {
				b.Incomplete()
				scan.Errors = append(scan.Errors, fmt.Sprintf("inventory: listing %s: %v", gvk.Kind, err))
				break
			}
			for i := range list.Items {
				if _, err := b.Add(list.Items[i].Object); err != nil {
					scan.Errors = append(scan.Errors, "inventory: "+err.Error())
				}
			}
			cont := list.GetContinue()
			if cont == "" {
				break
			}
			opts = []client.ListOption{client.Limit(a.opts.PageSize), client.Continue(cont)}
			list = &unstructured.UnstructuredList{}
			list.SetGroupVersionKind(schema.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind + "List"})
		}
	}
	return b.Build()
}

// judgeFacts judges what the audit measured of the cluster itself. A
// measurement that fails is a scan error, and the facts are not judged:
// no policy passes on facts that were not gathered.
func (a *Auditor) judgeFacts(ctx context.Context, set *review.Set, inv *policies.Inventory, scan *Scan) {
	facts, err := a.opts.Facts(ctx)
	if err != nil {
		scan.Errors = append(scan.Errors, "cluster facts: "+err.Error())
		return
	}
	facts["apiVersion"] = ClusterFactsKind.Group + "/v1alpha1"
	facts["kind"] = ClusterFactsKind.Kind
	meta, _ := facts["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	if name == "" {
		name = "cluster"
		facts["metadata"] = map[string]any{"name": name}
	}
	in := policies.ObjectInput(policies.SourceAudit, facts, nil)
	in.Inventory = inv
	res := Resource{APIVersion: ClusterFactsKind.Group + "/v1alpha1", Kind: ClusterFactsKind.Kind, Name: name}
	a.judge(ctx, set, in, res, ClusterFactsKind.String(), nil, nil, scan)
}

// ownedByAudited reports whether an object is judged at its controller
// instead (a Deployment's ReplicaSet, a ReplicaSet's Pod): its controller
// must be of a kind that makes such objects, of an audited kind, and exist
// in its namespace with the UID its ownerReference names. An
// ownerReference alone is a claim anyone can write; an object whose claim
// does not hold is judged as itself. found remembers the look-ups of one
// listing, so the pods of one ReplicaSet read it once.
func (a *Auditor) ownedByAudited(ctx context.Context, obj *unstructured.Unstructured, audited map[schema.GroupKind]bool, found map[policies.OwnerRef]bool) (bool, error) {
	gvk := obj.GroupVersionKind()
	ref, ok := policies.ClaimedController(policies.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind}, obj.Object)
	if !ok || !audited[schema.GroupKind{Group: ref.Group(), Kind: ref.Kind}] {
		return false, nil
	}
	if f, ok := found[ref]; ok {
		return f, nil
	}
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(schema.GroupVersionKind{Group: ref.Group(), Version: "v1", Kind: ref.Kind})
	err := a.opts.Reader.Get(ctx, client.ObjectKey{Namespace: obj.GetNamespace(), Name: ref.Name}, m)
	switch {
	case apierrors.IsNotFound(err):
		found[ref] = false
	case err != nil:
		return false, fmt.Errorf("reading %s %s/%s, the controller of %s: %w", ref.Kind, obj.GetNamespace(), ref.Name, obj.GetName(), err)
	default:
		found[ref] = string(m.UID) == ref.UID
	}
	return found[ref], nil
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func totalResults(s *Scan) int {
	n := 0
	for _, r := range s.Results {
		n += len(r)
	}
	return n
}

// scannedImages maps the field path of each container image of the input
// that the review had a scan of to the image ("spec.template.spec.containers[0].image"
// to "registry.example/app:1"), so a finding at that path can carry the
// scan.
func scannedImages(set *review.Set, in *policies.Input, v *review.Verdict) map[string]string {
	if len(v.ImageScans) == 0 {
		return nil
	}
	out := map[string]string{}
	for _, c := range set.Engine.Images(in) {
		if v.ImageScans[c.Image] != nil {
			out[c.Path] = c.Image
		}
	}
	return out
}

// teamOf is a workload's team: its ownership label (the config's team
// key), else its Namespace's.
func teamOf(set *review.Set, labels map[string]string, namespace map[string]any) string {
	key := set.Engine.Config().Labels.Team.Key
	if key == "" {
		return ""
	}
	if t := labels[key]; t != "" {
		return t
	}
	meta, _ := namespace["metadata"].(map[string]any)
	nsLabels, _ := meta["labels"].(map[string]any)
	t, _ := nsLabels[key].(string)
	return t
}

// review1 reviews one object, containing a panic of any evaluator (the
// Rego engine, a Gatekeeper, Kyverno or VAP plugin, a gate): the object
// is reported as not judged and the scan goes on, as admission answers a
// panicking request with an error and serves the next.
func review1(ctx context.Context, r *review.Reviewer, set *review.Set, in *policies.Input) (v *review.Verdict, err error) {
	defer func() {
		if p := recover(); p != nil {
			v, err = nil, fmt.Errorf("not judged: the review panicked: %v", p)
		}
	}()
	return r.Review(ctx, set, in), nil
}
