package loader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	kubeutils "github.com/kyverno/kyverno/pkg/utils/kube"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/kyverno"
	"github.com/tollgate-dev/tollgate/policies/review"
)

// The Kyverno kinds the format reads: the policies, then the exceptions.
var (
	kyvernoPolicyKinds = []schema.GroupVersionKind{
		{Group: "kyverno.io", Version: "v1", Kind: "ClusterPolicy"},
		{Group: "kyverno.io", Version: "v1", Kind: "Policy"},
		{Group: "policies.kyverno.io", Version: "v1", Kind: "ValidatingPolicy"},
		{Group: "policies.kyverno.io", Version: "v1", Kind: "MutatingPolicy"},
	}
	kyvernoExceptionKinds = []schema.GroupVersionKind{
		{Group: "kyverno.io", Version: "v2", Kind: "PolicyException"},
		{Group: "policies.kyverno.io", Version: "v1", Kind: "PolicyException"},
	}
)

// AnnotationEngine is the annotation of a Kyverno policy in the cluster
// that says which engine judges it at admission when Tollgate and
// Kyverno's admission controller run side by side: EngineTollgate or
// EngineKyverno. Tollgate judges every Kyverno policy in the audit and the
// reports whatever it says.
const AnnotationEngine = "tollgate.dev/engine"

// Values of AnnotationEngine.
const (
	// EngineTollgate: Tollgate judges and mutates with the policy at
	// admission, even beside Kyverno (KyvernoOptions.KyvernoAdmission).
	EngineTollgate = "tollgate"
	// EngineKyverno: Kyverno's webhook owns the policy at admission;
	// Tollgate judges it only in the audit and reports.
	EngineKyverno = "kyverno"
)

// KyvernoOptions configure the Kyverno format.
type KyvernoOptions struct {
	// KyvernoAdmission says Kyverno's own admission controller runs in the
	// cluster and judges its policies: Tollgate then judges at admission
	// only the policies annotated tollgate.dev/engine: tollgate, so no
	// policy is judged twice. Without it Tollgate judges every Kyverno
	// policy at admission except those annotated tollgate.dev/engine:
	// kyverno.
	KyvernoAdmission bool
	// Reader lists the Kyverno objects; nil lists them with the loader's
	// client. (Serve gives one that logs each API warning once: the API
	// server warns on every request for kyverno.io/v1, which Kyverno has
	// deprecated.)
	Reader client.Reader
	// ConfigMaps reads the ConfigMaps the policies' configMap context
	// entries name, one by one and live (so Tollgate keeps no cache of
	// every ConfigMap); nil reads them with the loader's client.
	ConfigMaps client.Reader
	// Watcher watches each named ConfigMap alone (a field selector on its
	// name), so a change of one reloads; nil leaves them to be read again
	// on every reload only.
	Watcher client.WithWatch
	// Mapper finds the kinds of custom resources the policies match
	// (ValidatingPolicies name resources, ClusterPolicies may name a kind
	// without its group); nil knows the built-in kinds only.
	Mapper apimeta.RESTMapper
	Logger *slog.Logger
}

// KyvernoFormat loads the Kyverno policies applied to the cluster —
// ClusterPolicies and Policies (kyverno.io/v1), ValidatingPolicies and
// MutatingPolicies (policies.kyverno.io/v1) — with the PolicyExceptions
// (kyverno.io/v2, policies.kyverno.io/v1) and the ConfigMaps the policies'
// context entries name, and compiles them with Kyverno's engine
// (policies/kyverno) as Tollgate's Kyverno plugin. It implements Format and
// Configurer.
//
// Kyverno's CRDs need not be installed: a kind the API server does not
// serve has no objects, and is watched from when its CRD appears. A reload
// of unchanged objects costs no compile (status writes, such as Kyverno's
// own controller makes beside Tollgate, do not count). A policy whose new
// version does not load keeps its last good version in force and is
// reported as a Problem naming the policy and rule; so is one that never
// loaded, while the others load.
type KyvernoFormat struct {
	opts KyvernoOptions
	// builtin maps a built-in kind to its groups, and a built-in
	// group/resource to its kind.
	builtin   map[string][]string
	resources map[schema.GroupResource]string

	mu sync.Mutex
	// ctx, cache and reload come from Watch.
	ctx    context.Context
	cache  cache.Cache
	reload func()
	// watched kinds; waiting kinds not served yet, retried in the
	// background.
	watched, waiting map[schema.GroupVersionKind]bool
	// cmWatches stop the watch of each named ConfigMap.
	cmWatches map[types.NamespacedName]context.CancelFunc
	// named are the ConfigMaps the last load's policies name; read the
	// resource version it read of each ("" for one that does not exist).
	named []types.NamespacedName
	read  map[types.NamespacedName]string
	// exceptionNamespaces are the config's exceptions.namespaces.
	exceptionNamespaces []string
	// expiry reloads when the next exception expires.
	expiry *time.Timer

	key      string // what the last compile read
	plugin   review.Plugin
	good     map[string]*unstructured.Unstructured // last good version by source
	problems []Problem
}

