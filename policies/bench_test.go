package policies_test

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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
          "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}},
          "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}}],
        "containers": [
          {"name": "app", "image": "registry.corp.example/shop/checkout:1.8.0", "ports": [{"containerPort": 8080}],
           "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}},
           "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}},
          {"name": "envoy", "image": "registry.corp.example/mesh/envoy:1.31.2",
           "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}},
           "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}},
          {"name": "metrics", "image": "registry.corp.example/obs/exporter@sha256:4f2a7e0c1b0d7bb3f8a9e4f3d9c1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3",
           "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}},
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

func libraryEngine(b testing.TB, opts ...func(*policies.Options)) *policies.Engine {
	mods, err := policies.ReadFS(library.FS(), "library", false)
	if err != nil {
		b.Fatal(err)
	}
	o := policies.Options{Modules: mods}
	for _, f := range opts {
		f(&o)
	}
	e, err := policies.New(context.Background(), o)
	if err != nil {
		b.Fatal(err)
	}
	return e
}

func withCache(o *policies.Options) { o.VerdictCache = policies.DefaultVerdictCache }

func withFullInput(o *policies.Options) { o.FullInput = true }

// benchLibrary judges in with the library on an engine built with opts,
// after checking it passes cleanly.
func benchLibrary(b *testing.B, in *policies.Input, opts ...func(*policies.Options)) *policies.Engine {
	e := libraryEngine(b, opts...)
	if d := e.Evaluate(context.Background(), in); len(d.Findings) != 0 || len(d.Errors) != 0 {
		b.Fatalf("the hardened workload must pass cleanly: %+v %v", d.Findings, d.Errors)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		e.Evaluate(context.Background(), in)
	}
	return e
}

// BenchmarkLibraryDeployment: one Deployment through the whole built-in
// library, as the webhook does per request, with no verdict cache: the
// cold path, what an object never seen before costs. Target: 200 µs.
func BenchmarkLibraryDeployment(b *testing.B) {
	benchLibrary(b, policies.ObjectInput(policies.SourceAdmission, decode(b, benchDeployment), decode(b, benchNamespace)))
}

// BenchmarkLibraryDeploymentFullInput is BenchmarkLibraryDeployment with
// the whole input converted for Rego, as before the engine pruned it: the
// difference is what pruning saves.
func BenchmarkLibraryDeploymentFullInput(b *testing.B) {
	benchLibrary(b, policies.ObjectInput(policies.SourceAdmission, decode(b, benchDeployment), decode(b, benchNamespace)), withFullInput)
}

// BenchmarkLibraryDeploymentCached: the same Deployment again and again
// with the verdict cache on, as a GitOps re-apply or a scale-up sends it.
func BenchmarkLibraryDeploymentCached(b *testing.B) {
	e := benchLibrary(b, policies.ObjectInput(policies.SourceAdmission, decode(b, benchDeployment), decode(b, benchNamespace)), withCache)
	if st := e.CacheStats(); st.Hits == 0 {
		b.Fatalf("no cache hits: %+v", st)
	}
}

// apiServerPod reads the Pod as the API server sends it to a webhook:
// defaulted fields, a projected service-account token volume, tolerations,
// managedFields.
func apiServerPod(b testing.TB) *policies.Input {
	raw, err := os.ReadFile(filepath.Join("testdata", "apiserver-pod.json"))
	if err != nil {
		b.Fatal(err)
	}
	pod, err := policies.DecodeJSON(raw)
	if err != nil {
		b.Fatal(err)
	}
	return policies.ObjectInput(policies.SourceAdmission, pod, decode(b, benchNamespace))
}

// BenchmarkLibraryAPIServerPod: the whole library on a Pod shaped as the
// API server sends it, cold.
func BenchmarkLibraryAPIServerPod(b *testing.B) {
	benchLibrary(b, apiServerPod(b))
}

// BenchmarkLibraryAPIServerPodFullInput: the same without pruning.
func BenchmarkLibraryAPIServerPodFullInput(b *testing.B) {
	benchLibrary(b, apiServerPod(b), withFullInput)
}

// benchTemplatePods judges Pods of one template already judged, each with
// its own generated name and uid as a ReplicaSet creates them, and, with
// tokenVolume, its own service-account token volume name as the API
// server's ServiceAccount admission gives each Pod (kube-api-access-xxxxx,
// mounted in every container); the verdict cache is on.
func benchTemplatePods(b *testing.B, tokenVolume bool) {
	e := libraryEngine(b, withCache)
	base := apiServerPod(b)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		obj := maps.Clone(base.Object)
		meta := maps.Clone(obj["metadata"].(map[string]any))
		meta["name"] = "checkout-7d9c5b8f6d-" + strconv.Itoa(i)
		meta["uid"] = strconv.Itoa(i)
		obj["metadata"] = meta
		if tokenVolume {
			obj["spec"] = renameTokenVolume(obj["spec"].(map[string]any), "kube-api-access-"+strconv.Itoa(i))
		}
		in := *base
		in.Object = obj
		if d := e.Evaluate(ctx, &in); len(d.Findings) != 0 || len(d.Errors) != 0 {
			b.Fatalf("the pod must pass cleanly: %+v %v", d.Findings, d.Errors)
		}
	}
	b.StopTimer()
	st := e.CacheStats()
	b.ReportMetric(float64(st.Hits)/float64(st.Hits+st.Misses), "hit-ratio")
}

// renameTokenVolume returns spec with its projected token volume, and the
// containers' mounts of it, renamed.
func renameTokenVolume(spec map[string]any, name string) map[string]any {
	spec = maps.Clone(spec)
	vols := slices.Clone(spec["volumes"].([]any))
	for i, v := range vols {
		if vm := v.(map[string]any); strings.HasPrefix(vm["name"].(string), "kube-api-access-") {
			vm = maps.Clone(vm)
			vm["name"] = name
			vols[i] = vm
		}
	}
	spec["volumes"] = vols
	cs := slices.Clone(spec["containers"].([]any))
	for i, c := range cs {
		cm := maps.Clone(c.(map[string]any))
		mounts := slices.Clone(cm["volumeMounts"].([]any))
		for j, m := range mounts {
			if mm := m.(map[string]any); strings.HasPrefix(mm["name"].(string), "kube-api-access-") {
				mm = maps.Clone(mm)
				mm["name"] = name
				mounts[j] = mm
			}
		}
		cm["volumeMounts"] = mounts
		cs[i] = cm
	}
	spec["containers"] = cs
	return spec
}

// BenchmarkLibraryAPIServerPodTemplate: Pods of one template, differing
// in name and uid only.
func BenchmarkLibraryAPIServerPodTemplate(b *testing.B) { benchTemplatePods(b, false) }

// BenchmarkLibraryAPIServerPodTemplateTokenVolume: the same, each with its
// own token volume name, as the API server really sends them.
func BenchmarkLibraryAPIServerPodTemplateTokenVolume(b *testing.B) { benchTemplatePods(b, true) }

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
