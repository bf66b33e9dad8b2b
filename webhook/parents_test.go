package webhook

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/tollgate-dev/tollgate/policies"
)

// The parent of a scale is read as stored, in the JSON shape of a request;
// a scale of anything else, or naming nothing, is refused with the reason.
func TestParentsOfScales(t *testing.T) {
	replicas := int32(2)
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "api"}, Spec: appsv1.DeploymentSpec{Replicas: &replicas}}
	p := &Parents{Reader: fake.NewClientBuilder().WithScheme(Scheme()).WithObjects(dep).Build()}
	in := func(group, resource, meta string) *policies.Input {
		obj, err := policies.DecodeJSON([]byte(`{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":` + meta + `,"spec":{"replicas":5}}`))
		if err != nil {
			t.Fatal(err)
		}
		return &policies.Input{SubResource: "scale", Object: obj, Resource: policies.GroupVersionResource{Group: group, Version: "v1", Resource: resource}}
	}
	got, err := p.Parent(context.Background(), in("apps", "deployments", `{"name":"api","namespace":"shop"}`))
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := got["spec"].(map[string]any)
	if n, ok := spec["replicas"].(json.Number); !ok || n.String() != "2" || got["kind"] != "Deployment" {
		t.Errorf("parent %v", got)
	}
	for _, tc := range []struct{ group, resource, meta, want string }{
		{"apps", "daemonsets", `{"name":"api","namespace":"shop"}`, `the scale of "daemonsets" is not judged`},
		{"", "deployments", `{"name":"api","namespace":"shop"}`, `the scale of "deployments" is not judged`},
		{"apps", "deployments", `{"namespace":"shop"}`, "the Scale names no object"},
		{"apps", "deployments", `{"name":"api"}`, "the Scale names no object"},
		{"apps", "deployments", `{"name":"gone","namespace":"shop"}`, `reading Deployment shop/gone: deployments.apps "gone" not found`},
		{"apps", "replicasets", `{"name":"api","namespace":"shop"}`, `reading ReplicaSet shop/api: replicasets.apps "api" not found`},
	} {
		if _, err := p.Parent(context.Background(), in(tc.group, tc.resource, tc.meta)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s/%s %s: %v, want %q", tc.group, tc.resource, tc.meta, err, tc.want)
		}
	}
}
