package vap

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/admission/plugin/policy/matching"
	"k8s.io/apiserver/pkg/admission/plugin/policy/mutating"
	"k8s.io/apiserver/pkg/admission/plugin/policy/mutating/patch"
	"k8s.io/client-go/applyconfigurations"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/tollgate-dev/tollgate/policies"
)

// Mutate applies the MutatingAdmissionPolicies whose bindings select the
// input, through the API server's mutating dispatcher, and returns the JSON
// patch from in.Object to the result (nil when nothing changes). As in the
// API server, policies run in turn on the output of the previous ones (in
// name order here; the API server's order is not defined), and once more
// if a mutation changed the object and a policy asks to be reinvoked.
//
// A policy that fails under failurePolicy Fail makes Mutate fail, as the
// request would be denied; under Ignore it is skipped. Only CREATE, UPDATE
// and CONNECT are mutated. ApplyConfiguration merges built-in kinds by
// their schema (lists merged by key, as the API server does); other kinds
// are merged without a schema, so their lists are replaced whole.
func (e *Evaluator) Mutate(ctx context.Context, in *policies.Input) (ops []policies.PatchOperation, err error) {
	if len(e.mutating) == 0 || in == nil || in.Object == nil {
		return nil, nil
	}
	req, err := e.newRequest(in)
	if err != nil {
		return nil, err
	}
	switch req.operation {
	case admission.Create, admission.Update, admission.Connect:
	default:
		return nil, nil
	}
	if excludedResources[req.resource.GroupResource()] {
		return nil, nil
	}

	ps := e.params.Load()
	var hooks []mutating.PolicyHook
	for _, p := range e.mutating {
		if len(p.bindings) == 0 {
			continue
		}
		informer, scope := e.paramsFor(ps, p.policy.Spec.ParamKind)
		hooks = append(hooks, mutating.PolicyHook{
			Policy:        p.policy,
			Bindings:      p.bindings,
			ParamInformer: informer,
			ParamScope:    scope,
			Evaluator:     p.evaluator,
		})
	}
	if len(hooks) == 0 {
		return nil, nil
	}

	defer func() {
		if r := recover(); r != nil {
			ops, err = nil, fmt.Errorf("mutating admission policies: panic: %v", r)
		}
	}()
	attr := req.attributes(true)
	dispatcher := mutating.NewDispatcher(e.authz, matching.NewMatcher(req.namespaces, offlineClient{}), e.typeConverters())
	if err := dispatcher.Dispatch(ctx, attr, e.objects, hooks); err != nil {
		return nil, fmt.Errorf("mutating admission policy: %w", err)
	}
	// What admission's reinvoker does around the mutating chain.
	if rc := attr.GetReinvocationContext(); rc.ShouldReinvoke() {
		rc.SetIsReinvoke()
		if err := dispatcher.Dispatch(ctx, attr, e.objects, hooks); err != nil {
			return nil, fmt.Errorf("mutating admission policy: %w", err)
		}
	}
	after, ok := attr.GetObject().(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("mutating admission policies returned a %T", attr.GetObject())
	}
	return policies.Diff(req.object.(*unstructured.Unstructured).Object, after.Object)
}

// TypeConverters gives a mutating engine a schema for each kind: the
// built-in kinds' from client-go (what the API server's static converter
// knows), and for the rest a converter that deduces the structure from the
// object itself (the API server would read the CRD's schema). The
// MutatingAdmissionPolicy dispatcher and Kyverno's MutatingPolicy engine
// both merge ApplyConfigurations with it.
type TypeConverters struct {
	static, deduced managedfields.TypeConverter
}

var _ patch.TypeConverterManager = (*TypeConverters)(nil)

// NewTypeConverters builds the converters; building the static one reads
// every built-in schema, so callers build it once, when first needed.
func NewTypeConverters() *TypeConverters {
	return &TypeConverters{
		static:  applyconfigurations.NewTypeConverter(clientgoscheme.Scheme),
		deduced: managedfields.NewDeducedTypeConverter(),
	}
}

// Run implements patch.TypeConverterManager: nothing is watched, the
// schemas are fixed.
func (t *TypeConverters) Run(context.Context) {}

// GetTypeConverter returns the static converter for a built-in kind, the
// deducing one for any other.
func (t *TypeConverters) GetTypeConverter(gvk schema.GroupVersionKind) managedfields.TypeConverter {
	stub := &unstructured.Unstructured{}
	stub.SetGroupVersionKind(gvk)
	if _, err := t.static.ObjectToTyped(stub); err == nil {
		return t.static
	}
	return t.deduced
}