var (
	_ Format     = (*KyvernoFormat)(nil)
	_ Configurer = (*KyvernoFormat)(nil)
)

// NewKyvernoFormat builds the format.
func NewKyvernoFormat(opts KyvernoOptions) *KyvernoFormat {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	f := &KyvernoFormat{
		opts: opts, builtin: map[string][]string{}, resources: map[schema.GroupResource]string{},
		watched: map[schema.GroupVersionKind]bool{}, waiting: map[schema.GroupVersionKind]bool{},
		cmWatches: map[types.NamespacedName]context.CancelFunc{}, good: map[string]*unstructured.Unstructured{},
	}
	for gvk := range clientgoscheme.Scheme.AllKnownTypes() {
		if gvk.Version == runtime.APIVersionInternal || strings.HasSuffix(gvk.Kind, "List") || strings.HasSuffix(gvk.Kind, "Options") {
			continue
		}
		if !slices.Contains(f.builtin[gvk.Kind], gvk.Group) {
			f.builtin[gvk.Kind] = append(f.builtin[gvk.Kind], gvk.Group)
		}
		res, _ := apimeta.UnsafeGuessKindToResource(gvk)
		f.resources[schema.GroupResource{Group: gvk.Group, Resource: res.Resource}] = gvk.Kind
	}
	for k := range f.builtin {
		slices.Sort(f.builtin[k])
	}
	empty, _ := kyverno.Compile(context.Background(), nil, kyverno.Options{})
	f.plugin = review.Plugin{Name: PluginKyverno, Evaluator: &kyvernoEvaluator{parts: []kyvernoPart{{e: empty}}}}
	return f
}

// Configure takes the namespaces the config designates for exceptions.
func (f *KyvernoFormat) Configure(cfg *policies.Config) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.exceptionNamespaces = slices.Clone(cfg.Exceptions.Namespaces)
}

// Watch watches the Kyverno kinds the API server serves (the others from
// when their CRDs appear) and each ConfigMap the policies name.
func (f *KyvernoFormat) Watch(ctx context.Context, c cache.Cache, reload func()) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ctx, f.cache, f.reload = ctx, c, reload
	var errs []error
	for _, gvk := range slices.Concat(kyvernoPolicyKinds, kyvernoExceptionKinds) {
		if err := f.watchKind(gvk); err != nil {
			errs = append(errs, fmt.Errorf("watching %s: %w", gvk.Kind, err))
		}
	}
	f.watchConfigMaps(ctx, reload)
	return errors.Join(errs...)
}

// watchKind registers a reload on gvk's informer; a kind not served is
// retried in the background until it is. Called with mu held.
func (f *KyvernoFormat) watchKind(gvk schema.GroupVersionKind) error {
	if f.watched[gvk] || f.waiting[gvk] {
		return nil
	}
	err := f.register(gvk)
	switch {
	case err == nil:
		f.watched[gvk] = true
	case apimeta.IsNoMatchError(err):
		f.waiting[gvk] = true
		go f.watchWhenServed(f.ctx, gvk)
		return nil
	}
	return err
}

func (f *KyvernoFormat) register(gvk schema.GroupVersionKind) error {
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(gvk)
	inf, err := f.cache.GetInformer(f.ctx, obj, cache.BlockUntilSynced(false))
	if err != nil {
		return err
	}
	_, err = inf.AddEventHandler(specChanges(f.reload))
	return err
}

