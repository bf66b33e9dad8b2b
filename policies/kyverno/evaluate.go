package kyverno

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	kyvernov1 "github.com/kyverno/kyverno/api/kyverno/v1"
	kyvernov2 "github.com/kyverno/kyverno/api/kyverno/v2"
	celengine "github.com/kyverno/kyverno/pkg/cel/engine"
	"github.com/kyverno/kyverno/pkg/cel/libs"
	"github.com/kyverno/kyverno/pkg/cel/matching"
	vpolengine "github.com/kyverno/kyverno/pkg/cel/policies/vpol/engine"
	engineapi "github.com/kyverno/kyverno/pkg/engine/api"
	"github.com/kyverno/kyverno/pkg/engine/policycontext"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/tollgate-dev/tollgate/policies"
)

// errPanic marks a policy that panicked in Kyverno's engine.
var errPanic = errors.New("kyverno engine panicked")

// request is what one input becomes for Kyverno: the admission request
// (rebuilt from the input outside admission, as Kyverno's background scan
// and CLI do), the object judged, and the Namespace's labels.
type request struct {
	admission admissionv1.AdmissionRequest
	userInfo  kyvernov2.RequestInfo
	gvk       schema.GroupVersionKind
	resource  unstructured.Unstructured
	old       unstructured.Unstructured
	nsLabels  map[string]string
	namespace *corev1.Namespace
}

// newRequest turns an input into the request Kyverno's webhook would see.
// Outside admission the object is judged as a CREATE by no one, as
// `kyverno apply` does.
func newRequest(in *policies.Input) (*request, error) {
	if in == nil || (in.Object == nil && in.OldObject == nil) {
		return nil, errors.New("no object to review")
	}
	r := &request{gvk: schema.GroupVersionKind{Group: in.Kind.Group, Version: in.Kind.Version, Kind: in.Kind.Kind}}
	if in.Object != nil {
		r.resource.Object = normalize(in.Object)
	}
	if in.OldObject != nil {
		r.old.Object = normalize(in.OldObject)
	}
	op := admissionv1.Operation(in.Operation)
	if op == "" {
		op = admissionv1.Create
	}
	subject := r.resource
	if subject.Object == nil {
		subject = r.old
	}
	gvr := schema.GroupVersionResource{Group: in.Resource.Group, Version: in.Resource.Version, Resource: in.Resource.Resource}
	if gvr.Resource == "" {
		gvr, _ = meta.UnsafeGuessKindToResource(r.gvk)
	}
	raw, err := marshal(r.resource.Object)
	if err != nil {
		return nil, fmt.Errorf("encoding the object: %w", err)
	}
	oldRaw, err := marshal(r.old.Object)
	if err != nil {
		return nil, fmt.Errorf("encoding the old object: %w", err)
	}
	dryRun := in.DryRun
	r.admission = admissionv1.AdmissionRequest{
		UID:         "tollgate",
		Kind:        metav1.GroupVersionKind(r.gvk),
		Resource:    metav1.GroupVersionResource(gvr),
		SubResource: in.SubResource,
		Name:        subject.GetName(),
		Namespace:   subject.GetNamespace(),
		Operation:   op,
		Object:      runtimeRaw(raw),
		OldObject:   runtimeRaw(oldRaw),
		DryRun:      &dryRun,
	}
	r.admission.RequestKind = &r.admission.Kind
	r.admission.RequestResource = &r.admission.Resource
	if u := in.UserInfo; u != nil {
		r.admission.UserInfo = authenticationv1.UserInfo{Username: u.Username, UID: u.UID, Groups: u.Groups}
		if len(u.Extra) > 0 {
			r.admission.UserInfo.Extra = make(map[string]authenticationv1.ExtraValue, len(u.Extra))
			for k, v := range u.Extra {
				r.admission.UserInfo.Extra[k] = v
			}
		}
	}
	r.userInfo = kyvernov2.RequestInfo{AdmissionUserInfo: *r.admission.UserInfo.DeepCopy()}
	if in.Namespace != nil && !(r.gvk.Group == "" && r.gvk.Kind == "Namespace") {
		ns := &corev1.Namespace{}
		raw, err := json.Marshal(in.Namespace)
		if err == nil {
			err = json.Unmarshal(raw, ns)
		}
		if err != nil {
			return nil, fmt.Errorf("reading the Namespace: %w", err)
		}
		r.namespace = ns
		r.nsLabels = ns.Labels
	}
	return r, nil
}

