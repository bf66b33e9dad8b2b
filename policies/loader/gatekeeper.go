package loader

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/gatekeeper"
	"github.com/tollgate-dev/tollgate/policies/review"
)

// The kinds the Gatekeeper format reads.
var (
	templateGVK = schema.GroupVersionKind{Group: "templates.gatekeeper.sh", Version: "v1", Kind: "ConstraintTemplate"}
	// constraintVersion is the version constraints are read at (their
	// CRD's storage version, as Gatekeeper reads them).
	constraintVersion = schema.GroupVersion{Group: "constraints.gatekeeper.sh", Version: "v1beta1"}
)

// Labels of the constraint CRDs Tollgate creates: one of them, without an
// owner reference (Gatekeeper sets its ConstraintTemplate as the owner), is
// one Tollgate may update.
const (
	labelManagedBy = "app.kubernetes.io/managed-by"
	managedBy      = "tollgate"
)

// GatekeeperOptions configure the Gatekeeper format.
type GatekeeperOptions struct {
	// PolicyTimeout bounds one review by the constraints (default
	// policies.DefaultPolicyTimeout).
	PolicyTimeout time.Duration
	// CreateConstraintCRDs makes the format create, and keep up to date,
	// the CRD of each loaded template's constraint kind, as Gatekeeper
	// does, for clusters without Gatekeeper. A CRD Tollgate did not create
	// (Gatekeeper's) is never changed, and no CRD is ever deleted: a CRD
	// going takes every constraint of its kind with it.
	CreateConstraintCRDs bool
	// CRDs reads the constraint CRDs live (so Tollgate needs no list or
	// watch on CustomResourceDefinitions) and writes them; required with
	// CreateConstraintCRDs.
	CRDs client.Client
	// Leader says whether this replica writes the CRDs (the leader does);
	// nil means always.
	Leader func() bool
	Logger *slog.Logger
}

// Validate checks the options.
func (o *GatekeeperOptions) Validate() error {
	switch {
	case o.PolicyTimeout < 0:
		return fmt.Errorf("gatekeeper: policy timeout %s is negative", o.PolicyTimeout)
	case o.CreateConstraintCRDs && o.CRDs == nil:
		return errors.New("gatekeeper: creating constraint CRDs needs a CRDs client")
	}
	return nil
}

// GatekeeperFormat loads the ConstraintTemplates (templates.gatekeeper.sh)
// and Constraints (constraints.gatekeeper.sh) applied to the cluster as
// Tollgate's Gatekeeper plugin. It implements Format and Configurer.
//
// A reload of unchanged objects costs no compile: the evaluator is compiled
// again only when a template's or constraint's spec, metadata or identity
// changed (status writes, such as a Gatekeeper beside Tollgate makes, do
// not count). A template or constraint whose new version does not load
// keeps its last good version in force, as in Gatekeeper, and is reported
// as a Problem; so is one that never loaded, while the rest load.
//
// Referential templates read data.inventory: the kinds the config's
// gatekeeper.sync names are kept in it from informers; an evaluator
// compiled again (or for other synced kinds) is filled from the informers'
// caches before it is published.
type GatekeeperFormat struct {
	opts GatekeeperOptions

	// mu guards what follows: the loader calls Configure, Watch and Load
	// from one goroutine, the informers' handlers from theirs.
	mu sync.Mutex
	// ctx, cache and reload come from Watch.
	ctx    context.Context
	cache  cache.Cache
	reload func()
	// watched are the kinds whose informers call reload (templates,
	// constraint kinds) or keep the inventory (synced kinds).
	watched map[schema.GroupVersionKind]bool
	// waiting are constraint kinds whose CRD does not exist yet: a
	// goroutine retries watching them.
	waiting map[schema.GroupVersionKind]bool

	evaluator *gatekeeper.Evaluator
	// compiled holds the fingerprint of each object, by source, the
	// evaluator was compiled from (nil before the first compile).
	compiled map[string]string
	// good holds the last version of each object that loaded, by source.
	good     map[string]*unstructured.Unstructured
	problems []Problem

	// sync are the configured kinds; synced those the inventory holds.
	sync, synced []schema.GroupVersionKind
	// crdsChecked are the CRDs (by name, with the fingerprint of their
	// spec) written or found up to date since the last compile.
	crdsChecked map[string]string
}

var (
	_ Format     = (*GatekeeperFormat)(nil)
	_ Configurer = (*GatekeeperFormat)(nil)
)