// watchWhenServed watches gvk once its CRD is served (see the package's
// watchWhenServed).
func (f *KyvernoFormat) watchWhenServed(ctx context.Context, gvk schema.GroupVersionKind) {
	watchWhenServed(ctx, &f.mu, f.waiting, f.watched, &f.reload, gvk,
		func() error { return f.register(gvk) }, f.opts.Logger, "Kyverno objects")
}

// watchWhenServed retries register for gvk, backing off to a minute, until
// its CRD is served; it then records the watch in watched and reloads (the
// informer's first events reload again). It stops when gvk leaves waiting
// (nothing wants the kind any more) or ctx ends. mu guards waiting,
// watched and reload, and is held around register. Both cluster formats
// whose kinds come with CRDs installed later (Gatekeeper's constraint
// kinds, Kyverno's policy kinds) wait this way.
func watchWhenServed(ctx context.Context, mu *sync.Mutex, waiting, watched map[schema.GroupVersionKind]bool, reload *func(),
	gvk schema.GroupVersionKind, register func() error, logger *slog.Logger, what string) {
	delay := 500 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Minute)
		mu.Lock()
		if !waiting[gvk] {
			mu.Unlock()
			return
		}
		err := register()
		if err == nil || !apimeta.IsNoMatchError(err) {
			delete(waiting, gvk)
			watched[gvk] = err == nil
			reload := *reload
			mu.Unlock()
			if err != nil {
				logger.ErrorContext(ctx, "watching "+what+" failed", "kind", gvk.Kind, "error", err)
			}
			reload()
			return
		}
		mu.Unlock()
	}
}

// specChanges reloads on objects that changed in what Tollgate loads: a
// status write alone (Kyverno's or Gatekeeper's, when it runs beside)
// changes neither generation, labels nor annotations.
func specChanges(reload func()) toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { reload() },
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(client.Object)
			n, ok2 := newObj.(client.Object)
			if ok1 && ok2 && o.GetUID() == n.GetUID() && o.GetGeneration() == n.GetGeneration() &&
				maps.Equal(o.GetLabels(), n.GetLabels()) && maps.Equal(o.GetAnnotations(), n.GetAnnotations()) {
				return
			}
			reload()
		},
		DeleteFunc: func(any) { reload() },
	}
}

// watchConfigMaps watches each ConfigMap the policies name, and stops
// watching those no longer named. Called with mu held.
func (f *KyvernoFormat) watchConfigMaps(ctx context.Context, reload func()) {
	if f.opts.Watcher == nil {
		return
	}
	for key, stop := range f.cmWatches {
		if !slices.Contains(f.named, key) {
			stop()
			delete(f.cmWatches, key)
		}
	}
	for _, key := range f.named {
		if f.cmWatches[key] != nil {
			continue
		}
		wctx, stop := context.WithCancel(ctx)
		f.cmWatches[key] = stop
		go f.watchConfigMap(wctx, key, reload)
	}
}

