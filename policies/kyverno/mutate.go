package kyverno

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	engineapi "github.com/kyverno/kyverno/pkg/engine/api"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tollgate-dev/tollgate/policies"
)

// Mutate is the JSON patch Kyverno's policies make to the input's object:
// first every kyverno.io policy with mutate rules (patchStrategicMerge,
// patchesJson6902, foreach) in the order of their IDs, then every
// MutatingPolicy (ApplyConfiguration and JSONPatch mutations) in the order
// of their names, each seeing what the ones before it made — the order
// `kyverno apply` chains them in. Objects being deleted are not mutated. A
// rule that errors fails the mutation, naming the policy and rule, as
// Kyverno's webhook fails the request; a MutatingPolicy with
// failurePolicy Ignore that errors changes nothing instead.
func (e *Evaluator) Mutate(ctx context.Context, in *policies.Input) ([]policies.PatchOperation, error) {
	if (len(e.mutate) == 0 && len(e.mpols) == 0) || in == nil || in.Object == nil || in.Operation == "DELETE" {
		return nil, nil
	}
	r, err := newRequest(in)
	if err != nil {
		return nil, err
	}
	resource := r.resource
	changed := false
	for _, p := range e.mutate {
		resp, err := e.run(ctx, e.engine, r, resource, p.policy, true)
		if err != nil {
			return nil, fmt.Errorf("policy %s: %w", p.meta.ID, err)
		}
		for _, rr := range resp.PolicyResponse.Rules {
			if rr.Status() == engineapi.RuleStatusError || rr.Status() == engineapi.RuleStatusFail {
				return nil, fmt.Errorf("policy %s: rule %s: %s", p.meta.ID, rr.Name(), rr.Message())
			}
			if rr.Status() == engineapi.RuleStatusPass {
				changed = true
			}
		}
		if resp.PatchedResource.Object != nil {
			resource = resp.PatchedResource
		}
	}
	if len(e.mpols) > 0 {
		out, err := e.mutateCEL(ctx, r, resource)
		if err != nil {
			return nil, err
		}
		changed = changed || out.Object != nil && !equalJSON(out.Object, resource.Object)
		if out.Object != nil {
			resource = out
		}
	}
	if !changed {
		return nil, nil
	}
	return policies.Diff(r.resource.Object, resource.Object)
}

// equalJSON reports whether two objects encode the same.
func equalJSON(a, b map[string]any) bool {
	x, errA := json.Marshal(a)
	y, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(x, y)
}

// normalize turns a JSON-shaped object (json.Number, int) into the shape
// Kyverno's engine and unstructured expect (int64, float64).
func normalize(obj map[string]any) map[string]any {
	raw, err := json.Marshal(obj)
	if err != nil {
		return obj
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		return obj
	}
	return runtime.DeepCopyJSON(fixNumbers(out).(map[string]any))
}

// fixNumbers turns float64s that are whole numbers into int64s, as
// Kubernetes' JSON decoding does.
func fixNumbers(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = fixNumbers(x)
		}
		return t
	case []any:
		for i, x := range t {
			t[i] = fixNumbers(x)
		}
		return t
	case float64:
		if t >= -(1<<53) && t <= 1<<53 && t == float64(int64(t)) {
			return int64(t)
		}
	}
	return v
}

func marshal(obj map[string]any) ([]byte, error) {
	if obj == nil {
		return nil, nil
	}
	return json.Marshal(obj)
}

func runtimeRaw(raw []byte) runtime.RawExtension { return runtime.RawExtension{Raw: raw} }