// NewGatekeeperFormat checks the options.
func NewGatekeeperFormat(opts GatekeeperOptions) (*GatekeeperFormat, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	empty, err := gatekeeper.Compile(context.Background(), nil, gatekeeper.Options{PolicyTimeout: opts.PolicyTimeout})
	if err != nil {
		return nil, err
	}
	return &GatekeeperFormat{
		opts: opts, evaluator: empty,
		watched: map[schema.GroupVersionKind]bool{}, waiting: map[schema.GroupVersionKind]bool{},
		good: map[string]*unstructured.Unstructured{}, crdsChecked: map[string]string{},
	}, nil
}

// Configure takes the kinds the config keeps in data.inventory.
func (f *GatekeeperFormat) Configure(cfg *policies.Config) {
	var kinds []schema.GroupVersionKind
	for _, k := range cfg.Gatekeeper.Sync {
		if k.Group == "core" {
			k.Group = ""
		}
		kinds = append(kinds, schema.GroupVersionKind{Group: k.Group, Version: k.Version, Kind: k.Kind})
	}
	slices.SortFunc(kinds, func(a, b schema.GroupVersionKind) int { return strings.Compare(a.String(), b.String()) })
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sync = slices.Compact(kinds)
}

// Watch starts the informers of ConstraintTemplates and of the synced
// kinds; the constraint kinds' are started as Load finds their templates.
// Without the ConstraintTemplate CRD nothing is watched and nothing is an
// error: a goroutine waits for the CRD. A synced kind that cannot be
// watched is an error.
func (f *GatekeeperFormat) Watch(ctx context.Context, c cache.Cache, reload func()) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ctx, f.cache, f.reload = ctx, c, reload
	f.watchPolicies(templateGVK)
	var errs []error
	for _, gvk := range f.sync {
		if f.watched[gvk] {
			continue
		}
		if err := f.register(gvk, f.syncHandler(gvk)); err != nil {
			errs = append(errs, fmt.Errorf("gatekeeper.sync %s: %w", gvk, err))
			continue
		}
		f.watched[gvk] = true
	}
	return errors.Join(errs...)
}

// register adds handler to the informer of gvk without waiting for it to
// sync: Load lists live, and the informer's first events call the handler.
func (f *GatekeeperFormat) register(gvk schema.GroupVersionKind, handler toolscache.ResourceEventHandler) error {
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(gvk)
	inf, err := f.cache.GetInformer(f.ctx, obj, cache.BlockUntilSynced(false))
	if err != nil {
		return err
	}
	_, err = inf.AddEventHandler(handler)
	return err
}

// watchPolicies watches templates or a constraint kind, reloading on each
// change; a kind not served yet (its CRD is still to be created) is
// retried in the background until it is, or until no template defines it.
func (f *GatekeeperFormat) watchPolicies(gvk schema.GroupVersionKind) {
	if f.cache == nil || f.watched[gvk] || f.waiting[gvk] {
		return
	}
	err := f.register(gvk, f.policyHandler())
	switch {
	case err == nil:
		f.watched[gvk] = true
	case apimeta.IsNoMatchError(err):
		f.waiting[gvk] = true
		go f.watchWhenServed(f.ctx, gvk)
	default:
		f.opts.Logger.ErrorContext(f.ctx, "watching Gatekeeper objects failed", "kind", gvk.Kind, "error", err)
	}
}

// watchWhenServed watches a constraint kind once its CRD is served (see
// the package's watchWhenServed); it gives up when its template goes away.
func (f *GatekeeperFormat) watchWhenServed(ctx context.Context, gvk schema.GroupVersionKind) {
	watchWhenServed(ctx, &f.mu, f.waiting, f.watched, &f.reload, gvk,
		func() error { return f.register(gvk, f.policyHandler()) }, f.opts.Logger, "Gatekeeper objects")
}

// unwatch stops watching a constraint kind no template defines any more.
func (f *GatekeeperFormat) unwatch(gvk schema.GroupVersionKind) {
	delete(f.waiting, gvk)
	if !f.watched[gvk] || f.cache == nil {
		return
	}
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(gvk)
	if err := f.cache.RemoveInformer(f.ctx, obj); err != nil {
		f.opts.Logger.WarnContext(f.ctx, "stopping the informer of a constraint kind failed", "kind", gvk.Kind, "error", err)
	}
	delete(f.watched, gvk)
}

