package finops

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/manifest"
)

// object decodes one manifest the way the CLI does (numbers as json.Number).
func object(t *testing.T, text string) map[string]any {
	t.Helper()
	docs, err := manifest.Read("test.yaml", strings.NewReader(text), manifest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 1 {
		t.Fatalf("%d documents, want 1", len(docs))
	}
	return docs[0].Object
}

func estimator(t *testing.T, o EstimateOptions) *Estimator {
	t.Helper()
	e, err := NewEstimator(o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// deployment is a Deployment whose one container requests cpu and memory.
func deployment(replicas, cpu, memory string) string {
	r := ""
	if replicas != "" {
		r = "  replicas: " + replicas + "\n"
	}
	return `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
` + r + `  template:
    spec:
      containers:
      - name: app
        resources: {requests: {cpu: "` + cpu + `", memory: "` + memory + `"}}
`
}

// The expected figures are worked out by hand with OpenCost's default
// prices: CPU 0.031611 per core-hour, RAM 0.004237 per GiB-hour, GPU 0.95
// per GPU-hour, storage 0.00005479452 per GiB-hour (0.04 per GiB-month),
// spot CPU 0.006655, spot RAM 0.000892; a month is 730 hours.
func TestEstimate(t *testing.T) {
	tests := []struct {
		name  string
		nodes int
		doc   string
		want  WorkloadEstimate
	}{
		{
			// 2 × 0.5 core × 0.031611 × 730 = 23.07603
			// 2 × 1 GiB × 0.004237 × 730 = 6.18602
			// total 2 × (0.5 × 0.031611 + 1 × 0.004237) × 730 = 29.26205
			name: "deployment",
			doc:  deployment("2", "500m", "1Gi"),
			want: WorkloadEstimate{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "web",
				Replicas: 2, CPU: 1, Memory: 2 << 30,
				Monthly: Spend{CPU: 23.07603, RAM: 6.18602, Total: 29.26205}},
		},
		{
			// 1 × (0.25 × 0.031611 + 0.5 × 0.004237) × 730 = 5.7690075 + 1.546505 = 7.3155125
			name: "replicas not set: one, with a note",
			doc:  deployment("", "250m", "512Mi"),
			want: WorkloadEstimate{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "web",
				Replicas: 1, CPU: 0.25, Memory: 512 << 20,
				Monthly: Spend{CPU: 5.7690075, RAM: 1.546505, Total: 7.3155125},
				Notes:   []string{"spec.replicas is not set: 1 replica assumed (an autoscaler may run more)"}},
		},
		{
			name: "zero replicas cost nothing",
			doc:  deployment("0", "4", "8Gi"),
			want: WorkloadEstimate{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "web"},
		},
		{
			// per pod: 1 core, 2 GiB, 10 GiB + 5 GiB of claim templates
			// cpu 3 × 1 × 0.031611 × 730 = 69.22809
			// ram 3 × 2 × 0.004237 × 730 = 18.55806
			// storage 3 × 15 GiB × 0.00005479452 × 730 = 45 × 0.0399999996 = 1.799999982
			// total 89.586149982
			name: "statefulset with claim templates",
			doc: `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: data}
spec:
  replicas: 3
  template:
    spec:
      containers:
      - name: postgres
        resources: {requests: {cpu: 1, memory: 2Gi}}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {resources: {requests: {storage: 10Gi}}}
  - metadata: {name: wal}
    spec: {resources: {requests: {storage: 5Gi}}}
`,
			want: WorkloadEstimate{APIVersion: "apps/v1", Kind: "StatefulSet", Namespace: "data", Name: "db",
				Replicas: 3, CPU: 3, Memory: 6 << 30, Storage: 45 << 30,
				Monthly: Spend{CPU: 69.22809, RAM: 18.55806, Storage: 1.799999982, Total: 89.586149982}},
		},
		{
			// 5 nodes × (0.1 × 0.031611 + 0.125 × 0.004237) × 730
			// cpu 5 × 0.0031611 × 730 = 11.538015
			// ram 5 × 0.000529625 × 730 = 1.93313125
			// total 13.47114625
			name:  "daemonset on 5 nodes",
			nodes: 5,
			doc: `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: kube-system}
spec:
  template:
    spec:
      containers:
      - name: agent
        resources: {requests: {cpu: 100m, memory: 128Mi}}
`,
			want: WorkloadEstimate{APIVersion: "apps/v1", Kind: "DaemonSet", Namespace: "kube-system", Name: "agent",
				Replicas: 5, CPU: 0.5, Memory: 5 * 128 << 20,
				Monthly: Spend{CPU: 11.538015, RAM: 1.93313125, Total: 13.47114625},
				Notes:   []string{"a DaemonSet runs one pod per node: charged for 5 nodes"}},
		},
		{
			// parallelism 4 but only 2 completions: 2 pods at once
			// 2 × 1 core × 0.031611 × 730 = 46.15206
			name: "job: parallelism within completions",
			doc: `apiVersion: batch/v1
kind: Job
metadata: {name: migrate, namespace: shop}
spec:
  parallelism: 4
  completions: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: migrate
        resources: {requests: {cpu: "1"}, limits: {memory: 256Mi}}
`,
			// memory: the limit stands in for the request:
			// 2 × 0.25 GiB × 0.004237 × 730 = 1.546505
			want: WorkloadEstimate{APIVersion: "batch/v1", Kind: "Job", Namespace: "shop", Name: "migrate",
				Replicas: 2, CPU: 2, Memory: 512 << 20,
				Monthly: Spend{CPU: 46.15206, RAM: 1.546505, Total: 47.698565},
				Notes:   []string{"the run time of a Job is unknown: charged as 2 pods running all month"}},
		},
		{
			// 1 GPU × 0.95 × 730 = 693.5, plus 2 × 0.031611 × 730 = 46.15206
			// and 4 × 0.004237 × 730 = 12.37204; total 752.0241
			name: "cronjob with a GPU",
			doc: `apiVersion: batch/v1
kind: CronJob
metadata: {name: train, namespace: ml}
spec:
  schedule: "0 2 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - name: train
            resources:
              requests: {cpu: 2, memory: 4Gi}
              limits: {nvidia.com/gpu: 1}
`,
			want: WorkloadEstimate{APIVersion: "batch/v1", Kind: "CronJob", Namespace: "ml", Name: "train",
				Replicas: 1, CPU: 2, Memory: 4 << 30, GPU: 1,
				Monthly: Spend{CPU: 46.15206, RAM: 12.37204, GPU: 693.5, Total: 752.0241},
				Notes:   []string{"the run time of each run of a CronJob is unknown: charged as 1 pod running all month"}},
		},
		{
			name: "suspended cronjob",
			doc: `apiVersion: batch/v1
kind: CronJob
metadata: {name: train, namespace: ml}
spec:
  suspend: true
  jobTemplate: {spec: {template: {spec: {containers: [{name: c, resources: {requests: {cpu: 8}}}]}}}}
`,
			want: WorkloadEstimate{APIVersion: "batch/v1", Kind: "CronJob", Namespace: "ml", Name: "train",
				Notes: []string{"suspended: not charged"}},
		},
		{
			// the init container's 2 cores outweigh the app's 1 core:
			// 2 × 0.031611 × 730 = 46.15206
			name: "pod: an init container's peak",
			doc: `apiVersion: v1
kind: Pod
metadata: {name: p, namespace: shop}
spec:
  initContainers:
  - name: warm
    resources: {requests: {cpu: 2, memory: 1Gi}}
  containers:
  - name: app
    resources: {requests: {cpu: 1, memory: 1Gi}}
`,
			// ram 1 × 0.004237 × 730 = 3.09301
			want: WorkloadEstimate{APIVersion: "v1", Kind: "Pod", Namespace: "shop", Name: "p",
				Replicas: 1, CPU: 2, Memory: 1 << 30,
				Monthly: Spend{CPU: 46.15206, RAM: 3.09301, Total: 49.24507}},
		},
		{
			// spot: 2 × 2 cores × 0.006655 × 730 = 19.4326
			//       2 × 1 GiB × 0.000892 × 730 = 1.30232
			name: "spot by nodeSelector",
			doc: `apiVersion: apps/v1
kind: Deployment
metadata: {name: batch, namespace: shop}
spec:
  replicas: 2
  template:
    spec:
      nodeSelector: {karpenter.sh/capacity-type: spot}
      containers:
      - name: worker
        resources: {requests: {cpu: 2, memory: 1Gi}}
`,
			want: WorkloadEstimate{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "batch",
				Replicas: 2, CPU: 4, Memory: 2 << 30, Spot: true,
				Monthly: Spend{CPU: 19.4326, RAM: 1.30232, Total: 20.73492}},
		},
		{
			// 100 GiB × 0.00005479452 × 730 = 3.99999996
			name: "claim",
			doc: `apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: uploads, namespace: shop}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 100Gi}}
`,
			want: WorkloadEstimate{APIVersion: "v1", Kind: "PersistentVolumeClaim", Namespace: "shop", Name: "uploads",
				Storage: 100 << 30, Monthly: Spend{Storage: 3.99999996, Total: 3.99999996}},
		},
		{
			// 2 pods × 1 GiB ephemeral claim × 0.00005479452 × 730 = 0.0799999992
			name: "generic ephemeral volumes, and containers without requests",
			doc: `apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: cache, namespace: shop}
spec:
  replicas: 2
  template:
    spec:
      containers:
      - name: redis
      - name: exporter
        resources: {requests: {memory: 0}}
      volumes:
      - name: scratch
        ephemeral:
          volumeClaimTemplate:
            spec: {resources: {requests: {storage: 1Gi}}}
`,
			want: WorkloadEstimate{APIVersion: "apps/v1", Kind: "ReplicaSet", Namespace: "shop", Name: "cache",
				Replicas: 2, Storage: 2 << 30,
				Monthly: Spend{Storage: 0.0799999992, Total: 0.0799999992},
				Notes: []string{
					"container redis has no cpu request: not charged",
					"container redis has no memory request: not charged",
					"container exporter has no cpu request: not charged",
				}},
		},
		{
			// pod-level requests cover the containers: no notes
			// 1 × 0.031611 × 730 = 23.07603; 2 × 0.004237 × 730 = 6.18602
			name: "pod-level requests",
			doc: `apiVersion: v1
kind: ReplicationController
metadata: {name: legacy}
spec:
  replicas: 1
  template:
    spec:
      resources: {requests: {cpu: 1, memory: 2Gi}}
      containers: [{name: a}, {name: b}]
`,
			want: WorkloadEstimate{APIVersion: "v1", Kind: "ReplicationController", Name: "legacy",
				Replicas: 1, CPU: 1, Memory: 2 << 30,
				Monthly: Spend{CPU: 23.07603, RAM: 6.18602, Total: 29.26205}},
		},
		{
			name: "a pod a ReplicaSet owns is priced with its owner",
			doc: `apiVersion: v1
kind: Pod
metadata:
  name: web-5d8f-x
  namespace: shop
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-5d8f, uid: u, controller: true}]
spec: {containers: [{name: app, resources: {requests: {cpu: 1}}}]}
`,
			want: WorkloadEstimate{APIVersion: "v1", Kind: "Pod", Namespace: "shop", Name: "web-5d8f-x",
				Notes: []string{"owned by ReplicaSet/web-5d8f: its owner's estimate covers it"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := estimator(t, EstimateOptions{Nodes: tt.nodes})
			got, ok, err := e.Estimate(object(t, tt.doc))
			if err != nil || !ok {
				t.Fatalf("Estimate: ok %v, %v", ok, err)
			}
			if diff := cmp.Diff(tt.want, got, approx); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// The estimate of a pod's resources agrees with policies.PodRequests, the
// figure the resource caps judge, including sidecars.
func TestEstimateAgreesWithPodRequests(t *testing.T) {
	obj := object(t, `apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  initContainers:
  - {name: mesh, restartPolicy: Always, resources: {requests: {cpu: 250m, memory: 64Mi}}}
  - {name: migrate, resources: {requests: {cpu: 3, memory: 128Mi}}}
  containers:
  - {name: app, resources: {requests: {cpu: 1, memory: 1Gi}}}
`)
	got, _, err := estimator(t, EstimateOptions{}).Estimate(obj)
	if err != nil {
		t.Fatal(err)
	}
	reqs := policies.PodRequests(obj["spec"].(map[string]any))
	// cpu: max(1 + 0.25, 3 + 0.25) = 3.25; memory: 1Gi + 64Mi
	if got.CPU != reqs["cpu"] || got.CPU != 3.25 || got.Memory != reqs["memory"] || got.Memory != 1<<30+64<<20 {
		t.Errorf("cpu %v memory %v, PodRequests %v", got.CPU, got.Memory, reqs)
	}
}

func TestEstimateNotPriced(t *testing.T) {
	e := estimator(t, EstimateOptions{})
	for _, doc := range []string{
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
		"apiVersion: v1\nkind: Service\nmetadata: {name: s}\n",
		"apiVersion: example.com/v1\nkind: Deployment\nmetadata: {name: not-apps}\n",
		"apiVersion: v1\nkind: PodTemplate\nmetadata: {name: t}\n",
	} {
		est, ok, err := e.Estimate(object(t, doc))
		if ok || err != nil || est.Kind != "" {
			t.Errorf("%q: ok %v err %v est %+v, want not priced", doc, ok, err, est)
		}
	}
}

// Input the API server would reject is an error naming the field, never a
// silent zero, a panic or an infinite cost.
func TestEstimateErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		path string
		msg  string
	}{
		{"negative replicas", deployment("-3", "1", "1Gi"), "spec.replicas", "-3 must not be negative"},
		{"replicas as a string", deployment(`"3"`, "1", "1Gi"), "spec.replicas", `is the string "3", want an integer`},
		{"fractional replicas", deployment("2.5", "1", "1Gi"), "spec.replicas", "2.5 is not an integer"},
		{"replicas beyond int32, as an exponent", deployment("1e10", "1", "1Gi"), "spec.replicas", "10000000000 is more than the API accepts"},
		{"replicas beyond int32, as an integer", deployment("99999999999", "1", "1Gi"), "spec.replicas", "99999999999 is more than the API accepts (at most 2147483647)"},
		{"absurd cpu", deployment("1", "1e30", "1Gi"), "spec.template.spec.containers[0].resources.requests.cpu",
			"1e30 cores is more than Kubernetes can schedule"},
		{"absurd memory", deployment("1", "1", "100Ei"), "spec.template.spec.containers[0].resources.requests.memory",
			"100Ei is more than Kubernetes can schedule"},
		{"non-numeric cpu", deployment("1", "two", "1Gi"), "spec.template.spec.containers[0].resources.requests.cpu",
			`"two" is not a quantity`},
		{"negative memory", deployment("1", "1", "-1Gi"), "spec.template.spec.containers[0].resources.requests.memory",
			"-1Gi must not be negative"},
		{"long quantity", deployment("1", "1"+strings.Repeat("0", 70), "1Gi"), "spec.template.spec.containers[0].resources.requests.cpu",
			"is longer than 64 characters"},
		{"quantity of the wrong type", `apiVersion: v1
kind: Pod
metadata: {name: p}
spec: {containers: [{name: a, resources: {limits: {nvidia.com/gpu: [1]}}}]}
`, `spec.containers[0].resources.limits["nvidia.com/gpu"]`, "is a list, want a quantity"},
		{"no template", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {replicas: 1}\n",
			"spec.template", "missing: a Deployment needs a pod template"},
		{"no pod spec", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {template: {metadata: {}}}\n",
			"spec.template.spec", "missing: a pod needs a spec"},
		{"spec not a mapping", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: web\n",
			"spec", `is the string "web", want a mapping`},
		{"no containers", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {nodeName: n}\n",
			"spec.containers", "missing: a pod needs at least one container"},
		{"containers not a list", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: {name: a}}\n",
			"spec.containers", "is a mapping, want a list of containers"},
		{"container not a mapping", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [app]}\n",
			"spec.containers[0]", `is the string "app", want a container`},
		{"claim without storage", "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: c}\nspec: {accessModes: [ReadWriteOnce]}\n",
			"spec.resources.requests.storage", "missing; a claim must request its size"},
		{"claim template with a bad size", `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: s}
spec:
  template: {spec: {containers: [{name: a}]}}
  volumeClaimTemplates: [{spec: {resources: {requests: {storage: big}}}}]
`, "spec.volumeClaimTemplates[0].spec.resources.requests.storage", `"big" is not a quantity`},
		{"parallelism negative", `apiVersion: batch/v1
kind: Job
metadata: {name: j}
spec: {parallelism: -1, template: {spec: {containers: [{name: a}]}}}
`, "spec.parallelism", "-1 must not be negative"},
		{"suspend not a boolean", `apiVersion: batch/v1
kind: CronJob
metadata: {name: c}
spec: {suspend: "yes", jobTemplate: {spec: {template: {spec: {containers: [{name: a}]}}}}}
`, "spec.suspend", "want true or false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ok, err := estimator(t, EstimateOptions{}).Estimate(object(t, tt.doc))
			var fe *FieldError
			if !ok || !errors.As(err, &fe) {
				t.Fatalf("ok %v, error %v, want a *FieldError", ok, err)
			}
			if got := policies.FormatPath(fe.Path); got != tt.path || !strings.Contains(fe.Msg, tt.msg) {
				t.Errorf("error at %s: %s\nwant at %s: …%s…", got, fe.Msg, tt.path, tt.msg)
			}
		})
	}
}

// Prices large enough to overflow a float are an error, not +Inf.
func TestEstimateOverflow(t *testing.T) {
	p := DefaultPrices()
	p.Sheet.CPU = 1e300
	e := estimator(t, EstimateOptions{Prices: p})
	_, _, err := e.Estimate(object(t, deployment("2000000000", "9000000000000", "1Gi")))
	if err == nil || !strings.Contains(err.Error(), "overflows") {
		t.Errorf("error %v, want an overflow", err)
	}
}

func TestEstimateChange(t *testing.T) {
	e := estimator(t, EstimateOptions{})
	two := object(t, deployment("2", "500m", "1Gi"))
	three := object(t, deployment("3", "500m", "1Gi"))
	// one more replica: (0.5 × 0.031611 + 1 × 0.004237) × 730 = 14.631025
	perPod := Spend{CPU: 11.538015, RAM: 3.09301, Total: 14.631025}
	tests := []struct {
		name     string
		old, new map[string]any
		want     Spend
	}{
		{"scale up", two, three, perPod},
		{"scale down", three, two, perPod.Scale(-1)},
		{"create", nil, two, perPod.Scale(2)},
		{"delete", three, nil, perPod.Scale(-3)},
		{"no change", two, two, Spend{}},
		{"not priced", object(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"), nil, Spend{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := e.EstimateChange(tt.old, tt.new)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, c.Monthly, approx); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	_, err := e.EstimateChange(two, object(t, deployment("-1", "1", "1Gi")))
	var fe *FieldError
	if err == nil || !strings.HasPrefix(err.Error(), "new object: spec.replicas:") || !errors.As(err, &fe) {
		t.Errorf("error %v, want the new object's field", err)
	}
}

func TestEstimatorOptions(t *testing.T) {
	if _, err := NewEstimator(EstimateOptions{Nodes: -1}); err == nil {
		t.Error("negative Nodes accepted")
	}
	bad := DefaultPrices()
	bad.Currency = "usd"
	if _, err := NewEstimator(EstimateOptions{Prices: bad}); err == nil {
		t.Error("invalid prices accepted")
	}
}

// BenchmarkEstimateChange is the cost budget-aware admission adds to a
// Deployment update.
func BenchmarkEstimateChange(b *testing.B) {
	e, err := NewEstimator(EstimateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	docs, err := manifest.Read("b.yaml", strings.NewReader(deployment("2", "500m", "1Gi")+"---\n"+deployment("3", "1", "2Gi")), manifest.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.EstimateChange(docs[0].Object, docs[1].Object); err != nil {
			b.Fatal(err)
		}
	}
}
