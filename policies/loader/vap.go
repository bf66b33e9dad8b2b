package loader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/review"
	"github.com/tollgate-dev/tollgate/policies/vap"
)

// VAPOptions configure the ValidatingAdmissionPolicy format.
type VAPOptions struct {
	// Mapper maps the kinds the policies match to resources, as the API
	// server does; nil uses the built-in kinds.
	Mapper apimeta.RESTMapper
	// Logger reports listings that failed (the last good policies stay).
	Logger *slog.Logger
}

// VAPFormat loads the cluster's ValidatingAdmissionPolicies and their
// bindings, with the param objects they name, for the audit and reports:
// the API server enforces them at admission, so the plugin skips it. The
// bindings a policy set holds are another matter: the API server never
// sees them, so Tollgate judges them at admission itself (AdmissionPlugin).
type VAPFormat struct {
	opts VAPOptions

	mu         sync.Mutex
	watched    map[schema.GroupVersionKind]bool
	paramKinds []schema.GroupVersionKind
	key        string // resource versions of what the last compile read
	last       *vap.Evaluator
	// admission judges the set's bindings at admission (nil: none).
	admission *setVAPs
}

var _ Format = (*VAPFormat)(nil)

// NewVAPFormat builds the format.
func NewVAPFormat(opts VAPOptions) *VAPFormat {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &VAPFormat{opts: opts, watched: map[schema.GroupVersionKind]bool{}}
}

var (
	vapGVK     = admissionregistrationv1.SchemeGroupVersion.WithKind("ValidatingAdmissionPolicy")
	bindingGVK = admissionregistrationv1.SchemeGroupVersion.WithKind("ValidatingAdmissionPolicyBinding")
)

// Load lists the policies, bindings and params and compiles them when any
// changed; what did not load is a problem on its object.
func (f *VAPFormat) Load(ctx context.Context, c client.Client) (review.Plugin, []Problem) {
	var pols admissionregistrationv1.ValidatingAdmissionPolicyList
	var binds admissionregistrationv1.ValidatingAdmissionPolicyBindingList
	if err := c.List(ctx, &pols); err != nil && !apimeta.IsNoMatchError(err) {
		return f.keep(fmt.Errorf("listing ValidatingAdmissionPolicies: %w", err))
	}
	if err := c.List(ctx, &binds); err != nil && !apimeta.IsNoMatchError(err) {
		return f.keep(fmt.Errorf("listing ValidatingAdmissionPolicyBindings: %w", err))
	}
	var objs []vap.Object
	byName := map[string]client.Object{}
	var versions []string
	policyObj := map[string]vap.Object{}
	var setBindings []vap.Object
	setPolicies := map[string]bool{}
	for i := range pols.Items {
		p := &pols.Items[i]
		p.SetGroupVersionKind(vapGVK)
		obj, err := toMap(p)
		if err != nil {
			continue
		}
		src := "ValidatingAdmissionPolicy " + p.Name
		objs, byName[src] = append(objs, vap.Object{Source: src, Object: obj}), p
		policyObj[p.Name] = vap.Object{Source: src, Object: obj}
		versions = append(versions, src+"@"+p.ResourceVersion)
	}
	for i := range binds.Items {
		b := &binds.Items[i]
		b.SetGroupVersionKind(bindingGVK)
		obj, err := toMap(b)
		if err != nil {
			continue
		}
		src := "ValidatingAdmissionPolicyBinding " + b.Name
		objs, byName[src] = append(objs, vap.Object{Source: src, Object: obj}), b
		versions = append(versions, src+"@"+b.ResourceVersion)
		if fromSet(b) {
			setBindings = append(setBindings, vap.Object{Source: src, Object: obj})
			setPolicies[b.Spec.PolicyName] = true
		}
	}
	params, pversions, kinds, err := f.params(ctx, c, pols.Items)
	if err != nil {
		return f.keep(err)
	}
	versions = append(versions, pversions...)
	sort.Strings(versions)
	key := strings.Join(versions, ",")

	f.mu.Lock()
	defer f.mu.Unlock()
	if f.last != nil && key == f.key {
		return VAPPlugin(f.last), nil // nothing changed: nothing to compile or report
	}
	e, cerr := vap.Compile(ctx, objs, vap.Options{Params: params, Mapper: f.opts.Mapper})
	f.admission = nil
	if len(setBindings) > 0 {
		// The set's bindings, with the policies they name (the set's or
		// the cluster's), judged at admission; what does not compile is
		// reported by the compile of everything above.
		adm := setBindings
		var admPolicies []admissionregistrationv1.ValidatingAdmissionPolicy
		for i := range pols.Items {
			if setPolicies[pols.Items[i].Name] {
				adm = append(adm, policyObj[pols.Items[i].Name])
				admPolicies = append(admPolicies, pols.Items[i])
			}
		}
		if ae, err := vap.Compile(ctx, adm, vap.Options{Params: params, Mapper: f.opts.Mapper}); err == nil || ae != nil {
			f.admission = &setVAPs{e: ae, kinds: matchedKinds(admPolicies, f.opts.Mapper)}
		}
	}
	var problems []Problem
	for _, le := range loadErrors(cerr) {
		var ve *vap.LoadError
		if errors.As(le, &ve) {
			if obj, ok := byName[ve.Source]; ok {
				problems = append(problems, Problem{Object: obj, Message: strings.TrimPrefix(ve.Error(), ve.Source+": ")})
			}
		}
	}
	f.key, f.last, f.paramKinds = key, e, kinds
	return VAPPlugin(e), problems
}