// watchConfigMap reloads on every change of one ConfigMap (its creation
// and deletion too) until ctx ends, watching again (after a pause)
// whenever the watch ends.
func (f *KyvernoFormat) watchConfigMap(ctx context.Context, key types.NamespacedName, reload func()) {
	delay := time.Second
	for ctx.Err() == nil {
		w, err := f.opts.Watcher.Watch(ctx, &corev1.ConfigMapList{}, client.InNamespace(key.Namespace),
			client.MatchingFields{"metadata.name": key.Name})
		if err == nil {
			delay = time.Second
			for ev := range w.ResultChan() {
				if ev.Type == watch.Error {
					if ctx.Err() == nil {
						f.opts.Logger.WarnContext(ctx, "watching a ConfigMap a Kyverno policy reads failed", "namespace", key.Namespace, "name", key.Name,
							"error", apierrors.FromObject(ev.Object))
					}
					continue
				}
				// The watch starts with the ConfigMap as it is (an ADDED
				// event): a version the last load read is no change.
				version := ""
				if cm, ok := ev.Object.(client.Object); ok && ev.Type != watch.Deleted {
					version = cm.GetResourceVersion()
				}
				f.mu.Lock()
				read, known := f.read[key]
				f.mu.Unlock()
				if !known || read != version {
					reload()
				}
			}
			w.Stop()
		} else {
			f.opts.Logger.WarnContext(ctx, "watching a ConfigMap a Kyverno policy reads failed", "namespace", key.Namespace, "name", key.Name, "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Minute)
	}
}

// Load lists the Kyverno policies, exceptions and named ConfigMaps live,
// compiles them if any changed, and returns the plugin with what did not
// load. If a listing fails, what is in force stays.
func (f *KyvernoFormat) Load(ctx context.Context, c client.Client) (review.Plugin, []Problem) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var lister client.Reader = c
	if f.opts.Reader != nil {
		lister = f.opts.Reader
		if o, ok := c.(*overlay); ok {
			lister = o.over(f.opts.Reader) // a policy set's objects, listed beside the cluster's
		}
	}
	pols, err := listKinds(ctx, lister, kyvernoPolicyKinds)
	if err != nil {
		f.opts.Logger.ErrorContext(ctx, "listing Kyverno policies failed; the last good ones stay in force", "error", err)
		return f.plugin, slices.Clone(f.problems)
	}
	exceptions, err := listKinds(ctx, lister, kyvernoExceptionKinds)
	if err != nil {
		f.opts.Logger.ErrorContext(ctx, "listing Kyverno PolicyExceptions failed; the last good policies stay in force", "error", err)
		return f.plugin, slices.Clone(f.problems)
	}
	named := namedConfigMaps(pols)
	reader := f.opts.ConfigMaps
	if reader == nil {
		reader = c
	}
	cms, err := readConfigMaps(ctx, reader, named)
	if err != nil {
		f.opts.Logger.ErrorContext(ctx, "reading the ConfigMaps Kyverno policies name failed; the last good policies stay in force", "error", err)
		return f.plugin, slices.Clone(f.problems)
	}
	f.named = named
	f.read = map[types.NamespacedName]string{}
	for _, key := range named {
		f.read[key] = ""
	}
	for _, cm := range cms {
		f.read[types.NamespacedName{Namespace: cm.GetNamespace(), Name: cm.GetName()}] = cm.GetResourceVersion()
	}

	var parts []string
	for _, o := range slices.Concat(pols, exceptions) {
		parts = append(parts, kyvernoSource(o)+"="+fingerprint(o))
	}
	for _, cm := range cms {
		parts = append(parts, "ConfigMap "+cm.GetNamespace()+"/"+cm.GetName()+"@"+cm.GetResourceVersion())
	}
	// An exception stops counting when it expires (policies.kyverno.io's
	// spec.expiresAt): that changes what loads, and a reload is asked for
	// then.
	now, next := time.Now(), time.Time{}
	for _, x := range exceptions {
		at, _, _ := unstructured.NestedString(x.Object, "spec", "expiresAt")
		expires, err := time.Parse(time.RFC3339, at)
		if err != nil {
			continue
		}
		expired := !now.Before(expires)
		parts = append(parts, kyvernoSource(x)+" expired="+strconv.FormatBool(expired))
		if !expired && (next.IsZero() || expires.Before(next)) {
			next = expires
		}
	}
	if f.expiry != nil {
		f.expiry.Stop()
		f.expiry = nil
	}
	if !next.IsZero() && f.reload != nil {
		f.expiry = time.AfterFunc(time.Until(next)+100*time.Millisecond, f.reload)
	}
	sort.Strings(parts)
	parts = append(parts, "exceptions.namespaces="+strings.Join(f.exceptionNamespaces, ","))
	key := strings.Join(parts, "\n")
	if f.key != "" && key == f.key {
		return f.plugin, slices.Clone(f.problems)
	}
	opts := kyverno.Options{}
	for _, cm := range cms {
		opts.ConfigMaps = append(opts.ConfigMaps, cm.Object)
	}
	for _, x := range exceptions {
		opts.Exceptions = append(opts.Exceptions, kyverno.Object{Source: kyvernoSource(x), Object: x.Object})
	}
	opts.ExceptionNamespaces = slices.Clone(f.exceptionNamespaces)
	f.compile(ctx, pols, exceptions, opts)
	f.key = key
	return f.plugin, slices.Clone(f.problems)
}

// listKinds lists every object of the kinds; a kind the API server does
// not serve (its CRD is not installed) has none.
func listKinds(ctx context.Context, c client.Reader, kinds []schema.GroupVersionKind) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, gvk := range kinds {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := c.List(ctx, list); err != nil {
			if apimeta.IsNoMatchError(err) {
				continue
			}
			return nil, fmt.Errorf("listing %s: %w", gvk.Kind, err)
		}
		for i := range list.Items {
			it := &list.Items[i]
			it.SetGroupVersionKind(gvk) // a list's items may come without it
			out = append(out, it)
		}
	}
	sort.Slice(out, func(i, j int) bool { return kyvernoSource(out[i]) < kyvernoSource(out[j]) })
	return out, nil
}

