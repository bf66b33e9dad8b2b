package loader

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/policies/review"
)

// maxBundleBytes bounds a bundle fetched for a TollgatePolicy.
const maxBundleBytes = 16 << 20

// Options are the Loader's inputs.
type Options struct {
	// Client reads Tollgate's objects (from the cache) and writes their
	// status.
	Client client.Client
	// Cache supplies the informers whose events trigger reloads.
	Cache cache.Cache
	// Base are the modules always loaded (the built-in library and
	// --policy files), with their data.
	Base     []policies.Module
	BaseData map[string]any
	// BaseObjects are policy objects held outside the cluster (a policy
	// set's: TollgatePolicies, TollgateImagePolicies, and the objects of
	// the Formats), enforced as if they were in the cluster, beside its
	// own (see AnnotationPolicySet).
	BaseObjects []Object
	// BaseDigest names the base when it is a policy set pulled from a
	// registry (its artifact digest): it is folded into the policy-set
	// digest of every load, so the digest changes with the set's objects
	// and config too, not only with the modules.
	BaseDigest string
	// FileConfig is used until (and unless) a TollgateConfig named
	// ConfigName exists.
	FileConfig *policies.Config
	ConfigName string
	// PolicyTimeout bounds one policy on one request.
	PolicyTimeout time.Duration
	// VerdictCache is the byte budget of each engine's verdict cache
	// (policies.Options.VerdictCache); 0 turns it off. Every load builds a
	// new engine, so a change of policies or config starts an empty cache.
	VerdictCache int64
	// State receives each successful load.
	State *review.Holder
	// OnLoad runs after each successful load (regenerating webhook
	// configurations, for one).
	OnLoad func(ctx context.Context, st *review.Set)
	// WriteStatus says whether this replica writes object status (the
	// leader does; every replica loads).
	WriteStatus func() bool
	// Secrets reads the Secrets image policies keep keys in (live, not
	// from a cluster-wide cache); nil refuses secretRef keys.
	Secrets client.Reader
	// Formats load other policy formats from the cluster (Gatekeeper,
	// ValidatingAdmissionPolicy) into the set beside the Rego engine.
	Formats []Format
	// Events records what a format did not load on its objects; nil
	// records nothing (the log still says).
	Events EventRecorder
	// HTTPClient fetches bundles.
	HTTPClient *http.Client
	Metrics    Observer
	Logger     *slog.Logger
	Now        func() time.Time
}

// Loader keeps the State in step with TollgatePolicy, TollgateConfig,
// TollgateException and TollgateImagePolicy objects: every change rebuilds
// the engine off the request path and swaps it in whole. A policy or config that does not load
// is reported in its status and the last good version stays in force.
type Loader struct {
	opts    Options
	trigger chan struct{}

	mu sync.Mutex
	// reader reads the cluster with the base's objects in it (the
	// Client itself when there are none).
	reader client.Client
	// setProblems are what did not load of the base's objects in the
	// last reload; in a trial reload (a new base, SetBase) they fail it
	// before anything is published.
	setProblems []string
	trial       bool
	generation  int64
	goodConfig  *policies.Config
	// configRead is the TollgateConfig (UID and generation) the reload
	// in progress read; its status is written only for that version, so
	// a config created or changed mid-reload is never reported in force
	// before a reload has used it.
	configRead struct {
		uid        types.UID
		generation int64
	}
	good       map[string]loadedPolicy // by TollgatePolicy name
	goodImages map[string]loadedImagePolicy
	// goodProfiles are the TollgateProfiles in force, by name.
	goodProfiles map[string]loadedProfile
	// recheckImages: some image policy reads Secrets or did not load.
	recheckImages bool
	base          map[string]bool
	reported      reportedProblems
}

type loadedPolicy struct {
	uid        types.UID
	generation int64
	modules    []policies.Module
	data       map[string]any
	ids        []string
}

