package kyverno

import (
	"context"
	"fmt"

	kyvernov1 "github.com/kyverno/kyverno/api/kyverno/v1"
	celengine "github.com/kyverno/kyverno/pkg/cel/engine"
	"github.com/kyverno/kyverno/pkg/cel/libs"
	"github.com/kyverno/kyverno/pkg/cel/matching"
	mpolengine "github.com/kyverno/kyverno/pkg/cel/policies/mpol/engine"
	engineapi "github.com/kyverno/kyverno/pkg/engine/api"
	enginecontext "github.com/kyverno/kyverno/pkg/engine/context"
	"github.com/kyverno/kyverno/pkg/engine/factories"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tollgate-dev/tollgate/policies"
)

// RuleValues gives the variables a Kyverno CLI values file sets for one
// rule of one policy (by the policy's name): `values` are added to the
// rule's JSON context before its context entries load; of `foreachValues`
// Kyverno's CLI uses the first element of each list, and so does this
// package. Nil values mean none.
type RuleValues func(policy, rule string) (values map[string]any, foreachValues map[string][]any)

// contextLoaders is the context loader factory of the engine: ConfigMap
// context entries read the given ConfigMaps; with rule values (a Kyverno
// CLI values file), they are not read at all, as in `kyverno test`, where
// the values stand for them.
func contextLoaders(cms configMaps, values RuleValues) engineapi.ContextLoaderFactory {
	if values == nil {
		return factories.DefaultContextLoaderFactory(cms)
	}
	return func(p kyvernov1.PolicyInterface, rule kyvernov1.Rule) engineapi.ContextLoader {
		vals, foreach := values(p.GetName(), rule.Name)
		init := func(jc enginecontext.Interface) error {
			for k, v := range vals {
				if err := jc.AddVariable(k, v); err != nil {
					return fmt.Errorf("value %s: %w", k, err)
				}
			}
			for k, v := range foreach {
				if len(v) == 0 {
					continue
				}
				if err := jc.AddVariable(k, v[0]); err != nil {
					return fmt.Errorf("foreach value %s: %w", k, err)
				}
			}
			return nil
		}
		return factories.DefaultContextLoaderFactory(nil, factories.WithInitializer(init))(p, rule)
	}
}

// Responses judges one input the way Mutate and Evaluate do, with the same
// engine and exceptions, and returns Kyverno's own engine responses, one
// per policy and step: every kyverno.io policy with mutate rules in the
// order of their IDs, each on what the previous made (its PatchedResource
// is the object after it), then the MutatingPolicies (one response each,
// as Kyverno's CLI builds them: PatchedResource is the object after all of
// them), then every policy with validate rules on the mutated object, then
// the ValidatingPolicies on it. A policy that does not match the object
// has a response with no rules, as in Kyverno.
//
// It is for callers that need each rule's status as Kyverno reports it
// (pass, fail, warn, error, skip) rather than Tollgate's findings: `tollgate
// test` compares them with a Kyverno CLI test file's expected results.
// values, when not nil, gives the variables of a values file for a policy
// (by name) and this object; they are set in the policy's JSON context after
// the request, so they may override request.object fields, as the Kyverno
// CLI sets them. An error is an input Kyverno cannot take, or a policy that
// panicked.
func (e *Evaluator) Responses(ctx context.Context, in *policies.Input, values func(policy string) map[string]any) ([]engineapi.EngineResponse, error) {
	r, err := newRequest(in)
	if err != nil {
		return nil, err
	}
	var out []engineapi.EngineResponse
	resource := r.resource
	for _, p := range e.mutate {
		resp, err := e.runValues(ctx, r, resource, p.policy, true, values)
		if err != nil {
			return nil, fmt.Errorf("policy %s: %w", p.meta.ID, err)
		}
		out = append(out, resp)
		if resp.PatchedResource.Object != nil {
			resource = resp.PatchedResource
		}
	}
	if len(e.mpols) > 0 && r.admission.Operation != admissionv1.Delete {
		resps, mutated, err := e.mpolResponses(ctx, r, resource)
		if err != nil {
			return nil, err
		}
		out = append(out, resps...)
		resource = mutated
	}
	for _, p := range e.validate {
		resp, err := e.runValues(ctx, r, resource, p.policy, false, values)
		if err != nil {
			return nil, fmt.Errorf("policy %s: %w", p.meta.ID, err)
		}
		out = append(out, resp)
	}
	if len(e.vpolMeta) == 0 {
		return out, nil
	}
	mutated := *r
	if resource.Object != nil && r.admission.Operation != admissionv1.Delete {
		raw, err := marshal(resource.Object)
		if err != nil {
			return nil, err
		}
		mutated.admission.Object = runtimeRaw(raw)
	}
	resps, err := e.handleCEL(ctx, &mutated, e.vpols)
	if err != nil {
		return nil, err
	}
	subject := resource
	if subject.Object == nil {
		subject = r.old
	}
	for _, pr := range resps {
		resp := engineapi.EngineResponse{Resource: subject, PolicyResponse: engineapi.PolicyResponse{Rules: pr.Rules}}
		out = append(out, resp.WithPolicy(engineapi.NewValidatingPolicyFromLike(pr.Policy)))
	}
	return out, nil
}

