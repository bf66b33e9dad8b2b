package policies

import (
	"encoding/json"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"k8s.io/apimachinery/pkg/api/resource"
)

// PodRequests is what the scheduler reserves for a pod spec (JSON-shaped),
// per resource, in cores and bytes:
//
//   - pod-level spec.resources.requests win for the resources they name;
//   - otherwise the larger of (every container plus every sidecar, an init
//     container with restartPolicy Always) and, for each init container in
//     turn, its own request plus the sidecars started before it;
//   - a container without a request is charged its limit, as the API server
//     defaults it.
//
// Quantities that do not parse count as zero: the API server rejects them
// before a pod runs. FinOps charges the same figures the caps judge.
func PodRequests(spec map[string]any) map[string]float64 {
	out := map[string]float64{}
	containers := containerList(spec, "containers")
	inits := containerList(spec, "initContainers")
	for _, c := range containers {
		for name, v := range containerRequests(c) {
			out[name] += v
		}
	}
	var sidecars map[string]float64 // sidecars started so far
	initPeak := map[string]float64{}
	for _, c := range inits {
		req := containerRequests(c)
		if policy, _ := c["restartPolicy"].(string); policy == "Always" {
			if sidecars == nil {
				sidecars = map[string]float64{}
			}
			for name, v := range req {
				sidecars[name] += v
			}
			for name, v := range sidecars {
				initPeak[name] = max(initPeak[name], v)
			}
			continue
		}
		for name, v := range req {
			initPeak[name] = max(initPeak[name], v+sidecars[name])
		}
	}
	for name, v := range sidecars {
		out[name] += v
	}
	for name, v := range initPeak {
		out[name] = max(out[name], v)
	}
	if res, ok := spec["resources"].(map[string]any); ok {
		if reqs, ok := res["requests"].(map[string]any); ok {
			for name, q := range reqs {
				if v, ok := quantityValue(q); ok {
					out[name] = v
				}
			}
		}
	}
	return out
}

func containerList(spec map[string]any, field string) []map[string]any {
	list, _ := spec[field].([]any)
	out := make([]map[string]any, 0, len(list))
	for _, c := range list {
		if m, ok := c.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// containerRequests is a container's requests, defaulted from its limits.
func containerRequests(c map[string]any) map[string]float64 {
	out := map[string]float64{}
	res, _ := c["resources"].(map[string]any)
	for _, kind := range []string{"limits", "requests"} {
		values, _ := res[kind].(map[string]any)
		for name, q := range values {
			if v, ok := quantityValue(q); ok {
				out[name] = v
			}
		}
	}
	return out
}

// resourceFields converts to Go only the parts of a pod spec PodRequests
// reads — spec.resources and each container's resources and restartPolicy
// — rather than the whole spec, which a webhook request would pay for on
// every evaluation. ok is false when v is not an object.
func resourceFields(v ast.Value) (spec map[string]any, ok bool) {
	obj, ok := v.(ast.Object)
	if !ok {
		return nil, false
	}
	spec = map[string]any{}
	if res := obj.Get(ast.InternedTerm("resources")); res != nil {
		if j, err := ast.JSON(res.Value); err == nil {
			spec["resources"] = j
		}
	}
	for _, field := range []string{"containers", "initContainers"} {
		list := obj.Get(ast.InternedTerm(field))
		if list == nil {
			continue
		}
		arr, isArr := list.Value.(*ast.Array)
		if !isArr {
			continue
		}
		out := make([]any, 0, arr.Len())
		arr.Foreach(func(t *ast.Term) {
			c, isObj := t.Value.(ast.Object)
			if !isObj {
				return
			}
			m := map[string]any{}
			for _, key := range []string{"resources", "restartPolicy"} {
				if f := c.Get(ast.InternedTerm(key)); f != nil {
					if j, err := ast.JSON(f.Value); err == nil {
						m[key] = j
					}
				}
			}
			out = append(out, m)
		})
		spec[field] = out
	}
	return spec, true
}

// quantityValue reads a JSON-shaped quantity: a string or a number.
func quantityValue(q any) (float64, bool) {
	var text string
	switch v := q.(type) {
	case string:
		text = v
	case float64:
		return v, true
	case int:
		return float64(v), true
	case json.Number:
		text = v.String()
	default:
		return 0, false
	}
	if len(text) > 64 {
		return 0, false
	}
	parsed, err := resource.ParseQuantity(text)
	if err != nil {
		return 0, false
	}
	return parsed.AsApproximateFloat64(), true
}

// podRequestsBuiltin is tollgate.pod_requests(spec).
func podRequestsBuiltin(_ rego.BuiltinContext, args []*ast.Term) (*ast.Term, error) {
	spec, ok := resourceFields(args[0].Value)
	if !ok {
		return nil, nil
	}
	reqs := PodRequests(spec)
	items := make([][2]*ast.Term, 0, len(reqs))
	for name, value := range reqs {
		items = append(items, ast.Item(ast.StringTerm(name), ast.FloatNumberTerm(value)))
	}
	return ast.ObjectTerm(items...), nil
}
