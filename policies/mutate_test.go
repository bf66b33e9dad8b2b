package policies

import (
	"context"
	"encoding/json"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

func mutationEngine(t *testing.T, cfgYAML string) *Engine {
	t.Helper()
	cfg := DefaultConfig()
	if cfgYAML != "" {
		var err error
		if cfg, err = ParseConfig([]byte(cfgYAML)); err != nil {
			t.Fatal(err)
		}
	}
	e, err := New(context.Background(), Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func yamlObject(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

var teamNamespace = map[string]any{"metadata": map[string]any{"name": "shop", "labels": map[string]any{
	"team": "payments", "owner": "alice", "cost-center": "CC-1234", "example.com/unrelated": "x",
}}}

const plainDeployment = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      initContainers: [{name: init, image: busybox:1.36}]
      containers:
        - name: app
          image: nginx:1.27
        - name: sidecar
          image: envoy:1.30
          resources: {limits: {memory: 64Mi}}
`

// applyPatch applies a mutation the way the API server does.
func applyPatch(t *testing.T, obj map[string]any, m *Mutation) map[string]any {
	t.Helper()
	doc, _ := json.Marshal(obj)
	patch, _ := json.Marshal(m.Patch)
	p, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		t.Fatalf("decoding patch: %v", err)
	}
	out, err := p.Apply(doc)
	if err != nil {
		t.Fatalf("applying patch %s: %v", patch, err)
	}
	var res map[string]any
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

func TestMutateDeploymentAndIdempotence(t *testing.T) {
	e := mutationEngine(t, "")
	obj := yamlObject(t, plainDeployment)
	in := ObjectInput(SourceAdmission, obj, teamNamespace)
	in.Operation = "CREATE"
	m, err := e.Mutate(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range m.Patch {
		if op.Op != "add" {
			t.Errorf("op %s %s: want only add operations on a fresh object", op.Op, op.Path)
		}
	}
	got := applyPatch(t, obj, m)
	want := yamlObject(t, `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {team: payments, owner: alice, cost-center: CC-1234}
  annotations:
    tollgate.dev/injected: '{"labels":["cost-center","owner","team"],"resources":["containers/app","containers/sidecar","initContainers/init"],"securityContext":["containers/app","containers/sidecar","initContainers/init","pod"]}'
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web, team: payments, owner: alice, cost-center: CC-1234}}
    spec:
      securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
      initContainers:
        - name: init
          image: busybox:1.36
          securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
          resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 256Mi}}
      containers:
        - name: app
          image: nginx:1.27
          securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
          resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 256Mi}}
        - name: sidecar
          image: envoy:1.30
          securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
          resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {memory: 64Mi}}
`)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("mutated object (-want +got):\n%s", diff)
	}

	// The mutated object passes the hardened-pod policies the defaults target.
	// A second invocation (reinvocation, or a re-apply) changes nothing.
	in2 := ObjectInput(SourceAdmission, got, teamNamespace)
	in2.Operation = "UPDATE"
	m2, err := e.Mutate(in2)
	if err != nil {
		t.Fatal(err)
	}
	if !m2.Empty() {
		t.Fatalf("second invocation patched %+v, want nothing", m2.Patch)
	}
}

func TestMutateKeepsUserValues(t *testing.T) {
	obj := yamlObject(t, `
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: shop, labels: {team: search}}
spec:
  securityContext: {runAsNonRoot: false}
  containers:
    - name: app
      image: nginx:1.27
      securityContext: {allowPrivilegeEscalation: true, capabilities: {drop: [NET_RAW]}}
      resources: {requests: {cpu: "2", memory: 1Gi}}
`)
	cases := []struct {
		name, cfg string
		want      map[string]any // paths → values after patching
	}{
		{"kept by default", "", map[string]any{
			"metadata.labels.team":                                        "search",
			"spec.securityContext.runAsNonRoot":                           false,
			"spec.containers[0].securityContext.allowPrivilegeEscalation": true,
			"spec.containers[0].securityContext.capabilities.drop":        []any{"NET_RAW"},
			"spec.containers[0].resources.limits.memory":                  "1Gi", // never below the request
		}},
		{"overwritten when configured", `
