package policies_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/policies"
)

func TestPodRequests(t *testing.T) {
	tests := []struct {
		name string
		spec string
		want map[string]float64
	}{
		{"containers add up", `{"containers": [
			{"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
			{"resources": {"requests": {"cpu": "1", "memory": "512Mi"}}}]}`,
			map[string]float64{"cpu": 1.5, "memory": 1.5 * (1 << 30)}},
		{"limit stands in for a missing request", `{"containers": [{"resources": {"limits": {"cpu": "2"}}}]}`,
			map[string]float64{"cpu": 2}},
		{"init container peak wins when larger", `{"containers": [{"resources": {"requests": {"cpu": "1"}}}],
			"initContainers": [{"resources": {"requests": {"cpu": "3"}}}]}`,
			map[string]float64{"cpu": 3}},
		{"sidecars add to containers and to later inits", `{"containers": [{"resources": {"requests": {"cpu": "1"}}}],
			"initContainers": [
				{"restartPolicy": "Always", "resources": {"requests": {"cpu": "1"}}},
				{"resources": {"requests": {"cpu": "2.5"}}}]}`,
			map[string]float64{"cpu": 3.5}},
		{"pod-level requests win", `{"resources": {"requests": {"cpu": "4"}},
			"containers": [{"resources": {"requests": {"cpu": "1", "memory": "1Mi"}}}]}`,
			map[string]float64{"cpu": 4, "memory": 1 << 20}},
		{"numbers and junk", `{"containers": [{"resources": {"requests": {"cpu": 2, "memory": "lots"}}}, "not a container"]}`,
			map[string]float64{"cpu": 2}},
		{"empty", `{}`, map[string]float64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var spec map[string]any
			if err := json.Unmarshal([]byte(tt.spec), &spec); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, policies.PodRequests(spec)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			// The Rego builtin reads only the fields it needs from the
			// spec's AST; it must agree with PodRequests on the whole spec.
			if diff := cmp.Diff(tt.want, podRequestsInRego(t, spec)); diff != "" {
				t.Errorf("tollgate.pod_requests (-want +got):\n%s", diff)
			}
		})
	}
}

// podRequestsInRego evaluates tollgate.pod_requests(input) in Rego.
func podRequestsInRego(t *testing.T, spec map[string]any) map[string]float64 {
	t.Helper()
	opts := []func(*rego.Rego){rego.Query("x := tollgate.pod_requests(input)"), rego.Input(spec), rego.StrictBuiltinErrors(true)}
	for _, b := range policies.StandardBuiltins() {
		opts = append(opts, rego.FunctionDyn(&rego.Function{Name: b.Name, Decl: b.Decl}, b.Impl))
	}
	rs, err := rego.New(opts...).Eval(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 {
		t.Fatalf("tollgate.pod_requests is undefined: %v", rs)
	}
	out := map[string]float64{}
	for k, v := range rs[0].Bindings["x"].(map[string]any) {
		f, err := v.(json.Number).Float64()
		if err != nil {
			t.Fatal(err)
		}
		out[k] = f
	}
	return out
}
