package kyverno_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/kyverno"
)

// Responses gives each rule's status as Kyverno reports it; rule values
// stand for a ConfigMap context entry (which is then not read), and a
// values file's variables can override the object, as in `kyverno test`.
func TestResponses(t *testing.T) {
	ruleValues := func(policy, rule string) (map[string]any, map[string][]any) {
		if policy == "allowed-environments" && rule == "environment-listed" {
			return map[string]any{"envs.data.allowed": `["qa"]`}, nil
		}
		return nil, nil
	}
	e, err := kyverno.Compile(context.Background(), load(t, "testdata"), kyverno.Options{RuleValues: ruleValues})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	status := func(values func(string) map[string]any, labels map[string]any) map[string]string {
		t.Helper()
		in := policies.ObjectInput("pod.yaml", pod(labels, container("web", "registry.example.com/web:1")), appsNamespace)
		resps, err := e.Responses(context.Background(), in, values)
		if err != nil {
			t.Fatalf("Responses: %v", err)
		}
		out := map[string]string{}
		for _, r := range resps {
			for _, rr := range r.PolicyResponse.Rules {
				out[r.Policy().GetName()+"/"+rr.Name()] = string(rr.Status())
			}
		}
		return out
	}
	// The rule's values say qa is allowed; the ConfigMap (not given) is not read.
	got := status(nil, map[string]any{"team": "web", "environment": "qa"})
	if got["allowed-environments/environment-listed"] != "pass" || got["require-team/team-label"] == "" {
		t.Errorf("statuses %v: want allowed-environments pass and require-team judged", got)
	}
	got = status(nil, map[string]any{"team": "web", "environment": "prod"})
	if got["allowed-environments/environment-listed"] != "fail" {
		t.Errorf("prod: statuses %v, want allowed-environments fail", got)
	}
	// A resource value overrides the object's label in the policy's context.
	got = status(func(policy string) map[string]any {
		if policy == "allowed-environments" {
			return map[string]any{"request.object.metadata.labels.environment": "qa"}
		}
		return nil
	}, map[string]any{"team": "web", "environment": "prod"})
	if got["allowed-environments/environment-listed"] != "pass" {
		t.Errorf("with a resource value: statuses %v, want allowed-environments pass", got)
	}

	if _, err := e.Responses(context.Background(), &policies.Input{}, nil); err == nil || !strings.Contains(err.Error(), "no object") {
		t.Errorf("no object: err %v", err)
	}
}