// New checks the options.
func New(opts Options) (*Loader, error) {
	if opts.Client == nil || opts.State == nil {
		return nil, errors.New("loader: Client and State are required")
	}
	if opts.FileConfig == nil {
		opts.FileConfig = policies.DefaultConfig()
	}
	if opts.ConfigName == "" {
		opts.ConfigName = "tollgate"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if opts.WriteStatus == nil {
		opts.WriteStatus = func() bool { return true }
	}
	reader, err := readerWith(opts.Client, opts.BaseObjects, opts.BaseDigest)
	if err != nil {
		return nil, fmt.Errorf("loader: %w", err)
	}
	return &Loader{opts: opts, reader: reader, trigger: make(chan struct{}, 1), good: map[string]loadedPolicy{}, goodImages: map[string]loadedImagePolicy{}, goodProfiles: map[string]loadedProfile{}}, nil
}

// readerWith is c with objs in it (c when there are none).
func readerWith(c client.Client, objs []Object, name string) (client.Client, error) {
	if len(objs) == 0 {
		return c, nil
	}
	return newOverlay(c, objs, cmp.Or(name, "base"))
}

// Start watches the objects and reloads on every change until ctx ends; it
// implements controller-runtime's Runnable. The first load happens before
// it watches, so readiness can wait for it.
func (l *Loader) Start(ctx context.Context) error {
	if l.opts.Cache != nil {
		for _, obj := range []client.Object{&v1alpha1.TollgatePolicy{}, &v1alpha1.TollgateConfig{}, &v1alpha1.TollgateException{}, &v1alpha1.TollgateImagePolicy{}, &v1alpha1.TollgateProfile{}} {
			inf, err := l.opts.Cache.GetInformer(ctx, obj)
			if err != nil {
				return fmt.Errorf("watching %T: %w", obj, err)
			}
			if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
				AddFunc:    func(any) { l.Trigger() },
				UpdateFunc: func(any, any) { l.Trigger() },
				DeleteFunc: func(any) { l.Trigger() },
			}); err != nil {
				return fmt.Errorf("watching %T: %w", obj, err)
			}
		}
		if !l.opts.Cache.WaitForCacheSync(ctx) {
			return errors.New("loader: cache did not sync")
		}
	}
	var expiry *time.Timer
	recheck := time.NewTicker(imageRecheck)
	defer recheck.Stop()
	for {
		next, err := l.Reload(ctx)
		if err != nil {
			l.opts.Logger.ErrorContext(ctx, "reload failed; the last good policies stay in force", "error", err)
		}
		if expiry != nil {
			expiry.Stop()
		}
		if !next.IsZero() {
			// Refresh exception statuses when the next one expires.
			expiry = time.AfterFunc(time.Until(next)+time.Second, l.Trigger)
		}
		if !l.waitTrigger(ctx, recheck.C) {
			return nil
		}
	}
}

// waitTrigger waits for a reload to be asked for, rechecking image
// policies on each tick meanwhile. It returns false when ctx ends.
func (l *Loader) waitTrigger(ctx context.Context, tick <-chan time.Time) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case <-tick:
			l.RecheckImages(ctx)
		case <-l.trigger:
			// Let a burst of events (kubectl apply -f dir/) settle.
			select {
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
				return false
			}
			select {
			case <-l.trigger:
			default:
			}
			return true
		}
	}
}

// Trigger asks for a reload.
func (l *Loader) Trigger() {
	select {
	case l.trigger <- struct{}{}:
	default:
	}
}

// Base is what every load starts from beside the cluster's objects: a
// policy set pulled from a registry joined to the built-in library.
type Base struct {
	// Modules and Data are the base Rego modules and their data.
	Modules []policies.Module
	Data    map[string]any
	// Config replaces Options.FileConfig; nil keeps the one in force. A
	// TollgateConfig in the cluster still takes precedence over it.
	Config *policies.Config
	// Objects and Digest replace Options.BaseObjects and BaseDigest.
	Objects []Object
	Digest  string
}

// ClusterError is a load that failed because the cluster could not be
// read, not because of what was loaded: it says nothing of a policy set's
// worth, and a caller tries again.
type ClusterError struct{ err error }

func (e *ClusterError) Error() string { return e.err.Error() }
func (e *ClusterError) Unwrap() error { return e.err }