// policyContext builds the context Kyverno's webhook builds for one policy
// (a fresh JSON context per policy, as each policy sees the request alone).
func (e *Evaluator) policyContext(r *request, resource unstructured.Unstructured, p kyvernov1.PolicyInterface) (*policycontext.PolicyContext, error) {
	adm := r.admission
	if resource.Object != nil && r.admission.Operation != admissionv1.Delete {
		raw, err := marshal(resource.Object)
		if err != nil {
			return nil, err
		}
		adm.Object = runtimeRaw(raw)
	}
	pc, err := policycontext.NewPolicyContextFromAdmissionRequest(e.jp, adm, r.userInfo, r.gvk, e.cfg)
	if err != nil {
		return nil, err
	}
	return pc.WithPolicy(p).WithNamespaceLabels(r.nsLabels).WithResourceKind(r.gvk, r.admission.SubResource), nil
}

// Evaluate judges one input against every loaded validate rule and
// ValidatingPolicy, as Kyverno's admission webhook would (or its background
// scan, outside admission). A rule that fails is a finding; a rule that
// errors, or a policy that panics, is a *policies.PolicyError and the other
// policies still report. Decision.Applied counts the policies that matched
// the object.
func (e *Evaluator) Evaluate(ctx context.Context, in *policies.Input) *policies.Decision {
	d := &policies.Decision{Findings: []policies.Finding{}}
	if len(e.validate) == 0 && len(e.vpolMeta) == 0 {
		return d
	}
	r, err := newRequest(in)
	if err != nil {
		for _, p := range e.validate {
			d.Errors = append(d.Errors, &policies.PolicyError{Policy: p.meta.ID, Err: err})
		}
		for _, m := range e.vpolMeta {
			d.Errors = append(d.Errors, &policies.PolicyError{Policy: m.ID, Err: err})
		}
		d.Applied = len(d.Errors)
		sortDecision(d)
		return d
	}
	for _, p := range e.validate {
		e.validateOne(ctx, r, p, d)
	}
	if len(e.vpolMeta) > 0 {
		e.validateCEL(ctx, r, d)
	}
	sortDecision(d)
	return d
}

func (e *Evaluator) validateOne(ctx context.Context, r *request, p *policy, d *policies.Decision) {
	resp, err := e.run(ctx, e.engine, r, r.resource, p.policy, false)
	if err != nil {
		d.Errors = append(d.Errors, &policies.PolicyError{Policy: p.meta.ID, Err: err})
		d.Applied++
		return
	}
	applied := false
	var excused map[string]*policies.ExceptionRef
	for _, rr := range resp.PolicyResponse.Rules {
		if ref := e.refOf(rr.Exceptions()); ref != nil {
			if excused == nil {
				excused = map[string]*policies.ExceptionRef{}
			}
			excused[rr.Name()] = ref
			applied = true
			continue
		}
		switch rr.Status() {
		case engineapi.RuleStatusSkip:
			continue
		case engineapi.RuleStatusFail:
			d.Findings = append(d.Findings, finding(&p.meta, rr.Name(), rr.Message(), ruleAction(resp, rr, p.policy)))
		case engineapi.RuleStatusWarn:
			d.Findings = append(d.Findings, finding(&p.meta, rr.Name(), rr.Message(), policies.ActionWarn))
		case engineapi.RuleStatusError:
			d.Errors = append(d.Errors, &policies.PolicyError{Policy: p.meta.ID, Err: fmt.Errorf("rule %s: %s", rr.Name(), rr.Message())})
		}
		applied = true
	}
	if len(excused) > 0 {
		e.excusedRules(ctx, r, p, excused, d)
	}
	if applied {
		d.Applied++
	}
}

// excusedRules reports what the rules an exception excused would have
// found, each finding waived by the exception: Kyverno's engine skips an
// excused rule, and reports must still show the violation it waives.
func (e *Evaluator) excusedRules(ctx context.Context, r *request, p *policy, excused map[string]*policies.ExceptionRef, d *policies.Decision) {
	resp, err := e.run(ctx, e.plain, r, r.resource, p.policy, false)
	if err != nil {
		return // excused: an error in what it would have found is moot
	}
	for _, rr := range resp.PolicyResponse.Rules {
		ref := excused[rr.Name()]
		if ref == nil {
			continue
		}
		var f policies.Finding
		switch rr.Status() {
		case engineapi.RuleStatusFail:
			f = finding(&p.meta, rr.Name(), rr.Message(), ruleAction(resp, rr, p.policy))
		case engineapi.RuleStatusWarn:
			f = finding(&p.meta, rr.Name(), rr.Message(), policies.ActionWarn)
		default:
			continue
		}
		f.Exception = ref
		d.Findings = append(d.Findings, f)
	}
}

// run calls Kyverno's engine on one policy, a panic becoming an error.
func (e *Evaluator) run(ctx context.Context, eng engineapi.Engine, r *request, resource unstructured.Unstructured, p kyvernov1.PolicyInterface, mutate bool) (resp engineapi.EngineResponse, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w: %v", errPanic, v)
		}
	}()
	pc, err := e.policyContext(r, resource, p)
	if err != nil {
		return resp, fmt.Errorf("building the policy context: %w", err)
	}
	if mutate {
		return eng.Mutate(ctx, pc), nil
	}
	return eng.Validate(ctx, pc), nil
}

