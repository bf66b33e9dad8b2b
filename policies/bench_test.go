package policies_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/library"
)

// benchDeployment is a realistic workload: labelled, hardened, three
// containers and an init container.
const benchDeployment = `{
  "apiVersion": "apps/v1", "kind": "Deployment",
  "metadata": {"name": "checkout", "namespace": "shop",
    "labels": {"app": "checkout", "team": "payments", "owner": "jdoe", "cost-center": "CC-1234", "environment": "prod"}},
  "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "checkout"}},
    "template": {"metadata": {"labels": {"app": "checkout", "team": "payments"}},
      "spec": {
        "securityContext": {"runAsNonRoot": true, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
        "initContainers": [{"name": "migrate", "image": "registry.corp.example/shop/migrate:2.4.1",
          "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
          "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}}],
        "containers": [
          {"name": "app", "image": "registry.corp.example/shop/checkout:1.8.0", "ports": [{"containerPort": 8080}],
           "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}},
           "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}},
          {"name": "envoy", "image": "registry.corp.example/mesh/envoy:1.31.2",
           "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}},
           "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}},
          {"name": "metrics", "image": "registry.corp.example/obs/exporter@sha256:4f2a7e0c1b0d7bb3f8a9e4f3d9c1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3",
           "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
           "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}}}],
        "volumes": [{"name": "tmp", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "checkout"}}]}}}
}`

const benchNamespace = `{"apiVersion": "v1", "kind": "Namespace",
  "metadata": {"name": "shop", "labels": {"team": "payments", "owner": "jdoe", "cost-center": "CC-1234"}}}`

func decode(b testing.TB, s string) map[string]any {
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		b.Fatal(err)
	}
	return m
}

func libraryEngine(b testing.TB) *policies.Engine {
	mods, err := policies.ReadFS(library.FS(), "library", false)
	if err != nil {
		b.Fatal(err)
	}
	e, err := policies.New(context.Background(), policies.Options{Modules: mods})
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// BenchmarkLibraryDeployment: one Deployment through the whole built-in
// library, as the webhook does per request. Target: well under 1 ms.
func BenchmarkLibraryDeployment(b *testing.B) {
	e := libraryEngine(b)
	in := policies.ObjectInput(policies.SourceAdmission, decode(b, benchDeployment), decode(b, benchNamespace))
	if d := e.Evaluate(context.Background(), in); len(d.Findings) != 0 || len(d.Errors) != 0 {
		b.Fatalf("the hardened deployment must pass cleanly: %+v %v", d.Findings, d.Errors)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		e.Evaluate(context.Background(), in)
	}
}

// BenchmarkOnePolicyPod: a bare Pod through a single policy, the floor of
// the engine's per-request cost.
func BenchmarkOnePolicyPod(b *testing.B) {
	e := newEngine(b, map[string]string{"privileged.rego": privilegedPolicy})
	pod := decode(b, `{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop"},
	  "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}`)
	in := policies.ObjectInput(policies.SourceAdmission, pod, nil)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		e.Evaluate(context.Background(), in)
	}
}