// kyvernoSource names an object in problems: "ClusterPolicy require-team",
// "Policy shop/require-tier".
func kyvernoSource(o *unstructured.Unstructured) string {
	if o.GetNamespace() != "" {
		return o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName()
	}
	return o.GetKind() + " " + o.GetName()
}

// namedConfigMaps are the ConfigMaps the policies' configMap context
// entries name, wherever they sit (a rule's context, a foreach's). An
// entry whose name or namespace is a variable names none: Kyverno would
// read it per request, which an offline engine cannot; its rule fails
// with an error that says which ConfigMap it could not read.
func namedConfigMaps(pols []*unstructured.Unstructured) []types.NamespacedName {
	var out []types.NamespacedName
	for _, p := range pols {
		if p.GetAPIVersion() != "kyverno.io/v1" {
			continue
		}
		var walk func(v any)
		walk = func(v any) {
			switch t := v.(type) {
			case map[string]any:
				if ref, ok := t["configMap"].(map[string]any); ok {
					name, _ := ref["name"].(string)
					ns, _ := ref["namespace"].(string)
					if ns == "" {
						ns = p.GetNamespace()
					}
					if ns == "" {
						ns = "default" // Kyverno's default for ClusterPolicies
					}
					if name != "" && !strings.Contains(name+ns, "{{") {
						key := types.NamespacedName{Namespace: ns, Name: name}
						if !slices.Contains(out, key) {
							out = append(out, key)
						}
					}
				}
				for _, x := range t {
					walk(x)
				}
			case []any:
				for _, x := range t {
					walk(x)
				}
			}
		}
		walk(p.Object["spec"])
	}
	slices.SortFunc(out, func(a, b types.NamespacedName) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// readConfigMaps reads each named ConfigMap; one that does not exist, or
// that Tollgate may not read (grant it with the chart's
// rbac.extraReadRules), is left out: the rule reading it fails, naming it.
func readConfigMaps(ctx context.Context, r client.Reader, names []types.NamespacedName) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, key := range names {
		var cm corev1.ConfigMap
		if err := r.Get(ctx, key, &cm); err != nil {
			if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
				continue // the rule that reads it fails, naming it
			}
			return nil, fmt.Errorf("ConfigMap %s: %w", key, err)
		}
		obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&cm)
		if err != nil {
			return nil, fmt.Errorf("ConfigMap %s: %w", key, err)
		}
		u := &unstructured.Unstructured{Object: obj}
		u.SetAPIVersion("v1")
		u.SetKind("ConfigMap")
		out = append(out, u)
	}
	return out, nil
}

// skipped are the input sources Tollgate does not judge a policy on.
// Admission: when its tollgate.dev/engine annotation, or else Kyverno's
// admission controller running beside, gives it to Kyverno; or when the
// policy turns admission off (spec.admission: false, a CEL policy's
// spec.evaluation.admission.enabled: false), as in Kyverno. The audit: when
// the policy turns background scans off (spec.background: false,
// spec.evaluation.background.enabled: false), as Kyverno's background scan
// skips it (such policies read the request's user, which a stored object
// has not).
func (f *KyvernoFormat) skipped(o *unstructured.Unstructured) []string {
	off := func(fields ...string) bool {
		on, found, _ := unstructured.NestedBool(o.Object, fields...)
		return found && !on
	}
	var skip []string
	admission := !f.opts.KyvernoAdmission
	switch o.GetAnnotations()[AnnotationEngine] {
	case EngineTollgate:
		admission = true
	case EngineKyverno:
		admission = false
	}
	if !admission || off("spec", "admission") || off("spec", "evaluation", "admission", "enabled") {
		skip = append(skip, policies.SourceAdmission)
	}
	if off("spec", "background") || off("spec", "evaluation", "background", "enabled") {
		skip = append(skip, policies.SourceAudit)
	}
	return skip
}