// policyHandler reloads on templates and constraints that changed in what
// Tollgate loads: a status write alone (Gatekeeper's, when it runs beside)
// changes neither generation, labels nor annotations. Called with mu held.
func (f *GatekeeperFormat) policyHandler() toolscache.ResourceEventHandler {
	return specChanges(f.reload)
}

// syncHandler keeps a synced kind in data.inventory.
func (f *GatekeeperFormat) syncHandler(gvk schema.GroupVersionKind) toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { f.inventory(gvk, obj, false) },
		UpdateFunc: func(_, obj any) { f.inventory(gvk, obj, false) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			f.inventory(gvk, obj, true)
		},
	}
}

func (f *GatekeeperFormat) inventory(gvk schema.GroupVersionKind, obj any, remove bool) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Contains(f.synced, gvk) {
		return // no longer synced, or not yet: the next fill lists it
	}
	var err error
	if remove {
		err = f.evaluator.RemoveData(f.ctx, u.Object)
	} else {
		err = f.evaluator.AddData(f.ctx, u.Object)
	}
	if err != nil {
		f.opts.Logger.ErrorContext(f.ctx, "updating data.inventory failed", "kind", gvk.Kind, "namespace", u.GetNamespace(), "name", u.GetName(), "error", err)
	}
}

// Load lists the templates and their constraints live, compiles them if
// any changed, keeps the CRDs of their constraint kinds when it should,
// and returns the plugin with what did not load. If the listing fails,
// what is in force stays.
func (f *GatekeeperFormat) Load(ctx context.Context, c client.Client) (review.Plugin, []Problem) {
	f.mu.Lock()
	defer f.mu.Unlock()
	templates, constraints, err := f.list(ctx, c)
	if err != nil {
		f.opts.Logger.ErrorContext(ctx, "listing Gatekeeper templates and constraints failed; the last good ones stay in force", "error", err)
		return GatekeeperPlugin(f.evaluator), slices.Clone(f.problems)
	}
	objs := slices.Concat(slices.Collect(maps.Values(templates)), constraints)
	sort.Slice(objs, func(i, j int) bool { return source(objs[i]) < source(objs[j]) })
	prints := make(map[string]string, len(objs))
	for _, o := range objs {
		prints[source(o)] = fingerprint(o)
	}
	// A new evaluator is filled before it is published, so no review sees
	// an inventory half refilled: a change of the synced kinds compiles too.
	if f.compiled == nil || !maps.Equal(prints, f.compiled) || !slices.Equal(f.sync, f.synced) {
		f.compile(ctx, objs)
		f.compiled = prints
		clear(f.crdsChecked)
		f.fillInventory(ctx)
	}
	return GatekeeperPlugin(f.evaluator), append(slices.Clone(f.problems), f.writeCRDs(ctx, templates)...)
}

// list reads every ConstraintTemplate, by the kind it defines, and every
// constraint of those kinds; it watches the kinds as it finds them. Kinds
// not served (no CRD) have no constraints.
func (f *GatekeeperFormat) list(ctx context.Context, c client.Reader) (map[string]*unstructured.Unstructured, []*unstructured.Unstructured, error) {
	tl := &unstructured.UnstructuredList{}
	tl.SetGroupVersionKind(templateGVK.GroupVersion().WithKind(templateGVK.Kind + "List"))
	if err := c.List(ctx, tl); err != nil {
		if apimeta.IsNoMatchError(err) {
			err = nil // the ConstraintTemplate CRD is not installed
		}
		return nil, nil, err
	}
	templates := map[string]*unstructured.Unstructured{}
	kinds := map[schema.GroupVersionKind]bool{}
	for i := range tl.Items {
		t := &tl.Items[i]
		kind, _, _ := unstructured.NestedString(t.Object, "spec", "crd", "spec", "names", "kind")
		templates[kind+"\x00"+t.GetName()] = t // a template without a kind still loads, to be reported
		if kind != "" {
			kinds[constraintVersion.WithKind(kind)] = true
		}
	}
	for gvk := range f.watched {
		if gvk.Group == constraintVersion.Group && !kinds[gvk] {
			f.unwatch(gvk)
		}
	}
	for gvk := range f.waiting {
		if !kinds[gvk] {
			delete(f.waiting, gvk)
		}
	}
	var constraints []*unstructured.Unstructured
	for _, gvk := range slices.SortedFunc(maps.Keys(kinds), func(a, b schema.GroupVersionKind) int { return strings.Compare(a.Kind, b.Kind) }) {
		f.watchPolicies(gvk)
		cl := &unstructured.UnstructuredList{}
		cl.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := c.List(ctx, cl); err != nil {
			if apimeta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
				continue // no CRD (yet, or any more: the mapper may still know it), so no constraints
			}
			return nil, nil, fmt.Errorf("listing %s constraints: %w", gvk.Kind, err)
		}
		for i := range cl.Items {
			constraints = append(constraints, &cl.Items[i])
		}
	}
	return templates, constraints, nil
}