// SetBase replaces the base (a policy set pulled from a registry, beside
// the built-in library) and reloads now. If the new base does not load —
// its modules do not compile, or any of its objects does not load — the
// previous one is restored, so the policies in force stay and later
// reloads (of cluster objects) still work.
func (l *Loader) SetBase(ctx context.Context, b Base) error {
	reader, err := readerWith(l.opts.Client, b.Objects, b.Digest)
	if err != nil {
		return fmt.Errorf("the new base policies do not load; the previous ones stay: %w", err)
	}
	l.mu.Lock()
	old := l.opts
	oldReader, oldIDs := l.reader, l.base
	l.opts.Base, l.opts.BaseData, l.opts.BaseObjects, l.opts.BaseDigest = b.Modules, b.Data, b.Objects, b.Digest
	if b.Config != nil {
		l.opts.FileConfig = b.Config
	}
	l.reader = reader
	l.base = nil // the base's policy ids, computed again from the new base
	l.trial = true
	l.mu.Unlock()
	_, err = l.Reload(ctx)
	l.mu.Lock()
	l.trial = false
	l.mu.Unlock()
	if err != nil {
		// Nothing of the new base was published; the formats compiled
		// its objects, so the previous base is loaded again to put theirs
		// back.
		l.mu.Lock()
		l.opts, l.reader, l.base = old, oldReader, oldIDs
		l.mu.Unlock()
		if _, rerr := l.Reload(ctx); rerr != nil {
			l.opts.Logger.ErrorContext(ctx, "reloading the previous base failed", "error", rerr)
		}
		return fmt.Errorf("the new base policies do not load; the previous ones stay: %w", err)
	}
	return nil
}

