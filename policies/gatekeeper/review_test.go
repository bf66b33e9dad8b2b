package gatekeeper_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/gatekeeper"
)

// TestReviewShape checks input.review as a template sees it: the
// TgReviewEcho template reports it as its message.
func TestReviewShape(t *testing.T) {
	e := compile(t, load(t, "testdata/echo"), gatekeeper.Options{})
	cm := object("v1", "ConfigMap", "cfg", in("staging"), labels("owner", "bob"))
	oldCM := object("v1", "ConfigMap", "cfg", in("staging"), labels("owner", "ann"))
	ns := namespace("staging", "env", "test")
	// The Namespace as Gatekeeper passes it: a corev1.Namespace, encoded.
	nsObject := map[string]any{
		"apiVersion": "v1",
		"kind":       "Namespace",
		"metadata":   map[string]any{"name": "staging", "labels": map[string]any{"env": "test"}},
		"spec":       map[string]any{},
		"status":     map[string]any{},
	}
	pod := object("v1", "Pod", "web", in("staging"), field("replicas", json.Number("3")))
	podJSON := object("v1", "Pod", "web", in("staging"), field("replicas", float64(3)))

	update := admitted("UPDATE", cm, oldCM, ns, "bob")
	update.DryRun = true
	update.UserInfo.Extra = map[string][]string{"scopes": {"a"}}
	update.SubResource = "status"
	unlabelled := admitted("CREATE", namespace("team-a"), nil, nil, "bob")

	tests := []struct {
		name string
		in   *policies.Input
		want map[string]any
	}{
		{
			name: "admission UPDATE: the admission request and the Namespace",
			in:   update,
			want: map[string]any{
				"uid":         "",
				"kind":        map[string]any{"group": "", "version": "v1", "kind": "ConfigMap"},
				"resource":    map[string]any{"group": "", "version": "", "resource": ""},
				"subResource": "status",
				"name":        "cfg",
				"namespace":   "staging",
				"operation":   "UPDATE",
				"userInfo": map[string]any{
					"username": "bob", "uid": "uid-bob", "groups": []any{"system:authenticated"},
					"extra": map[string]any{"scopes": []any{"a"}},
				},
				"object":          cm,
				"oldObject":       oldCM,
				"dryRun":          true,
				"options":         nil,
				"namespaceObject": nsObject,
			},
		},
		{
			name: "admission of a Namespace: no namespace, an empty namespaceObject",
			in:   unlabelled,
			want: map[string]any{
				"uid":             "",
				"kind":            map[string]any{"group": "", "version": "v1", "kind": "Namespace"},
				"resource":        map[string]any{"group": "", "version": "", "resource": ""},
				"name":            "team-a",
				"operation":       "CREATE",
				"userInfo":        map[string]any{"username": "bob", "uid": "uid-bob", "groups": []any{"system:authenticated"}},
				"object":          namespace("team-a"),
				"oldObject":       nil,
				"dryRun":          false,
				"options":         nil,
				"namespaceObject": map[string]any{}, // the Rego driver's nil map
			},
		},
		{
			name: "audit: the object as an admission request without operation or user",
			in:   audited(pod, ns),
			want: map[string]any{
				"uid":             "",
				"kind":            map[string]any{"group": "", "version": "v1", "kind": "Pod"},
				"resource":        map[string]any{"group": "", "version": "", "resource": ""},
				"name":            "web",
				"namespace":       "staging",
				"operation":       "",
				"userInfo":        map[string]any{},
				"object":          podJSON,
				"oldObject":       nil,
				"options":         nil,
				"namespaceObject": nsObject,
			},
		},
		{
			name: "check without a Namespace",
			in:   checked(pod, nil),
			want: map[string]any{
				"uid":             "",
				"kind":            map[string]any{"group": "", "version": "v1", "kind": "Pod"},
				"resource":        map[string]any{"group": "", "version": "", "resource": ""},
				"name":            "web",
				"namespace":       "staging",
				"operation":       "",
				"userInfo":        map[string]any{},
				"object":          podJSON,
				"oldObject":       nil,
				"options":         nil,
				"namespaceObject": map[string]any{}, // the Rego driver's nil map
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := e.Evaluate(context.Background(), tt.in)
			if len(d.Findings) != 1 || len(d.Errors) > 0 {
				t.Fatalf("want one finding, got %+v, errors %v", d.Findings, errorsOf(d))
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(d.Findings[0].Message), &got); err != nil {
				t.Fatal(err)
			}
			// Round-trip what we expect through JSON too, as Rego sees JSON.
			raw, err := json.Marshal(tt.want)
			if err != nil {
				t.Fatal(err)
			}
			var want map[string]any
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("input.review (-want +got):\n%s", diff)
			}
		})
	}
}
