package nsdefaults

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"reflect"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/policies"
)

// EventRecorder records Events on a Namespace whose defaults could not be
// applied or were restored (events.k8s.io's recorder).
type EventRecorder interface {
	Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any)
}

// Options configure a Controller.
type Options struct {
	// REST and Mapper let the controller watch Namespaces and the
	// generated objects (those with the managed label only) in a cache of
	// its own, started while it runs.
	REST   *rest.Config
	Scheme *runtime.Scheme
	Mapper apimeta.RESTMapper
	// Client applies, updates and deletes generated objects; Reader reads
	// one live when the cache does not have it (an object of the name
	// that is not Tollgate's is left alone).
	Client client.Client
	Reader client.Reader
	// Config is the config in force, profiles included; nil before the
	// first load.
	Config func() *policies.Config
	// Namespace is Tollgate's own: never given defaults.
	Namespace string
	// Resync is how often every namespace is reconciled even if nothing
	// was seen to change (default 10m).
	Resync time.Duration
	// Workers reconcile namespaces in parallel (default 2).
	Workers int
	// Events, when set, records Events on the Namespaces.
	Events  EventRecorder
	Metrics *Metrics
	Logger  *slog.Logger
}

// Validate checks the options.
func (o *Options) Validate() error {
	if o.REST == nil || o.Mapper == nil || o.Client == nil || o.Reader == nil || o.Config == nil {
		return errors.New("namespace defaults: REST, Mapper, Client, Reader and Config are required")
	}
	if o.Resync < 0 {
		return fmt.Errorf("namespace defaults: resync %s is negative", o.Resync)
	}
	return nil
}

// Controller keeps every namespace's generated defaults as its profile
// says. Run it on the elected leader only; Trigger from anywhere.
type Controller struct {
	opts    Options
	trigger chan struct{}

	mu sync.Mutex
	// applied is the digest last applied per object ("Kind/namespace"),
	// so that an object found missing is known to have been deleted
	// rather than never made.
	applied map[string]string
}

// New checks the options and fills in defaults.
func New(opts Options) (*Controller, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Resync == 0 {
		opts.Resync = 10 * time.Minute
	}
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	return &Controller{opts: opts, trigger: make(chan struct{}, 1), applied: map[string]string{}}, nil
}

// Trigger asks for every namespace to be reconciled soon: the config or a
// profile changed. It never blocks; on a replica that does not lead it
// only marks the first pass of its next term, which reconciles everything
// anyway.
func (c *Controller) Trigger() {
	select {
	case c.trigger <- struct{}{}:
	default:
	}
}

// run is one term of the controller: its cache, its queue, its workers.
type run struct {
	*Controller
	cache  cache.Cache
	queue  workqueue.TypedRateLimitingInterface[string]
	served map[schema.GroupVersionKind]bool
}

// Run reconciles every namespace now, then as namespaces and generated
// objects change, on Trigger and every Resync, until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	managed := labels.SelectorFromSet(labels.Set{LabelManagedBy: ManagedBy})
	ch, err := cache.New(c.opts.REST, cache.Options{
		Scheme: c.opts.Scheme, Mapper: c.opts.Mapper,
		DefaultLabelSelector: managed,
		ByObject:             map[client.Object]cache.ByObject{&corev1.Namespace{}: {Label: labels.Everything()}},
	})
	if err != nil {
		return fmt.Errorf("namespace defaults: %w", err)
	}
	r := &run{Controller: c, cache: ch, served: map[schema.GroupVersionKind]bool{},
		queue: workqueue.NewTypedRateLimitingQueue(workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Second, 5*time.Minute))}
	defer r.queue.ShutDown()

	nsInf, err := ch.GetInformer(ctx, &corev1.Namespace{})
	if err != nil {
		return fmt.Errorf("namespace defaults: watching namespaces: %w", err)
	}
	if _, err := nsInf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { r.enqueue(obj, true) },
		UpdateFunc: func(old, obj any) {
			o, _ := old.(*corev1.Namespace)
			n, _ := obj.(*corev1.Namespace)
			if o == nil || n == nil || !reflect.DeepEqual(o.Labels, n.Labels) {
				r.enqueue(obj, true)
			}
		},
	}); err != nil {
		return fmt.Errorf("namespace defaults: watching namespaces: %w", err)
	}
	for _, gvk := range Kinds() {
		if _, err := c.opts.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			c.opts.Logger.WarnContext(ctx, "a generated kind is not served: profiles that ask for it fail", "kind", gvk.Kind, "error", err)
			continue
		}
		inf, err := ch.GetInformer(ctx, generated(gvk))
		if err != nil {
			return fmt.Errorf("namespace defaults: watching %s: %w", gvk.Kind, err)
		}
		// An edit or a deletion of a generated object is corrected at
		// once.
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { r.enqueue(obj, false) },
			UpdateFunc: func(_, obj any) { r.enqueue(obj, false) },
			DeleteFunc: func(obj any) { r.enqueue(obj, false) },
		}); err != nil {
			return fmt.Errorf("namespace defaults: watching %s: %w", gvk.Kind, err)
		}
		r.served[gvk] = true
	}

	cctx, stop := context.WithCancel(ctx)
	defer stop()
	cacheDone := make(chan struct{})
	go func() {
		defer close(cacheDone)
		if err := ch.Start(cctx); err != nil {
			c.opts.Logger.ErrorContext(ctx, "namespace defaults: cache stopped", "error", err)
		}
	}()
	defer func() { stop(); <-cacheDone }()
	if !ch.WaitForCacheSync(cctx) {
		return nil // ctx ended
	}

	var workers sync.WaitGroup
	for range c.opts.Workers {
		workers.Go(func() {
			for r.next(cctx) {
			}
		})
	}
	defer func() { r.queue.ShutDown(); workers.Wait() }()

	c.opts.Logger.InfoContext(ctx, "generating namespace defaults", "resync", c.opts.Resync.String())
	tick := time.NewTicker(c.opts.Resync)
	defer tick.Stop()
	for {
		r.enqueueAll(cctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-c.trigger:
		}
	}
}