// AdmissionPlugin is the plugin judging, at admission only, the
// ValidatingAdmissionPolicyBindings a policy set holds (the API server
// enforces the cluster's own); false when the set holds none.
func (f *VAPFormat) AdmissionPlugin() (review.Plugin, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.admission == nil {
		return review.Plugin{}, false
	}
	return review.Plugin{Name: PluginVAP + "-set", Evaluator: f.admission,
		SkipSources: []string{policies.SourceAudit, policies.SourceCheck}}, true
}

// setVAPs judges a policy set's bindings at admission, and names the kinds
// their policies match, so the webhook intercepts them.
type setVAPs struct {
	e     *vap.Evaluator
	kinds []policies.GroupVersionKind
}

// Evaluate judges as the API server would judge the set's bindings.
func (s *setVAPs) Evaluate(ctx context.Context, in *policies.Input) *policies.Decision {
	return s.e.Evaluate(ctx, in)
}

// Kinds are the kinds the set's policies match.
func (s *setVAPs) Kinds() []policies.GroupVersionKind { return s.kinds }

// matchedKinds maps the resource rules of policies to kinds with the
// mapper; a wildcard resource names no kind (the webhook does not
// intercept everything for it), nor does a resource the mapper does not
// know.
func matchedKinds(pols []admissionregistrationv1.ValidatingAdmissionPolicy, mapper apimeta.RESTMapper) []policies.GroupVersionKind {
	if mapper == nil {
		return nil
	}
	seen := map[schema.GroupKind]bool{}
	var out []policies.GroupVersionKind
	for _, p := range pols {
		if p.Spec.MatchConstraints == nil {
			continue
		}
		for _, r := range p.Spec.MatchConstraints.ResourceRules {
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					if g == "*" || strings.Contains(res, "*") {
						continue
					}
					res, _, _ = strings.Cut(res, "/") // a subresource: the object's kind
					gvks, err := mapper.KindsFor(schema.GroupVersionResource{Group: g, Resource: res})
					if err != nil {
						continue
					}
					for _, k := range gvks {
						if gk := k.GroupKind(); !seen[gk] {
							seen[gk] = true
							out = append(out, policies.GroupVersionKind{Group: k.Group, Version: k.Version, Kind: k.Kind})
						}
					}
				}
			}
		}
	}
	return out
}

// keep answers a failed listing with the last good compile (or an empty
// evaluator): a cluster hiccup never drops the policies in force.
func (f *VAPFormat) keep(err error) (review.Plugin, []Problem) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opts.Logger.Error("reading ValidatingAdmissionPolicies failed; the last good ones stay in force", "error", err)
	if f.last == nil {
		f.last, _ = vap.Compile(context.Background(), nil, vap.Options{Mapper: f.opts.Mapper})
	}
	return VAPPlugin(f.last), nil
}

// params lists the objects of every paramKind the policies name.
func (f *VAPFormat) params(ctx context.Context, c client.Client, pols []admissionregistrationv1.ValidatingAdmissionPolicy) ([]map[string]any, []string, []schema.GroupVersionKind, error) {
	var out []map[string]any
	var versions []string
	var kinds []schema.GroupVersionKind
	seen := map[schema.GroupVersionKind]bool{}
	for _, p := range pols {
		pk := p.Spec.ParamKind
		if pk == nil {
			continue
		}
		gvk := schema.FromAPIVersionAndKind(pk.APIVersion, pk.Kind)
		if seen[gvk] {
			continue
		}
		seen[gvk] = true
		kinds = append(kinds, gvk)
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := c.List(ctx, list); err != nil {
			if apimeta.IsNoMatchError(err) {
				continue // a param kind the cluster does not serve: the binding says so when it runs
			}
			return nil, nil, nil, fmt.Errorf("listing %s params: %w", gvk.Kind, err)
		}
		for i := range list.Items {
			it := &list.Items[i]
			out = append(out, it.Object)
			versions = append(versions, gvk.Kind+" "+it.GetNamespace()+"/"+it.GetName()+"@"+it.GetResourceVersion())
		}
	}
	return out, versions, kinds, nil
}

// Watch reloads on changes of policies, bindings and the param kinds
// named so far.
func (f *VAPFormat) Watch(ctx context.Context, c cache.Cache, reload func()) error {
	kinds := []client.Object{&admissionregistrationv1.ValidatingAdmissionPolicy{}, &admissionregistrationv1.ValidatingAdmissionPolicyBinding{}}
	f.mu.Lock()
	var todo []client.Object
	for _, obj := range kinds {
		gvk := vapGVK
		if _, ok := obj.(*admissionregistrationv1.ValidatingAdmissionPolicyBinding); ok {
			gvk = bindingGVK
		}
		if !f.watched[gvk] {
			f.watched[gvk] = true
			todo = append(todo, obj)
		}
	}
	if f.last != nil {
		for _, gvk := range f.paramKinds {
			if !f.watched[gvk] {
				f.watched[gvk] = true
				u := &unstructured.Unstructured{}
				u.SetGroupVersionKind(gvk)
				todo = append(todo, u)
			}
		}
	}
	f.mu.Unlock()
	for _, obj := range todo {
		inf, err := c.GetInformer(ctx, obj, cache.BlockUntilSynced(false)) // a param kind Tollgate may not read must not stall the reload
		if err != nil {
			return fmt.Errorf("watching %s: %w", obj.GetObjectKind().GroupVersionKind().Kind, err)
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { reload() },
			UpdateFunc: func(any, any) { reload() },
			DeleteFunc: func(any) { reload() },
		}); err != nil {
			return err
		}
	}
	return nil
}

func toMap(obj runtime.Object) (map[string]any, error) {
	return runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
}

// loadErrors flattens joined errors.
func loadErrors(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, loadErrors(e)...)
		}
		return out
	}
	return []error{err}
}