// Reload rebuilds the state from the cluster objects now. It returns when
// the next exception expires (zero if none does).
func (l *Loader) Reload(ctx context.Context) (time.Time, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.setProblems = nil
	cfg, cfgErr := l.config(ctx)
	clusterProfiles, profileCandidates, profileItems, profileStatus := l.clusterProfiles(ctx)
	cfg = cfg.WithProfiles(clusterProfiles)

	var list v1alpha1.TollgatePolicyList
	if err := l.reader.List(ctx, &list); err != nil && !apimeta.IsNoMatchError(err) {
		return time.Time{}, &ClusterError{fmt.Errorf("listing TollgatePolicies: %w", err)}
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	statuses := map[string]error{}
	live := map[string]bool{}
	prev := maps.Clone(l.good)
	for i := range list.Items {
		p := &list.Items[i]
		live[p.Name] = true
		if lp, ok := l.good[p.Name]; ok && lp.uid == p.UID && lp.generation == p.Generation {
			// Unchanged and in force. Its status is still written below, so
			// an object recreated under the same name, or one whose status a
			// former leader never wrote, says so too.
			statuses[p.Name] = nil
			continue
		}
		lp, err := l.compilePolicy(ctx, p)
		statuses[p.Name] = err
		if err == nil {
			l.good[p.Name] = lp
		} else if fromSet(p) {
			l.setProblem(ctx, "TollgatePolicy", p, err.Error())
		}
	}
	for name := range l.good {
		if !live[name] {
			delete(l.good, name)
		}
	}

	engine, digest, err := l.build(ctx, cfg, list.Items)
	if err != nil {
		// Each changed policy compiled beside the base on its own; together
		// they (or the config) conflict. Keep the previous versions of the
		// changed ones and report the conflict on them.
		for name, perr := range statuses {
			if perr != nil {
				continue
			}
			statuses[name] = fmt.Errorf("conflicts with the policies in force: %w", err)
			if old, ok := prev[name]; ok {
				l.good[name] = old
			} else {
				delete(l.good, name)
			}
		}
		engine, digest, err = l.build(ctx, cfg, list.Items)
	}
	if err != nil {
		l.reloaded("error", -1)
		return time.Time{}, err
	}
	for i := range list.Items {
		if p := &list.Items[i]; fromSet(p) && statuses[p.Name] != nil && strings.HasPrefix(statuses[p.Name].Error(), "conflicts with") {
			l.setProblem(ctx, "TollgatePolicy", p, statuses[p.Name].Error())
		}
	}
	exceptions, exStatus, next := l.exceptions(ctx, engine.Config())
	images, imageItems, imageResults, recheck := l.imagePolicies(ctx)
	l.recheckImages = recheck
	plugins := l.plugins(ctx, engine.Config())
	if l.trial && len(l.setProblems) > 0 {
		// A new policy set with objects that do not load: nothing of it
		// is published.
		l.reloaded("error", -1)
		return time.Time{}, fmt.Errorf("policy set objects: %s", strings.Join(l.setProblems, "; "))
	}
	l.generation++
	st := review.NewSet(engine, exceptions, l.generation, plugins...)
	refused, profilesErr := l.checkProfiles(st, clusterProfiles, profileCandidates, profileStatus)
	if refused {
		// A TollgateProfile's new version names policies that do not
		// exist: the set is built again with its last good version.
		cfg = cfg.WithProfiles(clusterProfiles)
		if rebuilt, rebuiltDigest, err := l.build(ctx, cfg, list.Items); err == nil {
			engine, digest = rebuilt, rebuiltDigest
			exceptions, exStatus, next = l.exceptions(ctx, engine.Config())
			st = review.NewSet(engine, exceptions, l.generation, l.plugins(ctx, engine.Config())...)
		}
	}
	l.goodProfiles = profileCandidates
	if profilesErr != nil {
		// The config's own profiles name policies that do not exist:
		// they are in force (what they name is harmless) and the
		// TollgateConfig's status says what is wrong.
		cfgErr = errors.Join(cfgErr, profilesErr)
		l.opts.Logger.ErrorContext(ctx, "profiles name policies that do not exist", "error", profilesErr)
	}
	st.Images = images
	st.PolicySet = digest
	l.opts.State.Store(st)
	l.reloaded("ok", len(st.Policies()))
	l.opts.Logger.InfoContext(ctx, "policies loaded", "generation", l.generation, "policies", len(st.Policies()),
		"clusterPolicies", len(l.good), "exceptions", len(exceptions), "imagePolicies", len(images))
	if l.opts.OnLoad != nil {
		l.opts.OnLoad(ctx, st)
	}
	if l.opts.WriteStatus() {
		l.writeStatuses(ctx, list.Items, statuses, cfgErr, exStatus)
		l.writeImageStatuses(ctx, imageItems, imageResults)
		l.writeProfileStatuses(ctx, profileItems, profileStatus)
	}
	return next, nil
}

// config is the TollgateConfig in force: the named object if it parses,
// else the last good one, else the file's.
func (l *Loader) config(ctx context.Context) (*policies.Config, error) {
	var obj v1alpha1.TollgateConfig
	err := l.opts.Client.Get(ctx, client.ObjectKey{Name: l.opts.ConfigName}, &obj)
	l.configRead.uid, l.configRead.generation = obj.UID, obj.Generation
	if err != nil {
		if client.IgnoreNotFound(err) != nil && !apimeta.IsNoMatchError(err) {
			l.opts.Logger.ErrorContext(ctx, "reading TollgateConfig failed", "name", l.opts.ConfigName, "error", err)
		}
		if client.IgnoreNotFound(err) == nil {
			l.goodConfig = nil // deleted: back to the file's config
		}
		return l.current(), nil
	}
	cfg, perr := policies.ParseConfig(obj.Spec.Raw)
	if perr != nil {
		return l.current(), fmt.Errorf("TollgateConfig %s: %w", obj.Name, perr)
	}
	l.goodConfig = cfg
	return cfg, nil
}

func (l *Loader) current() *policies.Config {
	if l.goodConfig != nil {
		return l.goodConfig
	}
	return l.opts.FileConfig
}

// compilePolicy reads one TollgatePolicy's modules and checks they compile
// beside the base modules.
func (l *Loader) compilePolicy(ctx context.Context, p *v1alpha1.TollgatePolicy) (loadedPolicy, error) {
	lp := loadedPolicy{uid: p.UID, generation: p.Generation}
	switch {
	case p.Spec.Rego != "":
		lp.modules = []policies.Module{{Name: "tollgatepolicy/" + p.Name + ".rego", Text: p.Spec.Rego}}
	case p.Spec.Bundle != nil:
		mods, data, err := l.fetchBundle(ctx, p)
		if err != nil {
			return lp, err
		}
		lp.modules, lp.data = mods, data
	default:
		return lp, errors.New("spec: set rego or bundle")
	}
	known, err := l.baseIDs(ctx)
	if err != nil {
		return lp, err
	}
	e, err := policies.New(ctx, policies.Options{
		Modules: append(slices.Clone(l.opts.Base), lp.modules...),
		Data:    mergeData(l.opts.BaseData, lp.data),
		Config:  policies.DefaultConfig(),
	})
	if err != nil {
		return lp, err
	}
	for _, m := range e.Policies() {
		if !known[m.ID] {
			lp.ids = append(lp.ids, m.ID)
		}
	}
	if len(lp.ids) == 0 {
		return lp, errors.New("spec: the source defines no policy (a package with # METADATA custom.id and a violation rule)")
	}
	return lp, nil
}

// baseIDs are the policy ids of the base modules, compiled once.
func (l *Loader) baseIDs(ctx context.Context) (map[string]bool, error) {
	if l.base != nil {
		return l.base, nil
	}
	e, err := policies.New(ctx, policies.Options{Modules: l.opts.Base, Data: l.opts.BaseData, Config: policies.DefaultConfig()})
	if err != nil {
		return nil, fmt.Errorf("base policies: %w", err)
	}
	l.base = map[string]bool{}
	for _, m := range e.Policies() {
		l.base[m.ID] = true
	}
	return l.base, nil
}

func (l *Loader) fetchBundle(ctx context.Context, p *v1alpha1.TollgatePolicy) ([]policies.Module, map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.Spec.Bundle.URL, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("spec.bundle.url: %w", err)
	}
	resp, err := l.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("spec.bundle.url: fetching: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("spec.bundle.url: fetching: HTTP %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBundleBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("spec.bundle.url: reading: %w", err)
	}
	if len(body) > maxBundleBytes {
		return nil, nil, fmt.Errorf("spec.bundle.url: bundle is over the %d byte limit", maxBundleBytes)
	}
	if want := p.Spec.Bundle.SHA256; want != "" {
		sum := sha256.Sum256(body)
		if got := hex.EncodeToString(sum[:]); got != want {
			return nil, nil, fmt.Errorf("spec.bundle.sha256: the bundle's digest is %s, want %s", got, want)
		}
	}
	mods, data, err := policies.ReadBundle(p.Name+".tar.gz", bytes.NewReader(body), false)
	if err != nil {
		return nil, nil, fmt.Errorf("spec.bundle: %w", err)
	}
	return mods, data, nil
}