// generated is an empty object of a generated kind, for the cache.
func generated(gvk schema.GroupVersionKind) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	return u
}

// enqueue queues the namespace obj is (isNamespace) or is in.
func (r *run) enqueue(obj any, isNamespace bool) {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	m, err := apimeta.Accessor(obj)
	if err != nil {
		return
	}
	if isNamespace {
		r.queue.Add(m.GetName())
	} else if m.GetName() == Name {
		r.queue.Add(m.GetNamespace())
	}
}

func (r *run) enqueueAll(ctx context.Context) {
	var list corev1.NamespaceList
	if err := r.cache.List(ctx, &list); err != nil {
		r.opts.Logger.ErrorContext(ctx, "namespace defaults: listing namespaces", "error", err)
		return
	}
	for i := range list.Items {
		r.queue.Add(list.Items[i].Name)
	}
}

// next reconciles one queued namespace; false when the queue shut down.
func (r *run) next(ctx context.Context) bool {
	ns, shutdown := r.queue.Get()
	if shutdown {
		return false
	}
	defer r.queue.Done(ns)
	if err := r.reconcile(ctx, ns); err != nil {
		if ctx.Err() == nil {
			r.queue.AddRateLimited(ns)
		}
		return true
	}
	r.queue.Forget(ns)
	return true
}

// errNotLoaded: no config yet; the first load triggers a pass.
var errNotLoaded = errors.New("config not loaded yet")

