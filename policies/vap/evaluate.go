package vap

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	v1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/admission/plugin/policy/generic"
	"k8s.io/apiserver/pkg/admission/plugin/policy/matching"
	"k8s.io/apiserver/pkg/admission/plugin/policy/validating"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/client-go/informers"

	"github.com/tollgate-dev/tollgate/policies"
)

// Evaluate judges one input as the API server's ValidatingAdmissionPolicy
// plugin would, against every binding whose policy and matchResources
// select it. An input without an operation (the audit, `tollgate check`) is
// judged as the CREATE of the object as it stands, or its UPDATE when
// OldObject is set. Decision.Applied counts the bindings that evaluated
// the input (matched, params found, matchConditions true).
//
// Each binding is dispatched on its own through the API server's
// validating dispatcher, with the compiled validator wrapped to record its
// decisions: the dispatcher answers with the first denial only, and a
// finding is wanted for every failed validation of every binding.
func (e *Evaluator) Evaluate(ctx context.Context, in *policies.Input) (d *policies.Decision) {
	d = &policies.Decision{Findings: []policies.Finding{}}
	if len(e.validating) == 0 {
		return d
	}
	// A panic in a binding's dispatch is that binding's error; one out
	// here (a caller's RESTMapper, say) is every policy's.
	defer func() {
		if r := recover(); r != nil {
			d.Findings = []policies.Finding{}
			d.Errors = e.failAll(fmt.Errorf("panic: %v", r))
		}
	}()
	req, err := e.newRequest(in)
	if err != nil {
		d.Errors = e.failAll(err)
		return d
	}
	if excludedResources[req.resource.GroupResource()] {
		return d
	}
	dispatcher := validating.NewDispatcher(e.authz, generic.NewPolicyMatcher(matching.NewMatcher(req.namespaces, offlineClient{})))
	ps := e.params.Load()
	for _, p := range e.validating {
		informer, scope := e.paramsFor(ps, p.policy.Spec.ParamKind)
		for _, b := range p.bindings {
			e.evaluateBinding(ctx, d, dispatcher, req, p, b, informer, scope)
		}
	}
	slices.SortFunc(d.Findings, func(a, b policies.Finding) int {
		if c := strings.Compare(a.Policy, b.Policy); c != 0 {
			return c
		}
		if c := strings.Compare(a.Title, b.Title); c != 0 {
			return c
		}
		return strings.Compare(a.Message, b.Message)
	})
	return d
}

// failAll is err for every policy that has a binding.
func (e *Evaluator) failAll(err error) []*policies.PolicyError {
	var errs []*policies.PolicyError
	for _, p := range e.validating {
		if len(p.bindings) > 0 {
			errs = append(errs, &policies.PolicyError{Policy: p.meta.ID, Err: err})
		}
	}
	return errs
}

// recorder wraps a compiled validator to keep what it decided.
type recorder struct {
	validating.Validator
	called  bool
	results []validating.ValidateResult
	// interrupted is the context's error if it ended by the time a
	// validation returned: its decisions may be CEL's "interrupted".
	interrupted error
}

func (r *recorder) Validate(ctx context.Context, resource schema.GroupVersionResource, attr *admission.VersionedAttributes, params runtime.Object, ns *corev1.Namespace, budget int64, authz authorizer.Authorizer) validating.ValidateResult {
	res := r.Validator.Validate(ctx, resource, attr, params, ns, budget, authz)
	r.called = true
	r.results = append(r.results, res)
	if err := ctx.Err(); err != nil && r.interrupted == nil {
		r.interrupted = err
	}
	return res
}

