package kyverno

import (
	"context"
	"errors"
	"fmt"

	policiesv1beta1 "github.com/kyverno/api/api/policies.kyverno.io/v1beta1"
	celengine "github.com/kyverno/kyverno/pkg/cel/engine"
	"github.com/kyverno/kyverno/pkg/cel/libs"
	"github.com/kyverno/kyverno/pkg/cel/matching"
	mpolcompiler "github.com/kyverno/kyverno/pkg/cel/policies/mpol/compiler"
	mpolengine "github.com/kyverno/kyverno/pkg/cel/policies/mpol/engine"
	engineapi "github.com/kyverno/kyverno/pkg/engine/api"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apiserver/pkg/admission"

	"github.com/tollgate-dev/tollgate/policies"
)

// mpolInfo is what Tollgate keeps of a MutatingPolicy beside Kyverno's
// compiled form: its metadata, and whether its failurePolicy is Ignore (an
// evaluation error then leaves the object as it is instead of failing the
// mutation).
type mpolInfo struct {
	meta   policies.Metadata
	ignore bool
}

// compiledMPOL is a MutatingPolicy and what Kyverno's CEL compiler made of
// it: the policy and its autogen variants for pod controllers.
type compiledMPOL struct {
	info     mpolInfo
	policy   policiesv1beta1.MutatingPolicyLike
	compiled []mpolengine.Policy
}

// mutatingPolicy loads a policies.kyverno.io MutatingPolicy, compiled by
// Kyverno's CEL compiler with its autogen variants and the honoured
// exceptions that name it.
func (l *loader) mutatingPolicy(o Object, version string, exs []*celException) *compiledMPOL {
	name := objectName(o.Object)
	id := "MutatingPolicy/" + name
	if !l.celVersion(o.Source, id, version) {
		return nil
	}
	mp := &policiesv1beta1.MutatingPolicy{}
	if err := strict(o.Object, mp); err != nil {
		l.fail(o.Source, id, "", err)
		return nil
	}
	if mp.Name == "" {
		l.fail(o.Source, id, "", errors.New("metadata.name is required"))
		return nil
	}
	spec := mp.GetSpec()
	switch {
	case spec.EvaluationMode() != "" && spec.EvaluationMode() != "Kubernetes":
		l.warn(o.Source, id, "", fmt.Sprintf("evaluation mode %s is not run by Tollgate; ignored", spec.EvaluationMode()))
		return nil
	case !spec.AdmissionEnabled():
		l.warn(o.Source, id, "", "evaluation.admission.enabled is false: it only mutates existing resources, which Tollgate does not run; ignored")
		return nil
	case spec.MutateExistingEnabled():
		l.warn(o.Source, id, "", "mutateExisting (targets changed in the background) is not run by Tollgate; it mutates at admission only")
	}
	compiled, err := compileMPOL(mp, nil)
	if err != nil {
		l.fail(o.Source, id, ruleOfCEL(err), err)
		return nil
	}
	good := l.compilingExceptions(id, named(exs, "MutatingPolicy", mp.Name), func(x []*policiesv1beta1.PolicyException) error {
		_, err := compileMPOL(mp, x)
		return err
	})
	if len(good) > 0 {
		if compiled, err = compileMPOL(mp, good); err != nil {
			l.fail(o.Source, id, ruleOfCEL(err), err)
			return nil
		}
	}
	if !l.claim(o.Source, id) {
		return nil
	}
	meta, err := metadata(id, mp.GetAnnotations())
	if err != nil {
		l.fail(o.Source, id, "", err)
		return nil
	}
	meta.Source = o.Source
	meta.Action = policies.ActionAudit
	return &compiledMPOL{
		info:     mpolInfo{meta: meta, ignore: mp.GetFailurePolicy(false) == admissionregistrationv1.Ignore},
		policy:   mp,
		compiled: compiled,
	}
}

// compileMPOL compiles one MutatingPolicy the way Kyverno's provider does
// (with its autogen variants), so errors are per policy.
func compileMPOL(p policiesv1beta1.MutatingPolicyLike, exs []*policiesv1beta1.PolicyException) (out []mpolengine.Policy, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w while compiling: %v", errPanic, v)
		}
	}()
	provider, err := mpolengine.NewProvider(mpolcompiler.NewCompiler(), []policiesv1beta1.MutatingPolicyLike{p}, exs, libs.NewFakeContextProvider())
	if err != nil {
		return nil, err
	}
	return provider.Fetch(context.Background(), false), nil
}

// mpolProvider hands the compiled MutatingPolicies to Kyverno's engine.
type mpolProvider []mpolengine.Policy

// Fetch implements mpolengine.Provider: every policy runs at admission;
// none is run on existing resources.
func (p mpolProvider) Fetch(_ context.Context, mutateExisting bool) []mpolengine.Policy {
	if mutateExisting {
		return nil
	}
	return p
}

// MatchesMutateExisting implements mpolengine.Provider: Tollgate does not
// mutate existing resources.
func (p mpolProvider) MatchesMutateExisting(context.Context, admission.Attributes, *admissionv1.AdmissionRequest, *corev1.Namespace) []string {
	return nil
}

var _ mpolengine.Provider = mpolProvider(nil)

// mutateCEL runs the MutatingPolicies on resource through Kyverno's CEL
// mutating engine, each on what the ones before it made. It returns the
// object they make (resource itself when none changed it).
func (e *Evaluator) mutateCEL(ctx context.Context, r *request, resource unstructured.Unstructured) (out unstructured.Unstructured, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w: %v", errPanic, v)
		}
	}()
	adm := r.admission
	raw, err := marshal(resource.Object)
	if err != nil {
		return resource, err
	}
	adm.Object = runtimeRaw(raw)
	ns := r.namespace
	ctxProvider := libs.NewFakeContextProvider()
	eng := mpolengine.NewEngine(e.mpols, func(string) *corev1.Namespace { return ns }, matching.NewMatcher(), e.typeConverters(), ctxProvider)
	resp, err := eng.Handle(ctx, celengine.RequestFromAdmission(ctxProvider, adm), nil)
	if err != nil {
		return resource, err
	}
	for _, pr := range resp.Policies {
		info := e.mpolMeta[pr.Policy.GetName()]
		for _, rr := range pr.Rules {
			if rr.Status() != engineapi.RuleStatusError && rr.Status() != engineapi.RuleStatusFail {
				continue
			}
			if info != nil && info.ignore {
				continue // failurePolicy: Ignore
			}
			id := "MutatingPolicy/" + pr.Policy.GetName()
			if info != nil {
				id = info.meta.ID
			}
			return resource, fmt.Errorf("policy %s: %s", id, rr.Message())
		}
	}
	if resp.PatchedResource == nil {
		return resource, nil
	}
	return *resp.PatchedResource, nil
}