// source names an object in load errors and keys it: "ConstraintTemplate
// k8srequiredlabels", "K8sRequiredLabels/must-have-owner".
func source(o *unstructured.Unstructured) string {
	if o.GroupVersionKind().Group == templateGVK.Group {
		return o.GetKind() + " " + o.GetName()
	}
	return o.GetKind() + "/" + o.GetName()
}

// fingerprint sums what Tollgate loads of an object: identity, labels,
// annotations and spec; not its status or resourceVersion.
func fingerprint(o *unstructured.Unstructured) string {
	raw, _ := json.Marshal([]any{o.GetAPIVersion(), o.GetKind(), o.GetName(), o.GetUID(), o.GetLabels(), o.GetAnnotations(), o.Object["spec"]})
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// compile compiles objs; an object that does not load and has a last good
// version of the same identity is compiled again with that version, so it
// stays in force. A constraint is only put back on its own account: when
// its template failed, putting the template back is enough.
func (f *GatekeeperFormat) compile(ctx context.Context, objs []*unstructured.Unstructured) {
	e, failed := f.compileObjects(ctx, objs)
	failedKinds := map[string]bool{}
	for _, o := range objs {
		if o.GroupVersionKind().Group == templateGVK.Group && failed[source(o)] != nil {
			kind, _, _ := unstructured.NestedString(o.Object, "spec", "crd", "spec", "names", "kind")
			failedKinds[kind] = true
		}
	}
	restored := map[string]*unstructured.Unstructured{} // current object by source
	in := slices.Clone(objs)
	for i, o := range objs {
		src := source(o)
		g, ok := f.good[src]
		if failed[src] == nil || !ok || g.GetUID() != o.GetUID() || fingerprint(g) == fingerprint(o) || failedKinds[o.GetKind()] {
			continue
		}
		restored[src] = o
		in[i] = g
	}
	final := failed
	if len(restored) > 0 {
		e, final = f.compileObjects(ctx, in)
	}

	var problems []Problem
	live := map[string]bool{}
	for i, o := range objs {
		src := source(o)
		live[src] = true
		switch {
		case final[src] == nil:
			f.good[src] = in[i]
			if restored[src] != nil {
				problems = append(problems, Problem{Object: o, Message: fmt.Sprintf("generation %d does not load; generation %d stays in force: %s",
					o.GetGeneration(), in[i].GetGeneration(), strings.Join(failed[src], "; "))})
			}
		case restored[src] != nil:
			// Its last good version no longer loads either.
			delete(f.good, src)
			problems = append(problems, Problem{Object: o, Message: strings.Join(failed[src], "; ")})
		default:
			problems = append(problems, Problem{Object: o, Message: strings.Join(final[src], "; ")})
		}
	}
	for src := range f.good {
		if !live[src] {
			delete(f.good, src)
		}
	}
	f.evaluator, f.problems = e, problems
	f.opts.Logger.InfoContext(ctx, "Gatekeeper templates and constraints compiled", "objects", len(objs),
		"constraints", len(e.Policies()), "notLoaded", len(problems))
}

// compileObjects compiles objs and returns each failed object's problems
// ("field: what is wrong"), by source.
func (f *GatekeeperFormat) compileObjects(ctx context.Context, objs []*unstructured.Unstructured) (*gatekeeper.Evaluator, map[string][]string) {
	in := make([]gatekeeper.Object, len(objs))
	for i, o := range objs {
		in[i] = gatekeeper.Object{Source: source(o), Object: o.Object}
	}
	e, err := gatekeeper.Compile(ctx, in, gatekeeper.Options{PolicyTimeout: f.opts.PolicyTimeout})
	failed := map[string][]string{}
	for _, err := range leaves(err) {
		var le *gatekeeper.LoadError
		if !errors.As(err, &le) {
			f.opts.Logger.ErrorContext(ctx, "compiling Gatekeeper templates failed", "error", err)
			continue
		}
		msg := le.Err.Error()
		if le.Field != "" {
			msg = le.Field + ": " + msg
		}
		failed[le.Source] = append(failed[le.Source], msg)
	}
	return e, failed
}

// leaves flattens errors joined with errors.Join.
func leaves(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	return []error{err}
}

// fillInventory fills the data.inventory of a new evaluator with every
// object of the synced kinds whose informers have synced; the others'
// first events add theirs.
func (f *GatekeeperFormat) fillInventory(ctx context.Context) {
	f.synced = slices.Clone(f.sync)
	if f.cache == nil {
		return
	}
	n := 0
	for _, gvk := range f.synced {
		obj := &unstructured.Unstructured{}
		obj.SetGroupVersionKind(gvk)
		inf, err := f.cache.GetInformer(ctx, obj, cache.BlockUntilSynced(false))
		if err != nil || !inf.HasSynced() {
			continue
		}
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := f.cache.List(ctx, list); err != nil {
			f.opts.Logger.ErrorContext(ctx, "listing a synced kind failed", "kind", gvk.Kind, "error", err)
			continue
		}
		for i := range list.Items {
			if err := f.evaluator.AddData(ctx, list.Items[i].Object); err != nil {
				f.opts.Logger.ErrorContext(ctx, "updating data.inventory failed", "kind", gvk.Kind, "name", list.Items[i].GetName(), "error", err)
				continue
			}
			n++
		}
	}
	f.opts.Logger.DebugContext(ctx, "data.inventory filled", "kinds", len(f.synced), "objects", n)
}

// writeCRDs creates or updates the CRD of each loaded template's
// constraint kind, on the leader, when the options say so; a CRD that
// cannot be written is a problem of its template.
func (f *GatekeeperFormat) writeCRDs(ctx context.Context, templates map[string]*unstructured.Unstructured) []Problem {
	if !f.opts.CreateConstraintCRDs || f.opts.Leader != nil && !f.opts.Leader() {
		return nil
	}
	crds, err := f.evaluator.ConstraintCRDs()
	if err != nil {
		f.opts.Logger.ErrorContext(ctx, "building constraint CRDs failed", "error", err)
		return nil
	}
	byKind := map[string]*unstructured.Unstructured{}
	for key, t := range templates {
		kind, _, _ := strings.Cut(key, "\x00")
		byKind[kind] = t
	}
	var problems []Problem
	for _, crd := range crds {
		raw, _ := json.Marshal(crd.Spec)
		sum := sha256.Sum256(raw)
		spec := hex.EncodeToString(sum[:])
		if f.crdsChecked[crd.Name] == spec {
			continue
		}
		if err := f.writeCRD(ctx, crd); err != nil {
			if t := byKind[crd.Spec.Names.Kind]; t != nil {
				problems = append(problems, Problem{Object: t, Message: fmt.Sprintf("writing CustomResourceDefinition %s: %v", crd.Name, err), Write: true})
			}
			continue
		}
		f.crdsChecked[crd.Name] = spec
	}
	return problems
}

// writeCRD creates want, or brings the spec of the one Tollgate created up
// to date; a CRD someone else created is left alone.
func (f *GatekeeperFormat) writeCRD(ctx context.Context, want *apiextensionsv1.CustomResourceDefinition) error {
	cur := &apiextensionsv1.CustomResourceDefinition{}
	err := f.opts.CRDs.Get(ctx, client.ObjectKey{Name: want.Name}, cur)
	switch {
	case apierrors.IsNotFound(err):
		obj := want.DeepCopy()
		obj.Status = apiextensionsv1.CustomResourceDefinitionStatus{}
		if obj.Labels == nil {
			obj.Labels = map[string]string{}
		}
		obj.Labels[labelManagedBy] = managedBy
		if err := f.opts.CRDs.Create(ctx, obj); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return nil // created meanwhile (by Gatekeeper): its owner keeps it
			}
			return err
		}
		f.opts.Logger.InfoContext(ctx, "constraint CRD created", "name", want.Name)
		return nil
	case err != nil:
		return err
	case cur.Labels[labelManagedBy] != managedBy || metav1.GetControllerOf(cur) != nil:
		f.opts.Logger.DebugContext(ctx, "constraint CRD left to its owner", "name", want.Name)
		return nil
	case equality.Semantic.DeepEqual(cur.Spec, want.Spec):
		return nil
	}
	next := cur.DeepCopy()
	next.Spec = want.Spec
	if err := f.opts.CRDs.Update(ctx, next); err != nil {
		return err
	}
	f.opts.Logger.InfoContext(ctx, "constraint CRD updated", "name", want.Name)
	return nil
}