mutations:
  ownership: {overwrite: true}
  securityContext: {overwrite: true}
`, map[string]any{
			"metadata.labels.team":                                        "payments",
			"spec.securityContext.runAsNonRoot":                           true,
			"spec.containers[0].securityContext.allowPrivilegeEscalation": false,
			"spec.containers[0].securityContext.capabilities.drop":        []any{"NET_RAW", "ALL"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := mutationEngine(t, tc.cfg)
			in := ObjectInput(SourceAdmission, obj, teamNamespace)
			in.Operation = "CREATE"
			m, err := e.Mutate(in)
			if err != nil {
				t.Fatal(err)
			}
			got := applyPatch(t, obj, m)
			for p, want := range tc.want {
				if diff := cmp.Diff(want, valueAt(t, got, p)); diff != "" {
					t.Errorf("%s (-want +got):\n%s", p, diff)
				}
			}
		})
	}
}

func valueAt(t *testing.T, obj map[string]any, p string) any {
	t.Helper()
	segs, err := ParsePath(p)
	if err != nil {
		t.Fatal(err)
	}
	var cur any = obj
	for _, s := range segs {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[s.(string)]
		case []any:
			cur = c[s.(int)]
		default:
			return nil
		}
	}
	return cur
}

func TestMutateCases(t *testing.T) {
	cases := []struct {
		name, cfg, object, op, sub string
		ns                         map[string]any
		wantPatch                  []PatchOperation
	}{{
		name: "label keys with a slash are escaped",
		cfg:  "labels: {team: {key: example.com/team}}",
		object: `{apiVersion: v1, kind: PersistentVolumeClaim, metadata: {name: data, namespace: shop, labels: {}},
                  spec: {resources: {requests: {storage: 1Gi}}}}`,
		ns: map[string]any{"metadata": map[string]any{"labels": map[string]any{"example.com/team": "payments"}}},
		op: "CREATE",
		wantPatch: []PatchOperation{
			{Op: "add", Path: "/metadata/labels/example.com~1team", Value: "payments"},
			{Op: "add", Path: "/metadata/annotations", Value: map[string]any{InjectedAnnotation: `{"labels":["example.com/team"]}`}},
		},
	}, {
		name:   "a privileged container keeps privilege escalation (the API server forbids the pair); policies judge it",
		cfg:    "mutations: {resources: {enabled: false}, ownership: {enabled: false}}",
		object: `{apiVersion: v1, kind: Pod, metadata: {name: p, namespace: shop}, spec: {securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}, containers: [{name: c, image: x:1, securityContext: {privileged: true, capabilities: {drop: [ALL]}}}]}}`,
		op:     "CREATE",
	}, {
		name:   "windows pods get no seccomp or capabilities",
		cfg:    "mutations: {resources: {enabled: false}, ownership: {enabled: false}}",
		object: `{apiVersion: v1, kind: Pod, metadata: {name: p, namespace: shop, annotations: {a: b}}, spec: {os: {name: windows}, containers: [{name: c, image: x:1}]}}`,
		op:     "CREATE",
		wantPatch: []PatchOperation{
			{Op: "add", Path: "/spec/securityContext", Value: map[string]any{"runAsNonRoot": true}},
			{Op: "add", Path: "/metadata/annotations/tollgate.dev~1injected", Value: `{"securityContext":["pod"]}`},
		},
	}, {
		name:   "a pod's spec is not touched on UPDATE (it is immutable); labels are",
		object: `{apiVersion: v1, kind: Pod, metadata: {name: p, namespace: shop, labels: {team: payments, owner: alice}, annotations: {}}, spec: {containers: [{name: c, image: x:1}]}}`,
		op:     "UPDATE",
		ns:     teamNamespace,
		wantPatch: []PatchOperation{
			{Op: "add", Path: "/metadata/labels/cost-center", Value: "CC-1234"},
			{Op: "add", Path: "/metadata/annotations/tollgate.dev~1injected", Value: `{"labels":["cost-center"]}`},
		},
	}, {
		name:   "kubectl debug: only the ephemeral containers are defaulted",
		object: `{apiVersion: v1, kind: Pod, metadata: {name: p, namespace: shop, annotations: {}}, spec: {containers: [{name: c, image: x:1}], ephemeralContainers: [{name: debugger, image: busybox:1.36}]}}`,
		op:     "UPDATE",
		sub:    "ephemeralcontainers",
		ns:     teamNamespace,
		wantPatch: []PatchOperation{
			{Op: "add", Path: "/spec/ephemeralContainers/0/securityContext", Value: map[string]any{"allowPrivilegeEscalation": false}},
			{Op: "add", Path: "/spec/ephemeralContainers/0/securityContext/capabilities", Value: map[string]any{"drop": []any{"ALL"}}},
			{Op: "add", Path: "/metadata/annotations/tollgate.dev~1injected", Value: `{"securityContext":["ephemeralContainers/debugger"]}`},
		},
	}, {
		name:   "objects being deleted are left alone",
		object: `{apiVersion: apps/v1, kind: Deployment, metadata: {name: d, namespace: shop, deletionTimestamp: "2026-01-01T00:00:00Z", finalizers: [x]}, spec: {template: {spec: {containers: [{name: c, image: x:1}]}}}}`,
		op:     "UPDATE",
		ns:     teamNamespace,
	}, {
		name: "a namespace override turns the security context off",
		cfg: `mutations:
  resources: {enabled: false}
  securityContext:
    namespaces: [{namespaces: ["legacy-*"], enabled: false}]`,
		object: `{apiVersion: v1, kind: Pod, metadata: {name: p, namespace: legacy-batch}, spec: {containers: [{name: c, image: x:1}]}}`,
		op:     "CREATE",
	}, {
		name:   "CronJobs get labels on the job template and the pod template",
		cfg:    "mutations: {resources: {enabled: false}, securityContext: {enabled: false}}",
		object: `{apiVersion: batch/v1, kind: CronJob, metadata: {name: c, namespace: shop, labels: {team: payments, owner: alice}, annotations: {}}, spec: {schedule: "@daily", jobTemplate: {metadata: {labels: {team: payments, owner: alice}}, spec: {template: {metadata: {labels: {team: payments, owner: alice}}, spec: {containers: [{name: c, image: x:1}]}}}}}}`,
		op:     "CREATE",
		ns:     teamNamespace,
		wantPatch: []PatchOperation{
			{Op: "add", Path: "/metadata/labels/cost-center", Value: "CC-1234"},
			{Op: "add", Path: "/spec/jobTemplate/metadata/labels/cost-center", Value: "CC-1234"},
			{Op: "add", Path: "/spec/jobTemplate/spec/template/metadata/labels/cost-center", Value: "CC-1234"},
			{Op: "add", Path: "/metadata/annotations/tollgate.dev~1injected", Value: `{"labels":["cost-center"]}`},
		},
	}, {
		name:   "objects that are not workloads are not mutated",
		object: `{apiVersion: v1, kind: ConfigMap, metadata: {name: c, namespace: shop}}`,
		op:     "CREATE",
		ns:     teamNamespace,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := mutationEngine(t, tc.cfg)
			obj := yamlObject(t, tc.object)
			in := ObjectInput(SourceAdmission, obj, tc.ns)
			in.Operation, in.SubResource = tc.op, tc.sub
			m, err := e.Mutate(in)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.wantPatch
			if want == nil {
				want = []PatchOperation{}
			}
			if diff := cmp.Diff(want, m.Patch); diff != "" {
				t.Fatalf("patch (-want +got):\n%s", diff)
			}
			if len(m.Patch) > 0 {
				applyPatch(t, obj, m) // the patch applies cleanly
			}
		})
	}
}

// Fields of the wrong JSON type (an array where an object belongs) are
// not the mutation's to fix: it leaves them, never panics, and what it
// patches still applies; validation and the API server judge the rest.
func TestMutateWrongTypesAreLeftAlone(t *testing.T) {
	e := mutationEngine(t, "")
	for _, object := range []string{
		`{apiVersion: v1, kind: Pod, metadata: {name: p, namespace: shop}, spec: {containers: [{name: c, image: x:1, securityContext: []}]}}`,
		`{apiVersion: v1, kind: Pod, metadata: {name: p, namespace: shop}, spec: {containers: [{name: c, image: x:1, securityContext: {capabilities: []}}]}}`,
		`{apiVersion: v1, kind: Pod, metadata: {name: p, namespace: shop}, spec: {securityContext: [], containers: [{name: c, image: x:1, resources: []}]}}`,
		`{apiVersion: v1, kind: Pod, metadata: {name: p, namespace: shop}, spec: {securityContext: {seccompProfile: [1]}, containers: [{name: c, image: x:1, resources: {requests: []}}]}}`,
		`{apiVersion: v1, kind: Pod, metadata: [], spec: {containers: [{name: c, image: x:1, securityContext: "x"}]}}`,
	} {
		obj := yamlObject(t, object)
		in := ObjectInput(SourceAdmission, obj, teamNamespace)
		in.Operation = "CREATE"
		m, err := e.Mutate(in)
		if err != nil {
			continue // a clear error is an answer too
		}
		if len(m.Patch) > 0 {
			applyPatch(t, obj, m)
		}
	}
}

func TestMutateBadQuantityIsAnError(t *testing.T) {
	e := mutationEngine(t, "")
	obj := yamlObject(t, `{apiVersion: v1, kind: Pod, metadata: {name: p, namespace: shop}, spec: {containers: [{name: c, image: x:1, resources: {limits: {memory: lots}}}]}}`)
	in := ObjectInput(SourceAdmission, obj, nil)
	in.Operation = "CREATE"
	_, err := e.Mutate(in)
	if err == nil || err.Error() != `spec.containers[0].resources.limits.memory: lots is not a quantity: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'` {
		t.Fatalf("error = %v", err)
	}
}