// build compiles the base modules and every good cluster policy with the
// config, its overrides merged with each TollgatePolicy's action and match.
// It returns the engine and the policy-set digest of what it compiled.
func (l *Loader) build(ctx context.Context, cfg *policies.Config, items []v1alpha1.TollgatePolicy) (*policies.Engine, string, error) {
	merged := *cfg
	merged.Policies = maps.Clone(cfg.Policies)
	if merged.Policies == nil {
		merged.Policies = map[string]policies.PolicyOverride{}
	}
	merged.Parameters = maps.Clone(cfg.Parameters)
	mods := slices.Clone(l.opts.Base)
	data := maps.Clone(l.opts.BaseData)
	for i := range items {
		p := &items[i]
		lp, ok := l.good[p.Name]
		if !ok {
			continue
		}
		mods = append(mods, lp.modules...)
		data = mergeData(data, lp.data)
		for _, id := range lp.ids {
			o := merged.Policies[id]
			if o.Action == "" && p.Spec.Action != "" {
				o.Action = policies.Action(p.Spec.Action)
			}
			if m := p.Spec.Match; m != nil {
				o.Kinds = append(o.Kinds, m.Kinds...)
				o.Namespaces = append(o.Namespaces, m.Namespaces...)
				o.ExemptNamespaces = append(o.ExemptNamespaces, m.ExcludedNamespaces...)
			}
			merged.Policies[id] = o
			if p.Spec.Parameters != nil && len(p.Spec.Parameters.Raw) > 0 {
				var v any
				if err := json.Unmarshal(p.Spec.Parameters.Raw, &v); err == nil {
					merged.Parameters[id] = v
				}
			}
		}
	}
	e, err := policies.New(ctx, policies.Options{Modules: mods, Data: data, Config: &merged, PolicyTimeout: l.opts.PolicyTimeout, VerdictCache: l.opts.VerdictCache})
	if err != nil {
		return nil, "", err
	}
	return e, policySetDigest(l.opts.BaseDigest, mods), nil
}