// reconcile brings one namespace's generated objects to what its profile
// asks for. Each object's failure is reported and the others still go
// ahead; the error makes the namespace retried with back-off.
func (r *run) reconcile(ctx context.Context, name string) error {
	cfg := r.opts.Config()
	if cfg == nil {
		return errNotLoaded
	}
	var ns corev1.Namespace
	if err := r.cache.Get(ctx, client.ObjectKey{Name: name}, &ns); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(name)
			return nil // its objects went with it
		}
		return err
	}
	if ns.DeletionTimestamp != nil || r.exempt(cfg, name) {
		return nil
	}
	profile, p := cfg.ProfileOf(namespaceObject(&ns))
	want, err := Desired(name, profile, p)
	if err != nil {
		// Nothing is applied from a profile that does not build, and
		// nothing deleted: what is there stays until the profile is fixed.
		r.opts.Metrics.failed.WithLabelValues("profile").Inc()
		r.warn(ctx, &ns, err)
		return nil
	}
	var errs []error
	wanted := map[schema.GroupVersionKind]bool{}
	for _, obj := range want {
		gvk := obj.GroupVersionKind()
		wanted[gvk] = true
		if err := r.ensure(ctx, &ns, obj); err != nil {
			r.opts.Metrics.failed.WithLabelValues(gvk.Kind).Inc()
			errs = append(errs, fmt.Errorf("%s %s: %w", gvk.Kind, Name, err))
		}
	}
	for _, gvk := range Kinds() {
		if wanted[gvk] || !r.served[gvk] {
			continue
		}
		if err := r.remove(ctx, name, gvk); err != nil {
			r.opts.Metrics.failed.WithLabelValues(gvk.Kind).Inc()
			errs = append(errs, fmt.Errorf("deleting %s %s: %w", gvk.Kind, Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		r.warn(ctx, &ns, err)
		return err
	}
	return nil
}

// exempt: Tollgate's own namespace and the config's exempt namespaces
// (names or globs) are never given defaults, and what is in them is left
// alone.
func (r *run) exempt(cfg *policies.Config, ns string) bool {
	if ns == r.opts.Namespace {
		return true
	}
	for _, pat := range cfg.ExemptNamespaces {
		if ok, _ := path.Match(pat, ns); ok {
			return true
		}
	}
	return false
}

// ensure applies one desired object unless the one in the cluster already
// is as it should be.
func (r *run) ensure(ctx context.Context, ns *corev1.Namespace, want *unstructured.Unstructured) error {
	gvk := want.GroupVersionKind()
	if !r.served[gvk] {
		return fmt.Errorf("the API server does not serve %s (install Tollgate's CRDs)", gvk.GroupVersion())
	}
	key := client.ObjectKeyFromObject(want)
	hash := want.GetAnnotations()[AnnotationHash]
	live := generated(gvk)
	if err := r.cache.Get(ctx, key, live); err == nil && upToDate(live, want) {
		r.remember(key, gvk, hash)
		return nil
	} else if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	// The cache may be behind (the last apply not seen yet) and holds
	// only labelled objects: decide on the object as the API server has
	// it.
	live = generated(gvk)
	if err := r.opts.Reader.Get(ctx, key, live); apierrors.IsNotFound(err) {
		live = nil
	} else if err != nil {
		return err
	}
	if live != nil && !ours(live) {
		return fmt.Errorf("exists without the label %s=%s: not Tollgate's, left alone", LabelManagedBy, ManagedBy)
	}
	if live != nil && upToDate(live, want) {
		r.remember(key, gvk, hash)
		return nil
	}
	// Drift: the object as last generated from the same profile was
	// edited, or deleted.
	drift := live != nil && live.GetAnnotations()[AnnotationHash] == hash
	if live == nil {
		r.mu.Lock()
		drift = r.applied[gvk.Kind+"/"+key.Namespace] == hash
		r.mu.Unlock()
	}
	obj := want.DeepCopy()
	if err := r.opts.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj), client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying: %w", err)
	}
	// What others added (a key in the quota's hard, an item in the limit
	// range) stays after an apply, which only sets the fields Tollgate
	// manages: replace the spec outright.
	if extra := foreignFields(obj); len(extra) > 0 {
		obj.Object["spec"] = runtime.DeepCopyJSONValue(want.Object["spec"])
		obj.SetManagedFields(nil)
		if err := r.opts.Client.Update(ctx, obj, client.FieldOwner(FieldManager)); err != nil {
			return fmt.Errorf("removing fields others set (%s): %w", strings.Join(extra, ", "), err)
		}
		drift = true
	}
	r.remember(key, gvk, hash)
	r.opts.Metrics.applied.WithLabelValues(gvk.Kind).Inc()
	what := "applied"
	if drift {
		what = "restored"
		r.opts.Metrics.drift.WithLabelValues(gvk.Kind).Inc()
		if r.opts.Events != nil {
			r.opts.Events.Eventf(ns, nil, corev1.EventTypeNormal, "NamespaceDefaultsRestored", "Generate",
				"%s %s was changed or deleted; restored from profile %s", gvk.Kind, Name, want.GetLabels()[LabelProfile])
		}
	}
	r.opts.Logger.InfoContext(ctx, "namespace defaults "+what, "namespace", key.Namespace, "kind", gvk.Kind, "profile", want.GetLabels()[LabelProfile])
	return nil
}

// remove deletes the generated object of a kind the namespace's profile no
// longer asks for: only one with Tollgate's name and managed label.
func (r *run) remove(ctx context.Context, ns string, gvk schema.GroupVersionKind) error {
	live := generated(gvk)
	if err := r.cache.Get(ctx, client.ObjectKey{Namespace: ns, Name: Name}, live); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	if live.GetLabels()[LabelManagedBy] != ManagedBy {
		return nil
	}
	uid := live.GetUID()
	if err := r.opts.Client.Delete(ctx, live, client.Preconditions{UID: &uid}); apierrors.IsNotFound(err) {
		return nil // the cache was behind: already gone
	} else if err != nil {
		return err
	}
	r.mu.Lock()
	delete(r.applied, gvk.Kind+"/"+ns)
	r.mu.Unlock()
	r.opts.Metrics.deleted.WithLabelValues(gvk.Kind).Inc()
	r.opts.Logger.InfoContext(ctx, "namespace defaults deleted", "namespace", ns, "kind", gvk.Kind)
	return nil
}

func (c *Controller) remember(key client.ObjectKey, gvk schema.GroupVersionKind, hash string) {
	c.mu.Lock()
	c.applied[gvk.Kind+"/"+key.Namespace] = hash
	c.mu.Unlock()
}

// forget drops what was remembered of a namespace that is gone.
func (c *Controller) forget(ns string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, gvk := range Kinds() {
		delete(c.applied, gvk.Kind+"/"+ns)
	}
}

// warn logs a namespace's failure and records it as a Warning Event on
// the Namespace, where its team looks.
func (r *run) warn(ctx context.Context, ns *corev1.Namespace, err error) {
	r.opts.Logger.ErrorContext(ctx, "namespace defaults failed", "namespace", ns.Name, "error", err)
	if r.opts.Events != nil {
		r.opts.Events.Eventf(ns, nil, corev1.EventTypeWarning, "NamespaceDefaultsFailed", "Generate", "%s", err.Error())
	}
}

// namespaceObject is a Namespace as the config's profile lookup reads it.
func namespaceObject(ns *corev1.Namespace) map[string]any {
	l := make(map[string]any, len(ns.Labels))
	for k, v := range ns.Labels {
		l[k] = v
	}
	return map[string]any{"metadata": map[string]any{"name": ns.Name, "labels": l}}
}