func (e *Evaluator) evaluateBinding(ctx context.Context, d *policies.Decision, dispatcher generic.Dispatcher[validating.PolicyHook],
	req *request, p *validatingPolicy, b *validatingBinding, informer informers.GenericInformer, scope meta.RESTScope) {
	id := p.meta.ID
	defer func() {
		if r := recover(); r != nil {
			d.Errors = append(d.Errors, &policies.PolicyError{Policy: id, Err: fmt.Errorf("binding %s: panic: %v", b.binding.Name, r)})
		}
	}()
	rec := &recorder{Validator: p.validator}
	hook := validating.PolicyHook{
		Policy:        p.policy,
		Bindings:      []*v1.ValidatingAdmissionPolicyBinding{b.binding},
		ParamInformer: informer,
		ParamScope:    scope,
		Evaluator:     rec,
	}
	err := dispatcher.Dispatch(ctx, req.attributes(false), e.objects, []validating.PolicyHook{hook})
	if rec.interrupted != nil {
		d.Applied++
		d.Errors = append(d.Errors, &policies.PolicyError{Policy: id, Err: fmt.Errorf("binding %s: %w", b.binding.Name, rec.interrupted)})
		return
	}

	ann := b.annotations.merge(p.annotations)
	title := ann.title
	if title == "" {
		title = p.policy.Name
	}
	severity := ann.severity
	if severity == "" {
		severity = policies.SeverityMedium
	}
	seen := map[string]bool{}
	add := func(action policies.Action, msg string) {
		key := string(action) + "\x00" + msg
		if seen[key] {
			return // the same failure for another param
		}
		seen[key] = true
		d.Findings = append(d.Findings, policies.Finding{
			Policy:      id,
			Title:       fmt.Sprintf("%s (binding %s)", title, b.binding.Name),
			Message:     msg,
			Severity:    severity,
			Action:      action,
			Controls:    ann.controls,
			Remediation: ann.remediation,
		})
	}

	if !rec.called {
		// The dispatcher stopped before evaluating: the binding matched
		// but could not be configured (its param is missing under
		// parameterNotFoundAction Deny, a selector does not parse, ...).
		// Under failurePolicy Fail the API server denies whatever the
		// validationActions; under Ignore err is nil.
		if err != nil {
			d.Applied++
			add(policies.ActionEnforce, "could not be evaluated: "+deniedMessage(err))
		}
		return
	}
	applied := false
	for _, res := range rec.results {
		if len(res.Decisions)+len(res.AuditAnnotations) > 0 {
			applied = true // else matchConditions did not match
		}
		for _, dec := range res.Decisions {
			if dec.Action != validating.ActionDeny {
				continue // admitted, or an error under failurePolicy Ignore
			}
			msg := dec.Message
			if dec.Evaluation == validating.EvalError {
				msg = "could not be evaluated: " + msg
			}
			add(b.action, msg)
		}
		for _, a := range res.AuditAnnotations {
			if a.Action == validating.AuditAnnotationActionError {
				// The dispatcher denies on these whatever validationActions say.
				add(policies.ActionEnforce, "could not be evaluated: "+a.Error)
			}
		}
	}
	if applied {
		d.Applied++
	}
}

// deniedMessage is the reason in a denial from the validating dispatcher,
// without the "ValidatingAdmissionPolicy 'p' with binding 'b' denied
// request: " the finding's Policy and Title already say.
func deniedMessage(err error) string {
	msg := err.Error()
	var se *apierrors.StatusError
	if errors.As(err, &se) && se.ErrStatus.Details != nil && len(se.ErrStatus.Details.Causes) > 0 {
		msg = se.ErrStatus.Details.Causes[0].Message
	}
	if _, after, ok := strings.Cut(msg, " denied request: "); ok {
		return after
	}
	return msg
}

// request is one input in the shape the API server's admission code takes.
type request struct {
	object, oldObject runtime.Object // *unstructured.Unstructured or nil
	kind              schema.GroupVersionKind
	resource          schema.GroupVersionResource
	subResource       string
	namespace, name   string
	operation         admission.Operation
	options           runtime.Object
	dryRun            bool
	user              user.Info
	namespaces        *namespaceLister
}