// ruleAction is the action of one failed rule, resolved by Kyverno itself
// (the rule's failureActionOverrides, failureAction, then the spec's):
// Enforce enforces; Audit audits, or warns when the policy sets
// emitWarning.
func ruleAction(resp engineapi.EngineResponse, rr engineapi.RuleResponse, p kyvernov1.PolicyInterface) policies.Action {
	one := resp
	one.PolicyResponse.Rules = []engineapi.RuleResponse{rr}
	if one.HasEnforcedFailure() {
		return policies.ActionEnforce
	}
	if w := p.GetSpec().EmitWarning; w != nil && *w {
		return policies.ActionWarn
	}
	return policies.ActionAudit
}

func finding(m *policies.Metadata, rule, msg string, action policies.Action) policies.Finding {
	if rule != "" {
		msg = rule + ": " + msg
	}
	return policies.Finding{
		Policy:      m.ID,
		Title:       m.Title,
		Message:     msg,
		Severity:    m.Severity,
		Action:      action,
		Controls:    m.Controls,
		Remediation: m.Remediation,
	}
}

// validateCEL runs the ValidatingPolicies through Kyverno's CEL engine.
func (e *Evaluator) validateCEL(ctx context.Context, r *request, d *policies.Decision) {
	resps, err := e.handleCEL(ctx, r, e.vpols)
	if err != nil {
		for _, m := range e.vpolMeta {
			d.Errors = append(d.Errors, &policies.PolicyError{Policy: m.ID, Err: err})
		}
		d.Applied += len(e.vpolMeta)
		return
	}
	applied := map[string]bool{}
	excused := map[string]*policies.ExceptionRef{}
	for _, pr := range resps {
		m := e.vpolMeta[pr.Policy.GetName()]
		if m == nil || len(pr.Rules) == 0 {
			continue
		}
		for _, rr := range pr.Rules {
			if ref := e.refOf(rr.Exceptions()); ref != nil {
				excused[pr.Policy.GetName()] = ref
				applied[m.ID] = true
				continue
			}
			switch rr.Status() {
			case engineapi.RuleStatusSkip:
				continue
			case engineapi.RuleStatusFail:
				d.Findings = append(d.Findings, finding(m, "", rr.Message(), vpolAction(pr.Actions.UnsortedList())))
			case engineapi.RuleStatusError:
				d.Errors = append(d.Errors, &policies.PolicyError{Policy: m.ID, Err: errors.New(rr.Message())})
			}
			applied[m.ID] = true
		}
	}
	d.Applied += len(applied)
	for name, ref := range excused {
		e.excusedCEL(ctx, r, name, ref, d)
	}
}

// excusedCEL reports what a ValidatingPolicy an exception excused would
// have found, each finding waived by the exception.
func (e *Evaluator) excusedCEL(ctx context.Context, r *request, name string, ref *policies.ExceptionRef, d *policies.Decision) {
	plain := e.vpolsPlain[name]
	m := e.vpolMeta[name]
	if len(plain) == 0 || m == nil {
		return
	}
	resps, err := e.handleCEL(ctx, r, func(context.Context) ([]vpolengine.Policy, error) { return plain, nil })
	if err != nil {
		return // excused: an error in what it would have found is moot
	}
	for _, pr := range resps {
		for _, rr := range pr.Rules {
			if rr.Status() == engineapi.RuleStatusFail {
				f := finding(m, "", rr.Message(), vpolAction(pr.Actions.UnsortedList()))
				f.Exception = ref
				d.Findings = append(d.Findings, f)
			}
		}
	}
}

func (e *Evaluator) handleCEL(ctx context.Context, r *request, provider vpolengine.ProviderFunc) (resps []celengine.ValidatingPolicyResponse, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w: %v", errPanic, v)
		}
	}()
	ns := r.namespace
	eng := vpolengine.NewEngine(provider, func(string) *corev1.Namespace { return ns }, matching.NewMatcher())
	req := celengine.RequestFromAdmission(libs.NewFakeContextProvider(), r.admission)
	resp, err := eng.Handle(ctx, req, nil)
	if err != nil {
		return nil, err
	}
	return resp.Policies, nil
}

func sortDecision(d *policies.Decision) {
	slices.SortFunc(d.Findings, func(a, b policies.Finding) int {
		if c := strings.Compare(a.Policy, b.Policy); c != 0 {
			return c
		}
		return strings.Compare(a.Message, b.Message)
	})
	slices.SortFunc(d.Errors, func(a, b *policies.PolicyError) int {
		if c := strings.Compare(a.Policy, b.Policy); c != 0 {
			return c
		}
		return strings.Compare(a.Err.Error(), b.Err.Error())
	})
}