// policySetDigest names the policy set a load compiled, once per load:
// the digest of its modules (policies.ModulesDigest), the same `tollgate
// report --from` gives for the same modules. With a policy set pulled from
// a registry (base, its artifact digest) it is the sha256 of the
// artifact's digest and the modules' instead, so it changes when the
// set's objects or config change as well as when its modules or the
// cluster's TollgatePolicies do.
func policySetDigest(base string, mods []policies.Module) string {
	d := policies.ModulesDigest(mods)
	if base == "" {
		return d
	}
	sum := sha256.Sum256([]byte(base + "\n" + d))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// setProblem records what did not load of a policy set's object: it is
// logged (the object is not in the cluster, so it has no status or
// Events) and makes SetBase refuse the set.
func (l *Loader) setProblem(ctx context.Context, kind string, obj client.Object, msg string) {
	l.opts.Logger.ErrorContext(ctx, "policy set object not loaded", "policySet", obj.GetAnnotations()[AnnotationPolicySet],
		"kind", kind, "namespace", obj.GetNamespace(), "name", obj.GetName(), "error", msg)
	name := obj.GetName()
	if ns := obj.GetNamespace(); ns != "" {
		name = ns + "/" + name
	}
	l.setProblems = append(l.setProblems, kind+" "+name+": "+msg)
}

// exceptions converts the TollgateExceptions that count: in a designated
// namespace, valid and unexpired. It returns each object's status and the
// next expiry.
func (l *Loader) exceptions(ctx context.Context, cfg *policies.Config) ([]policies.Exception, map[string]exceptionStatus, time.Time) {
	var list v1alpha1.TollgateExceptionList
	status := map[string]exceptionStatus{}
	if err := l.opts.Client.List(ctx, &list); err != nil {
		if !apimeta.IsNoMatchError(err) {
			l.opts.Logger.ErrorContext(ctx, "listing TollgateExceptions failed", "error", err)
		}
		return nil, status, time.Time{}
	}
	now := l.opts.Now()
	var out []policies.Exception
	var next time.Time
	for i := range list.Items {
		obj := &list.Items[i]
		key := obj.Namespace + "/" + obj.Name
		x := policies.Exception{
			Namespace: obj.Namespace, Name: obj.Name, Policies: obj.Spec.Policies,
			Match: policies.ExceptionMatch{
				Namespaces: obj.Spec.Match.Namespaces, Kinds: obj.Spec.Match.Kinds,
				Names: obj.Spec.Match.Names, Labels: obj.Spec.Match.Labels,
			},
			Reason: obj.Spec.Reason, Ticket: obj.Spec.Ticket, Approver: obj.Spec.Approver,
			Expires: obj.Spec.Expiry.Time,
		}
		switch {
		case !matchGlobs(cfg.Exceptions.Namespaces, obj.Namespace):
			status[key] = exceptionStatus{false, v1alpha1.ReasonNotHonoured,
				fmt.Sprintf("namespace %s is not one the config designates for exceptions (exceptions.namespaces: %v)", obj.Namespace, cfg.Exceptions.Namespaces)}
		case x.Validate() != nil:
			status[key] = exceptionStatus{false, v1alpha1.ReasonInvalid, x.Validate().Error()}
		case !x.Active(now):
			status[key] = exceptionStatus{false, v1alpha1.ReasonNotHonoured, "expired at " + x.Expires.UTC().Format(time.RFC3339)}
		default:
			out = append(out, x)
			status[key] = exceptionStatus{true, v1alpha1.ReasonLoaded, "honoured until " + x.Expires.UTC().Format(time.RFC3339)}
			if next.IsZero() || x.Expires.Before(next) {
				next = x.Expires
			}
		}
	}
	return out, status, next
}

type exceptionStatus struct {
	ok              bool
	reason, message string
}

// writeStatuses records what loaded and what did not, on each object.
func (l *Loader) writeStatuses(ctx context.Context, items []v1alpha1.TollgatePolicy, results map[string]error, cfgErr error, exStatus map[string]exceptionStatus) {
	for i := range items {
		p := &items[i]
		if fromSet(p) {
			continue // not in the cluster: nothing to write
		}
		err := results[p.Name]
		st := p.Status.DeepCopy()
		st.ObservedGeneration = p.Generation
		lp, hasGood := l.good[p.Name]
		cond := loadedCondition(p.Generation, err, lp.generation, hasGood)
		if err == nil {
			st.Policies = lp.ids
		}
		apimeta.SetStatusCondition(&st.Conditions, cond)
		if !equality.Semantic.DeepEqual(st, &p.Status) {
			p.Status = *st
			if err := l.opts.Client.Status().Update(ctx, p); err != nil {
				l.opts.Logger.ErrorContext(ctx, "writing TollgatePolicy status failed", "name", p.Name, "error", err)
			}
		}
	}
	var cfgObj v1alpha1.TollgateConfig
	err := l.opts.Client.Get(ctx, client.ObjectKey{Name: l.opts.ConfigName}, &cfgObj)
	if err == nil && cfgObj.UID == l.configRead.uid && cfgObj.Generation == l.configRead.generation {
		cond := metav1.Condition{Type: v1alpha1.ConditionReady, ObservedGeneration: cfgObj.Generation,
			Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonLoaded, Message: "in force"}
		if cfgErr != nil {
			cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, v1alpha1.ReasonInvalid, limit(cfgErr.Error()+"; the last good config stays in force")
		}
		l.setObjectStatus(ctx, &cfgObj, &cfgObj.Status, cond)
	}
	var exList v1alpha1.TollgateExceptionList
	if err := l.opts.Client.List(ctx, &exList); err == nil {
		for i := range exList.Items {
			x := &exList.Items[i]
			s, ok := exStatus[x.Namespace+"/"+x.Name]
			if !ok {
				continue
			}
			cond := metav1.Condition{Type: v1alpha1.ConditionReady, ObservedGeneration: x.Generation,
				Status: metav1.ConditionFalse, Reason: s.reason, Message: limit(s.message)}
			if s.ok {
				cond.Status = metav1.ConditionTrue
			}
			l.setObjectStatus(ctx, x, &x.Status, cond)
		}
	}
}

// loadedCondition is the Ready condition of an object of this generation
// that loaded (err nil) or did not; goodGen, when hasGood, is the
// generation that stays in force instead.
func loadedCondition(generation int64, err error, goodGen int64, hasGood bool) metav1.Condition {
	cond := metav1.Condition{Type: v1alpha1.ConditionReady, ObservedGeneration: generation,
		Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonLoaded, Message: "in force"}
	if err != nil {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, v1alpha1.ReasonInvalid, limit(err.Error())
		if hasGood {
			cond.Message = limit(fmt.Sprintf("generation %d does not load; generation %d stays in force: %v", generation, goodGen, err))
		}
	}
	return cond
}

func (l *Loader) setObjectStatus(ctx context.Context, obj client.Object, st *v1alpha1.ObjectStatus, cond metav1.Condition) {
	next := st.DeepCopy()
	next.ObservedGeneration = obj.GetGeneration()
	apimeta.SetStatusCondition(&next.Conditions, cond)
	if equality.Semantic.DeepEqual(next, st) {
		return
	}
	*st = *next
	if err := l.opts.Client.Status().Update(ctx, obj); err != nil {
		l.opts.Logger.ErrorContext(ctx, "writing status failed", "kind", fmt.Sprintf("%T", obj), "name", obj.GetName(), "error", err)
	}
}

// Observer counts reloads (the server's metrics).
type Observer interface {
	// Reloaded counts one reload by result ("ok", "error") and, after a
	// good one, the number of policies loaded (-1 after a bad one).
	Reloaded(result string, policies int)
}

func (l *Loader) reloaded(result string, n int) {
	if l.opts.Metrics != nil {
		l.opts.Metrics.Reloaded(result, n)
	}
}

func limit(s string) string {
	const max = 32 << 10 // a condition message is capped at 32 KiB
	if len(s) > max {
		return s[:max-3] + "..."
	}
	return s
}

func matchGlobs(patterns []string, s string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, s); ok {
			return true
		}
	}
	return false
}

func mergeData(a, b map[string]any) map[string]any {
	out := maps.Clone(a)
	if out == nil {
		out = map[string]any{}
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}
