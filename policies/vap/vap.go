package vap

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/admission/plugin/policy/mutating"
	"k8s.io/apiserver/pkg/admission/plugin/policy/mutating/patch"
	"k8s.io/apiserver/pkg/admission/plugin/policy/validating"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/client-go/informers"

	"github.com/tollgate-dev/tollgate/policies"
)

// Object is one Kubernetes object read from a file or the cluster. Source
// names it in errors.
type Object struct {
	Source string
	Object map[string]any
}

// Options are what the evaluator may know of the cluster. Everything is
// optional; see the package documentation for what stands in for a
// missing piece.
type Options struct {
	// Params are the objects paramRef may select (ConfigMaps, custom
	// resources), e.g. the other inputs of `tollgate check`. SetParams
	// replaces them later.
	Params []map[string]any
	// Namespaces are the Namespace objects namespaceSelector and
	// namespaceObject see, looked up by name. Input.Namespace wins over
	// them for its own namespace.
	Namespaces []map[string]any
	// Mapper maps kinds to resources and scopes; the webhook and the audit
	// pass the cluster's. Nil uses the built-in kinds and the plural guess.
	Mapper meta.RESTMapper
	// Authorizer answers the policies' authorizer checks, as the API
	// server's authorizer would. Nil: every check has no opinion and an
	// error saying there is no authorizer.
	Authorizer authorizer.Authorizer
}

// LoadError is one problem with one object given to Compile: a CEL
// expression that does not compile, a missing or unknown field, a binding
// naming a policy that is not there.
type LoadError struct {
	// Source is the Object's Source.
	Source string
	// Object is the object's kind and name, e.g.
	// "ValidatingAdmissionPolicy/require-team", when known.
	Object string
	// Field is the path of the offending field, e.g.
	// "spec.validations[1].expression"; empty for the object as a whole.
	Field string
	Err   error
}

// Error implements error: source: kind/name: field: what is wrong.
func (e *LoadError) Error() string {
	var b strings.Builder
	for _, s := range []string{e.Source, e.Object, e.Field} {
		if s != "" {
			b.WriteString(s)
			b.WriteString(": ")
		}
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the underlying error.
func (e *LoadError) Unwrap() error { return e.Err }

// Evaluator judges inputs against the compiled policies. It is safe for
// concurrent use.
type Evaluator struct {
	validating []*validatingPolicy
	mutating   []*mutatingPolicy
	meta       []policies.Metadata

	mapper     *kindMapper
	authz      authorizer.Authorizer
	namespaces map[string]*corev1.Namespace
	params     atomic.Pointer[paramSet]
	objects    admission.ObjectInterfaces

	typeConverters func() patch.TypeConverterManager
}

// validatingPolicy is one compiled ValidatingAdmissionPolicy and the
// bindings naming it.
type validatingPolicy struct {
	policy    *admissionregistrationv1.ValidatingAdmissionPolicy
	validator validating.Validator
	meta      policies.Metadata
	// annotations are the policy's tollgate.dev annotations.
	annotations annotations
	bindings    []*validatingBinding
}

type validatingBinding struct {
	binding *admissionregistrationv1.ValidatingAdmissionPolicyBinding
	action  policies.Action
	// annotations holds the binding's tollgate.dev annotations; unset
	// ones fall back to the policy's.
	annotations annotations
}

// mutatingPolicy is one compiled MutatingAdmissionPolicy and the bindings
// naming it.
type mutatingPolicy struct {
	policy    *admissionregistrationv1.MutatingAdmissionPolicy
	evaluator mutating.PolicyEvaluator
	bindings  []*admissionregistrationv1.MutatingAdmissionPolicyBinding
}

// Compile loads every ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
// MutatingAdmissionPolicy and MutatingAdmissionPolicyBinding among objs
// (admissionregistration.k8s.io v1 or v1beta1) and ignores the other
// objects. Each problem is a *LoadError naming the object's Source and the
// field; they are returned joined, and the objects without problems still
// load. The Evaluator is never nil.
func Compile(ctx context.Context, objs []Object, opts Options) (*Evaluator, error) {
	e := &Evaluator{
		mapper:     &kindMapper{mapper: opts.Mapper},
		authz:      opts.Authorizer,
		namespaces: map[string]*corev1.Namespace{},
		objects:    admission.NewObjectInterfacesFromScheme(runtime.NewScheme()),
	}
	if e.authz == nil {
		e.authz = offlineAuthorizer{}
	}
	e.typeConverters = sync.OnceValue(func() patch.TypeConverterManager { return NewTypeConverters() })

	var errs []error
	for i, obj := range opts.Namespaces {
		ns, err := toNamespace(obj)
		if err == nil && ns.Name == "" {
			err = errors.New("metadata.name is required")
		}
		if err != nil {
			errs = append(errs, &LoadError{Source: "options", Object: fmt.Sprintf("Namespaces[%d]", i), Err: err})
			continue
		}
		e.namespaces[ns.Name] = ns
	}
	ps, err := newParamSet(opts.Params, e.mapper)
	if err != nil {
		errs = append(errs, &LoadError{Source: "options", Object: "Params", Err: err})
	}
	e.params.Store(ps)

	l := newLoader()
	for _, obj := range objs {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			return e, errors.Join(errs...)
		}
		l.add(obj)
	}
	e.validating, e.mutating = l.link()
	errs = append(errs, l.errs...)
	for _, p := range e.validating {
		e.meta = append(e.meta, p.meta)
	}
	return e, errors.Join(errs...)
}

// Policies describes the loaded ValidatingAdmissionPolicies, in name
// order. A policy's Action is the strongest of its bindings' (disabled
// when it has none); its Severity, Controls and Remediation are the
// policy's own (a binding may override them in its findings).
func (e *Evaluator) Policies() []policies.Metadata {
	return slices.Clone(e.meta)
}

// SetParams replaces the objects paramRef selects from. It is safe to call
// while other goroutines evaluate: an evaluation sees the old set or the
// new one, never a mix. An object without apiVersion, kind or
// metadata.name cannot be selected and is skipped.
func (e *Evaluator) SetParams(objs []map[string]any) {
	ps, _ := newParamSet(objs, e.mapper)
	e.params.Store(ps)
}

// policyID is the id findings carry for a policy.
func policyID(kind, name string) string { return kind + "/" + name }

// actionOf maps validationActions to the Tollgate action: Deny enforces,
// else Warn warns, else Audit audits.
func actionOf(actions []admissionregistrationv1.ValidationAction) policies.Action {
	switch {
	case slices.Contains(actions, admissionregistrationv1.Deny):
		return policies.ActionEnforce
	case slices.Contains(actions, admissionregistrationv1.Warn):
		return policies.ActionWarn
	case slices.Contains(actions, admissionregistrationv1.Audit):
		return policies.ActionAudit
	}
	return policies.ActionDisabled
}

// paramsFor returns the param informer and scope for a policy's paramKind,
// or nils when it has none. Compile checked the apiVersion parses.
func (e *Evaluator) paramsFor(ps *paramSet, kind *admissionregistrationv1.ParamKind) (informers.GenericInformer, meta.RESTScope) {
	if kind == nil {
		return nil, nil
	}
	gv, _ := schema.ParseGroupVersion(kind.APIVersion)
	return ps.lookup(gv.WithKind(kind.Kind), e.mapper)
}