// runValues is run with a values file's variables added to the policy's
// JSON context, the object then read back from it, as the Kyverno CLI
// builds its policy context.
func (e *Evaluator) runValues(ctx context.Context, r *request, resource unstructured.Unstructured, p kyvernov1.PolicyInterface, mutate bool, values func(string) map[string]any) (resp engineapi.EngineResponse, err error) {
	if values == nil {
		return e.run(ctx, e.engine, r, resource, p, mutate)
	}
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w: %v", errPanic, v)
		}
	}()
	pc, err := e.policyContext(r, resource, p)
	if err != nil {
		return resp, fmt.Errorf("building the policy context: %w", err)
	}
	vals := values(p.GetName())
	if len(vals) > 0 {
		for k, v := range vals {
			if err := pc.JSONContext().AddVariable(k, v); err != nil {
				return resp, fmt.Errorf("value %s: %w", k, err)
			}
		}
		if r.admission.Operation != admissionv1.Delete {
			obj, err := pc.JSONContext().Query("request.object")
			if err != nil {
				return resp, fmt.Errorf("reading request.object back: %w", err)
			}
			m, _ := obj.(map[string]any)
			pc = pc.WithNewResource(unstructured.Unstructured{Object: m})
		}
	}
	if mutate {
		return e.engine.Mutate(ctx, pc), nil
	}
	return e.engine.Validate(ctx, pc), nil
}

// mpolResponses runs the MutatingPolicies on resource through Kyverno's
// CEL mutating engine, as mutateCEL does, and returns one engine response
// per policy the way Kyverno's CLI builds them, with the object they made.
func (e *Evaluator) mpolResponses(ctx context.Context, r *request, resource unstructured.Unstructured) (out []engineapi.EngineResponse, patched unstructured.Unstructured, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w: %v", errPanic, v)
		}
	}()
	adm := r.admission
	raw, err := marshal(resource.Object)
	if err != nil {
		return nil, resource, err
	}
	adm.Object = runtimeRaw(raw)
	ns := r.namespace
	ctxProvider := libs.NewFakeContextProvider()
	eng := mpolengine.NewEngine(e.mpols, func(string) *corev1.Namespace { return ns }, matching.NewMatcher(), e.typeConverters(), ctxProvider)
	resp, err := eng.Handle(ctx, celengine.RequestFromAdmission(ctxProvider, adm), nil)
	if err != nil {
		return nil, resource, err
	}
	patched = resource
	if resp.PatchedResource != nil {
		patched = *resp.PatchedResource
	}
	for _, pr := range resp.Policies {
		er := engineapi.EngineResponse{Resource: resource, PatchedResource: patched, PolicyResponse: engineapi.PolicyResponse{Rules: pr.Rules}}
		out = append(out, er.WithPolicy(engineapi.NewMutatingPolicyFromLike(pr.Policy)))
	}
	return out, patched, nil
}
