package policies_test

import (
	"encoding/json"
	"testing"

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
		})
	}
}