func TestMutationConfigErrors(t *testing.T) {
	for _, tc := range []struct{ cfg, want string }{
		{"mutations: {resources: {requests: {cpu: lots}}}", `mutations.resources.requests.cpu: "lots" is not a quantity`},
		{"mutations: {securityContext: {seccompProfile: Unconfined}}", "mutations.securityContext.seccompProfile: value must be one of '', 'RuntimeDefault'"},
		{"mutations: {securityContext: {namespaces: [{namespaces: ['[']}]}}", `mutations.securityContext.namespaces[0].namespaces[0]: "[" is not a glob: syntax error in pattern`},
		{"mutations: {labels: {}}", "mutations: additional properties 'labels' not allowed"},
		{"kind: TollgateConfig\nmetadata: {name: x}", "spec: required in a TollgateConfig object"},
	} {
		_, err := ParseConfig([]byte(tc.cfg))
		if err == nil || !containsLine(err.Error(), tc.want) {
			t.Errorf("%s: error = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	// The cluster object form reads the same as the plain file.
	cfg, err := ParseConfig([]byte("apiVersion: tollgate.dev/v1alpha1\nkind: TollgateConfig\nmetadata: {name: tollgate}\nspec:\n  exceptions: {namespaces: [platform-exceptions]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"platform-exceptions"}, cfg.Exceptions.Namespaces); diff != "" {
		t.Error(diff)
	}
}

func containsLine(s, line string) bool {
	for _, l := range splitLines(s) {
		if l == line {
			return true
		}
	}
	return false
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