// compile compiles the policies; a policy that does not load and has a
// last good version of the same identity is compiled again with that
// version, so it stays in force. Called with mu held.
func (f *KyvernoFormat) compile(ctx context.Context, objs, exceptions []*unstructured.Unstructured, opts kyverno.Options) {
	e, failed, notes := f.compileObjects(ctx, objs, opts)
	restored := map[string]bool{}
	in := slices.Clone(objs)
	for i, o := range objs {
		src := kyvernoSource(o)
		g, ok := f.good[src]
		if failed[src] == nil || !ok || g.GetUID() != o.GetUID() || fingerprint(g) == fingerprint(o) {
			continue
		}
		restored[src] = true
		in[i] = g
	}
	final := failed
	if len(restored) > 0 {
		e, final, notes = f.compileObjects(ctx, in, opts)
	}
	var problems []Problem
	live := map[string]bool{}
	for i, o := range objs {
		src := kyvernoSource(o)
		live[src] = true
		switch {
		case final[src] == nil:
			f.good[src] = in[i]
			if restored[src] {
				problems = append(problems, Problem{Object: o, Message: fmt.Sprintf("generation %d does not load; generation %d stays in force: %s",
					o.GetGeneration(), in[i].GetGeneration(), strings.Join(failed[src], "; "))})
			}
		case restored[src]:
			delete(f.good, src) // its last good version no longer loads either
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
	// An exception that does not count (malformed, in a namespace the
	// config does not designate, expired, naming no loaded policy) says so
	// on itself.
	for _, x := range exceptions {
		if msgs := notes[kyvernoSource(x)]; len(msgs) > 0 {
			problems = append(problems, Problem{Object: x, Message: strings.Join(msgs, "; ")})
		}
	}
	f.plugin, f.problems = review.Plugin{Name: PluginKyverno, Evaluator: e}, problems
	f.opts.Logger.InfoContext(ctx, "Kyverno policies compiled", "objects", len(objs),
		"policies", len(e.(review.Catalogue).Policies()), "notLoaded", len(problems))
}

// compileObjects compiles the policies in parts, by the sources they are
// not judged on. It returns each failed object's problems ("rule R: what
// is wrong") by source, and what the exceptions' sources were told (why
// one does not count). The problems and warnings come from compiling every
// policy together, so that an exception is judged against all of them.
func (f *KyvernoFormat) compileObjects(ctx context.Context, objs []*unstructured.Unstructured, opts kyverno.Options) (review.Evaluator, map[string][]string, map[string][]string) {
	var all []kyverno.Object
	groups := map[string][]kyverno.Object{"": nil} // by skipped sources; the first part judges everywhere
	for _, o := range objs {
		ko := kyverno.Object{Source: kyvernoSource(o), Object: o.Object}
		key := strings.Join(f.skipped(o), ",")
		groups[key] = append(groups[key], ko)
		all = append(all, ko)
	}
	exceptions := map[string]bool{}
	for _, x := range opts.Exceptions {
		exceptions[x.Source] = true
	}
	failed, notes := map[string][]string{}, map[string][]string{}
	record := func(e *kyverno.Evaluator, err error) {
		for _, err := range leaves(err) {
			var le *kyverno.LoadError
			if !errors.As(err, &le) {
				f.opts.Logger.ErrorContext(ctx, "compiling Kyverno policies failed", "error", err)
				continue
			}
			msg := le.Err.Error()
			if le.Rule != "" {
				msg = "rule " + le.Rule + ": " + msg
			}
			if exceptions[le.Source] {
				notes[le.Source] = append(notes[le.Source], msg)
				continue
			}
			failed[le.Source] = append(failed[le.Source], msg)
		}
		for _, w := range e.Warnings() {
			if exceptions[w.Source] {
				notes[w.Source] = append(notes[w.Source], w.Message)
				continue
			}
			f.opts.Logger.WarnContext(ctx, "part of a Kyverno policy is not run", "source", w.Source, "policy", w.Policy, "rule", w.Rule, "warning", w.Message)
		}
	}
	ke := &kyvernoEvaluator{}
	if len(groups) > 1 {
		record(kyverno.Compile(ctx, all, opts))
	}
	for _, key := range slices.Sorted(maps.Keys(groups)) {
		e, err := kyverno.Compile(ctx, groups[key], opts)
		if len(groups) == 1 {
			record(e, err)
		}
		var skip []string
		if key != "" {
			skip = strings.Split(key, ",")
		}
		ke.parts = append(ke.parts, kyvernoPart{e: e, skip: skip})
	}
	ke.kinds, ke.mutated = f.kinds(objs)
	if ke.mutated == nil {
		return ke, failed, notes
	}
	return kyvernoMutator{ke}, failed, notes
}

// kinds are the kinds the policies match (every kind they judge), and
// those their mutate rules and MutatingPolicies match (nil when none
// mutates), so that the webhooks intercept them.
func (f *KyvernoFormat) kinds(objs []*unstructured.Unstructured) (judged, mutated []policies.GroupVersionKind) {
	add := func(to *[]policies.GroupVersionKind, gks []schema.GroupKind) {
		for _, gk := range gks {
			k := policies.GroupVersionKind{Group: gk.Group, Kind: gk.Kind}
			if !slices.Contains(*to, k) {
				*to = append(*to, k)
			}
		}
	}
	for _, o := range objs {
		switch o.GetKind() {
		case "ClusterPolicy", "Policy":
			rules, _, _ := unstructured.NestedSlice(o.Object, "spec", "rules")
			for _, r := range rules {
				rule, _ := r.(map[string]any)
				gks := f.ruleKinds(rule)
				add(&judged, gks)
				if _, ok := rule["mutate"]; ok {
					if mutated == nil {
						mutated = []policies.GroupVersionKind{}
					}
					add(&mutated, gks)
				}
			}
		case "ValidatingPolicy", "MutatingPolicy":
			gks := f.resourceRuleKinds(o)
			add(&judged, gks)
			if o.GetKind() == "MutatingPolicy" {
				if mutated == nil {
					mutated = []policies.GroupVersionKind{}
				}
				add(&mutated, gks)
			}
		}
	}
	return judged, mutated
}

// ruleKinds are the kinds a rule's match names (resources.kinds, under
// any and all too): "Pod", "apps/v1/Deployment", "v1/ConfigMap",
// "Pod/exec". A kind without a group is looked up among the built-in kinds,
// then with the mapper; wildcards name none (Tollgate never intercepts
// everything).
func (f *KyvernoFormat) ruleKinds(rule map[string]any) []schema.GroupKind {
	var selectors []string
	collect := func(filter any) {
		m, _ := filter.(map[string]any)
		kinds, _, _ := unstructured.NestedStringSlice(m, "resources", "kinds")
		selectors = append(selectors, kinds...)
	}
	match, _ := rule["match"].(map[string]any)
	collect(match)
	for _, key := range []string{"any", "all"} {
		list, _ := match[key].([]any)
		for _, filter := range list {
			collect(filter)
		}
	}
	var out []schema.GroupKind
	for _, s := range selectors {
		group, _, kind, _ := kubeutils.ParseKindSelector(s)
		if kind == "" || strings.ContainsAny(kind, "*?") || strings.ContainsAny(group, "?") {
			continue
		}
		if group != "*" {
			out = append(out, schema.GroupKind{Group: group, Kind: kind})
			continue
		}
		out = append(out, f.groupsOf(kind)...)
	}
	return out
}

// groupsOf finds the groups of a kind named without one: built-in kinds
// from client-go's scheme, others with the mapper.
func (f *KyvernoFormat) groupsOf(kind string) []schema.GroupKind {
	var out []schema.GroupKind
	for _, g := range f.builtin[kind] {
		out = append(out, schema.GroupKind{Group: g, Kind: kind})
	}
	if len(out) > 0 || f.opts.Mapper == nil {
		return out
	}
	plural, _ := apimeta.UnsafeGuessKindToResource(schema.GroupVersionKind{Kind: kind})
	gvks, err := f.opts.Mapper.KindsFor(plural)
	if err != nil {
		return nil
	}
	for _, gvk := range gvks {
		if gk := gvk.GroupKind(); gk.Kind == kind && !slices.Contains(out, gk) {
			out = append(out, gk)
		}
	}
	return out
}

// resourceRuleKinds are the kinds of a CEL policy's
// spec.matchConstraints.resourceRules (groups and resources, as in a
// ValidatingAdmissionPolicy).
func (f *KyvernoFormat) resourceRuleKinds(o *unstructured.Unstructured) []schema.GroupKind {
	rules, _, _ := unstructured.NestedSlice(o.Object, "spec", "matchConstraints", "resourceRules")
	var out []schema.GroupKind
	for _, r := range rules {
		rule, _ := r.(map[string]any)
		groups, _, _ := unstructured.NestedStringSlice(rule, "apiGroups")
		resources, _, _ := unstructured.NestedStringSlice(rule, "resources")
		for _, g := range groups {
			for _, res := range resources {
				res, _, _ = strings.Cut(res, "/")
				if g == "*" || res == "*" || res == "" {
					continue
				}
				if kind, ok := f.resources[schema.GroupResource{Group: g, Resource: res}]; ok {
					out = append(out, schema.GroupKind{Group: g, Kind: kind})
					continue
				}
				if f.opts.Mapper == nil {
					continue
				}
				if gvk, err := f.opts.Mapper.KindFor(schema.GroupVersionResource{Group: g, Resource: res}); err == nil {
					out = append(out, gvk.GroupKind())
				}
			}
		}
	}
	return out
}

// kyvernoEvaluator is the plugin's evaluator: the loaded policies in
// parts, each judging on every input source but those it skips, and the
// kinds they match. It implements review.Catalogue and review.KindLister.
type kyvernoEvaluator struct {
	parts          []kyvernoPart
	kinds, mutated []policies.GroupVersionKind
}

// kyvernoPart is policies compiled together, and the input sources they
// are not judged on.
type kyvernoPart struct {
	e    *kyverno.Evaluator
	skip []string
}

var (
	_ review.Catalogue         = (*kyvernoEvaluator)(nil)
	_ review.KindLister        = (*kyvernoEvaluator)(nil)
	_ review.Mutator           = kyvernoMutator{}
	_ review.MutatedKindLister = kyvernoMutator{}
)

// Evaluate judges with the policies that run on the input's source.
func (e *kyvernoEvaluator) Evaluate(ctx context.Context, in *policies.Input) *policies.Decision {
	d := &policies.Decision{Findings: []policies.Finding{}}
	for _, p := range e.parts {
		if slices.Contains(p.skip, in.Source) {
			continue
		}
		more := p.e.Evaluate(ctx, in)
		d.Findings = append(d.Findings, more.Findings...)
		d.Errors = append(d.Errors, more.Errors...)
		d.Applied += more.Applied
	}
	return d
}

// Policies lists every loaded policy, sorted by ID.
func (e *kyvernoEvaluator) Policies() []policies.Metadata {
	var out []policies.Metadata
	for _, p := range e.parts {
		out = append(out, p.e.Policies()...)
	}
	slices.SortFunc(out, func(a, b policies.Metadata) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Kinds lists the kinds the policies judge.
func (e *kyvernoEvaluator) Kinds() []policies.GroupVersionKind { return slices.Clone(e.kinds) }

// kyvernoMutator is the evaluator of policies of which some mutate: only
// then is the plugin a review.Mutator, so a set without mutate rules keeps
// the mutating webhook's match conditions (a complete Pod is not sent to
// it).
type kyvernoMutator struct{ *kyvernoEvaluator }

// MutatedKinds lists the kinds the mutate rules and MutatingPolicies
// match.
func (m kyvernoMutator) MutatedKinds() []policies.GroupVersionKind { return slices.Clone(m.mutated) }

// Mutate is the patch of the policies that run on the input's source, each
// part applied to what the parts before it made.
func (m kyvernoMutator) Mutate(ctx context.Context, in *policies.Input) ([]policies.PatchOperation, error) {
	cur := in
	var patches [][]policies.PatchOperation
	for _, p := range m.parts {
		if slices.Contains(p.skip, in.Source) {
			continue
		}
		ops, err := p.e.Mutate(ctx, cur)
		if err != nil || len(ops) == 0 {
			if err != nil {
				return nil, err
			}
			continue
		}
		obj, err := review.Apply(cur.Object, &policies.Mutation{Patch: ops})
		if err != nil {
			return nil, err
		}
		next := *cur
		next.Object = obj
		cur = &next
		patches = append(patches, ops)
	}
	switch len(patches) {
	case 0:
		return nil, nil
	case 1:
		return patches[0], nil
	}
	return policies.Diff(in.Object, cur.Object)
}