// newRequest builds the admission attributes of an input. Objects are
// copied and normalized (see normalize); a namespaced object without a
// namespace gets the one it would be created in, as the API server sets
// it before admission.
func (e *Evaluator) newRequest(in *policies.Input) (*request, error) {
	if in == nil || in.Object == nil && in.OldObject == nil {
		return nil, errors.New("input has no object")
	}
	r := &request{subResource: in.SubResource, dryRun: in.DryRun, namespaces: &namespaceLister{known: e.namespaces}}
	var obj, old *unstructured.Unstructured
	if in.Object != nil {
		obj = &unstructured.Unstructured{Object: normalize(in.Object).(map[string]any)}
	}
	if in.OldObject != nil {
		old = &unstructured.Unstructured{Object: normalize(in.OldObject).(map[string]any)}
	}
	subject := obj
	if subject == nil {
		subject = old
	}

	r.kind = schema.GroupVersionKind{Group: in.Kind.Group, Version: in.Kind.Version, Kind: in.Kind.Kind}
	if r.kind.Kind == "" {
		r.kind = subject.GroupVersionKind()
	}
	if r.kind.Kind == "" || r.kind.Version == "" {
		return nil, errors.New("input has no apiVersion and kind")
	}
	r.resource = e.mapper.resource(r.kind)
	r.name = subject.GetName()

	if in.Namespace != nil {
		ns, err := toNamespace(in.Namespace)
		if err != nil {
			return nil, fmt.Errorf("reading the input's namespace: %w", err)
		}
		r.namespaces.request = ns
	}
	switch {
	case r.kind.Group == "" && r.kind.Kind == "Namespace":
		// The API server gives a namespace's own requests its name as
		// their namespace.
		r.namespace = r.name
	case e.mapper.scope(r.kind) == scopeCluster:
	default:
		r.namespace = subject.GetNamespace()
		if r.namespace == "" && e.mapper.scope(r.kind) == scopeNamespaced {
			r.namespace = metav1.NamespaceDefault
			if r.namespaces.request != nil && r.namespaces.request.Name != "" {
				r.namespace = r.namespaces.request.Name
			}
		}
	}
	for _, u := range []*unstructured.Unstructured{obj, old} {
		if u == nil {
			continue
		}
		if u.GetKind() == "" {
			u.SetGroupVersionKind(r.kind)
		}
		if r.namespace != "" && u.GetNamespace() == "" && !(r.kind.Group == "" && r.kind.Kind == "Namespace") {
			u.SetNamespace(r.namespace)
		}
	}
	if obj != nil {
		r.object = obj
	}
	if old != nil {
		r.oldObject = old
	}

	r.operation = admission.Operation(strings.ToUpper(in.Operation))
	if r.operation == "" {
		r.operation = admission.Create
		if obj != nil && old != nil {
			r.operation = admission.Update
		}
	}
	switch r.operation {
	case admission.Create:
		r.options = &metav1.CreateOptions{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "CreateOptions"}}
	case admission.Update:
		r.options = &metav1.UpdateOptions{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "UpdateOptions"}}
	case admission.Delete:
		r.options = &metav1.DeleteOptions{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "DeleteOptions"}}
	case admission.Connect:
	default:
		return nil, fmt.Errorf("unknown operation %q", in.Operation)
	}
	if in.DryRun {
		switch o := r.options.(type) {
		case *metav1.CreateOptions:
			o.DryRun = []string{metav1.DryRunAll}
		case *metav1.UpdateOptions:
			o.DryRun = []string{metav1.DryRunAll}
		case *metav1.DeleteOptions:
			o.DryRun = []string{metav1.DryRunAll}
		}
	}

	u := &user.DefaultInfo{}
	if in.UserInfo != nil {
		u.Name, u.UID, u.Groups = in.UserInfo.Username, in.UserInfo.UID, in.UserInfo.Groups
		u.Extra = in.UserInfo.Extra
	}
	r.user = u
	return r, nil
}

// attributes returns fresh admission attributes for one dispatch; with
// copyObject the object is a deep copy, for a mutating dispatch to change.
func (r *request) attributes(copyObject bool) admission.Attributes {
	obj := r.object
	if copyObject && obj != nil {
		obj = obj.DeepCopyObject()
	}
	return admission.NewAttributesRecord(obj, r.oldObject, r.kind, r.namespace, r.name, r.resource, r.subResource, r.operation, r.options, r.dryRun, r.user)
}
