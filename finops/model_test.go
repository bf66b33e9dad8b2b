package finops

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tollgate-dev/tollgate/policies"
)

// approx compares costs to hand-computed values: float sums differ from
// the arithmetic in the comments only in the last digits.
var approx = cmpopts.EquateApprox(1e-9, 1e-12)

// Fixtures are built with functional options, one per concern.

type podOption func(*corev1.Pod)

func pod(namespace, name string, opts ...podOption) corev1.Pod {
	p := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, o := range opts {
		o(&p)
	}
	return p
}

func onNode(n string) podOption { return func(p *corev1.Pod) { p.Spec.NodeName = n } }

func phase(ph corev1.PodPhase) podOption { return func(p *corev1.Pod) { p.Status.Phase = ph } }

func podLabels(kv ...string) podOption {
	return func(p *corev1.Pod) { p.Labels = labels(kv...) }
}

func ownedBy(kind, name string) podOption {
	return func(p *corev1.Pod) {
		p.OwnerReferences = append(p.OwnerReferences, metav1.OwnerReference{Kind: kind, Name: name, Controller: ptr(true)})
	}
}

// container adds a container requesting cpu and memory ("" for none).
func container(name, cpu, memory string) podOption {
	return func(p *corev1.Pod) {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: name, Resources: resources(cpu, memory)})
	}
}

func withLimits(cpu, memory string) podOption {
	return func(p *corev1.Pod) {
		c := &p.Spec.Containers[len(p.Spec.Containers)-1]
		c.Resources.Limits = resources(cpu, memory).Requests
	}
}

func mounts(claim string) podOption {
	return func(p *corev1.Pod) {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: claim, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}})
	}
}

func resources(cpu, memory string) corev1.ResourceRequirements {
	r := corev1.ResourceRequirements{Requests: corev1.ResourceList{}}
	if cpu != "" {
		r.Requests[corev1.ResourceCPU] = resource.MustParse(cpu)
	}
	if memory != "" {
		r.Requests[corev1.ResourceMemory] = resource.MustParse(memory)
	}
	return r
}

func node(name string, kv ...string) corev1.Node {
	return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels(kv...)}}
}

func namespace(name string, kv ...string) corev1.Namespace {
	return corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels(kv...)}}
}

func claim(ns, name string, ph corev1.PersistentVolumeClaimPhase, request, capacity string, kv ...string) corev1.PersistentVolumeClaim {
	c := corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels(kv...)}}
	c.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(request)}
	c.Status.Phase = ph
	if capacity != "" {
		c.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(capacity)}
	}
	return c
}

func labels(kv ...string) map[string]string {
	if len(kv) == 0 {
		return nil
	}
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func ptr[T any](v T) *T { return &v }

func model(t testing.TB, o ModelOptions) *Model {
	t.Helper()
	m, err := NewModel(o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The hourly figures below are worked out by hand. Prices: OpenCost's
// defaults (CPU 0.031611, RAM 0.004237 per GiB, storage 0.00005479452 per
// GiB; spot CPU 0.006655, spot RAM 0.000892), and nodes labelled
// instance-type m5.xlarge charge CPU 0.05.
//
//	A shop/web-5d8f-a  on n1 (m5.xlarge): 1 core × 0.05 + 2 GiB × 0.004237      = 0.058474
//	B shop/web-5d8f-b  on n2 (spot, observed CPU 0.01): 1 × 0.01 + 2 × 0.000892 = 0.011784
//	C shop/queued      Pending: not charged
//	D data/etl-…-q7x   on n3 (not listed: defaults): usage 2 cores beats the
//	                   500m request: 2 × 0.031611 + 1 GiB × 0.004237         = 0.067459
//	E data/bare        on n1: limit 250m stands in: 0.25 × 0.05 = 0.0125, and
//	                   claim vol, bound at 10Gi (5Gi asked): 10 × 0.00005479452
//	                   = 0.0005479452; together                               = 0.0130479452
//	F data/orphan      claim no pod mounts, 100Gi: 100 × 0.00005479452        = 0.005479452
//	                   (labelled team storage, charged to its namespace's data)
//	  data/waiting     Pending claim: not charged
func TestTally(t *testing.T) {
	prices := DefaultPrices()
	s := prices.Sheet
	s.CPU = 0.05
	prices.Overrides = []Override{{NodeSelector: map[string]string{"node.kubernetes.io/instance-type": "m5.xlarge"}, Sheet: s}}
	c := Cluster{
		Namespaces: []corev1.Namespace{
			namespace("shop", "team", "web", "cost-center", "cc-1"),
			namespace("data", "team", "data", "env", "prod"),
			namespace("idle"),
		},
		Nodes: []corev1.Node{
			node("n1", "node.kubernetes.io/instance-type", "m5.xlarge"),
			node("n2", "karpenter.sh/capacity-type", "spot"),
		},
		Pods: []corev1.Pod{
			pod("shop", "web-5d8f-a", onNode("n1"), ownedBy("ReplicaSet", "web-5d8f"),
				podLabels("pod-template-hash", "5d8f", "team", "web", "env", "staging", "cost-center", "cc-other"), container("app", "1", "2Gi")),
			pod("shop", "web-5d8f-b", onNode("n2"), ownedBy("ReplicaSet", "web-5d8f"),
				podLabels("pod-template-hash", "5d8f"), container("app", "1", "2Gi")),
			pod("shop", "queued", phase(corev1.PodPending), container("app", "8", "8Gi")),
			pod("data", "etl-28000000-q7x", onNode("n3"), ownedBy("Job", "etl-28000000"), container("etl", "500m", "1Gi")),
			pod("data", "bare", onNode("n1"), container("sh", "", ""), withLimits("250m", ""), mounts("vol")),
		},
		PersistentVolumeClaims: []corev1.PersistentVolumeClaim{
			claim("data", "vol", corev1.ClaimBound, "5Gi", "10Gi"),
			claim("data", "orphan", corev1.ClaimBound, "100Gi", "", "team", "storage"),
			claim("data", "waiting", corev1.ClaimPending, "1Ti", ""),
		},
		Usage: map[ContainerKey]Usage{
			{"data", "etl-28000000-q7x", "etl"}: {CPU: 2, Memory: 512 << 20},
			{"shop", "web-5d8f-a", "app"}:       {CPU: 0.1, Memory: 1 << 30},
		},
		NodePrices: map[string]Rates{"n2": {CPU: 0.01}},
	}
	got := model(t, ModelOptions{Prices: prices, Labels: []string{"env"}, TopWorkloads: 2}).Tally(c)

	a := spend(0.05, 0.008474, 0, 0)
	b := spend(0.01, 0.001784, 0, 0)
	d := spend(0.063222, 0.004237, 0, 0)
	e := spend(0.0125, 0, 0, 0.0005479452)
	f := spend(0, 0, 0, 0.005479452)
	group := func(name string, pods, volumes int, parts ...Spend) Group {
		var h Spend
		for _, p := range parts {
			h = h.Add(p)
		}
		return Group{Name: name, Pods: pods, Volumes: volumes, Hourly: h, Monthly: h.Scale(HoursPerMonth)}
	}
	all := group("", 4, 2, a, b, d, e, f)
	want := &Tally{
		Currency: "USD", Pods: 5, Charged: 4, Volumes: 2,
		Hourly: all.Hourly, Monthly: all.Monthly,
		Namespaces: []Group{group("data", 2, 2, d, e, f), group("idle", 0, 0), group("shop", 2, 0, a, b)},
		// The orphan claim's own team "storage" and pod A's own cost-center
		// "cc-other" lose to their namespace's: spend is charged to the
		// namespace's ownership labels of record.
		Teams: []Group{group("data", 2, 2, d, e, f), group("web", 2, 0, a, b)},
		CostCenters: []Group{
			group("", 2, 2, d, e, f), group("cc-1", 2, 0, a, b),
		},
		Labels: map[string][]Group{"env": {
			group("", 1, 0, b), group("prod", 2, 2, d, e, f), group("staging", 1, 0, a),
		}},
		Top: []Workload{
			{Kind: "Deployment", Namespace: "shop", Name: "web", Pods: 2, Hourly: a.Add(b), Monthly: a.Add(b).Scale(HoursPerMonth)},
			{Kind: "CronJob", Namespace: "data", Name: "etl", Pods: 1, Hourly: d, Monthly: d.Scale(HoursPerMonth)},
		},
	}
	if diff := cmp.Diff(want, got, approx); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// 0.058474 + 0.011784 = 0.070258 per hour; × 730 = 51.28834 per month
	if g, ok := got.Namespace("shop"); !ok || !cmp.Equal(g.Monthly.Total, 51.28834, approx) {
		t.Errorf("Namespace(shop) = %+v, %v", g, ok)
	}
	if _, ok := got.Team("nobody"); ok {
		t.Error("Team(nobody) found")
	}
	if g, ok := got.CostCenter("cc-1"); !ok || g.Pods != 2 {
		t.Errorf("CostCenter(cc-1) = %+v, %v", g, ok)
	}
}

// Given the Jobs, a Job's CronJob is read from its owner, not its name.
func TestTallyJobOwners(t *testing.T) {
	job := func(name string, owner string) batchv1.Job {
		j := batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}}
		if owner != "" {
			j.OwnerReferences = []metav1.OwnerReference{{Kind: "CronJob", Name: owner, Controller: ptr(true)}}
		}
		return j
	}
	c := Cluster{
		Pods: []corev1.Pod{
			pod("ns", "a", ownedBy("Job", "report-manual"), container("c", "1", "")),
			pod("ns", "b", ownedBy("Job", "backup-29123456"), container("c", "2", "")),
			pod("ns", "c", ownedBy("ReplicaSet", "rs-without-hash"), container("c", "3", "")),
			pod("ns", "d", ownedBy("StatefulSet", "db"), container("c", "4", "")),
		},
		Jobs: []batchv1.Job{job("report-manual", "report"), job("backup-29123456", "")},
	}
	got := model(t, ModelOptions{TopWorkloads: 10}).Tally(c)
	var names []string
	for _, w := range got.Top {
		names = append(names, w.Kind+"/"+w.Name)
	}
	want := []string{"StatefulSet/db", "ReplicaSet/rs-without-hash", "Job/backup-29123456", "CronJob/report"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// Without the Jobs, the CronJob controller's naming rule applies.
	c.Jobs = nil
	got = model(t, ModelOptions{TopWorkloads: 10}).Tally(c)
	if w := got.Top[2]; w.Kind != "CronJob" || w.Name != "backup" {
		t.Errorf("without Jobs: %s/%s, want CronJob/backup", w.Kind, w.Name)
	}
	if w := got.Top[3]; w.Kind != "Job" || w.Name != "report-manual" {
		t.Errorf("without Jobs: %s/%s, want Job/report-manual", w.Kind, w.Name)
	}
}

// The top list keeps the N dearest, most expensive first, ties by name.
func TestTopWorkloads(t *testing.T) {
	var pods []corev1.Pod
	for i, cpu := range []string{"1", "5", "3", "5", "2", "4"} {
		pods = append(pods, pod("ns", fmt.Sprintf("p%d", i), container("c", cpu, "")))
	}
	got := model(t, ModelOptions{TopWorkloads: 3}).Tally(Cluster{Pods: pods})
	var names []string
	for _, w := range got.Top {
		names = append(names, w.Name)
	}
	if diff := cmp.Diff([]string{"p1", "p3", "p5"}, names); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := model(t, ModelOptions{}).Tally(Cluster{Pods: pods}); got.Top != nil {
		t.Errorf("TopWorkloads 0 listed %d workloads", len(got.Top))
	}
}

// Without usage, a pod is charged exactly what policies.PodRequests (the
// figure the caps judge) says, for the same spec as JSON.
func TestReservedAgreesWithPodRequests(t *testing.T) {
	specs := []string{
		`{"containers": [{"name": "a", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
			{"name": "b", "resources": {"requests": {"cpu": "1", "memory": "512Mi"}}}]}`,
		`{"containers": [{"name": "a", "resources": {"limits": {"cpu": "2", "memory": "3Gi", "nvidia.com/gpu": "1"}}}]}`,
		`{"containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}],
			"initContainers": [{"name": "i", "resources": {"requests": {"cpu": "3", "memory": "64Mi"}}}]}`,
		`{"containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}],
			"initContainers": [
				{"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
				{"name": "i", "resources": {"requests": {"cpu": "2.5", "memory": "10Mi"}}}]}`,
		`{"resources": {"requests": {"cpu": "4"}},
			"containers": [{"name": "a", "resources": {"requests": {"cpu": "1", "memory": "1Mi"}}}]}`,
	}
	m := model(t, ModelOptions{})
	for _, text := range specs {
		var spec corev1.PodSpec
		var raw map[string]any
		if err := json.Unmarshal([]byte(text), &spec); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(text), &raw); err != nil {
			t.Fatal(err)
		}
		want := policies.PodRequests(raw)
		got := m.reserved(&corev1.Pod{Spec: spec}, nil)
		if got.cpu != want["cpu"] || got.mem != want["memory"] || got.gpu != want["nvidia.com/gpu"] {
			t.Errorf("%s:\nreserved %+v, PodRequests %v", text, got, want)
		}
	}
}

// With usage, each container counts the larger of request and usage, and
// pod-level requests the larger of them and the pod's usage.
func TestReservedWithUsage(t *testing.T) {
	m := model(t, ModelOptions{})
	p := pod("ns", "p", container("a", "1", "1Gi"), container("b", "1", "1Gi"))
	usage := map[ContainerKey]Usage{
		{"ns", "p", "a"}: {CPU: 3, Memory: 512 << 20}, // cpu above request, memory below
		{"ns", "p", "x"}: {CPU: 100},                  // no such container
	}
	// cpu max(1, 3) + 1 = 4; memory 1Gi + 1Gi
	if got := m.reserved(&p, usage); got != (podUse{cpu: 4, mem: 2 << 30}) {
		t.Errorf("containers: %+v", got)
	}
	p.Spec.Resources = &corev1.ResourceRequirements{Requests: corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("8Gi")}}
	usage[ContainerKey{"ns", "p", "b"}] = Usage{CPU: 0.5}
	// pod-level: cpu max(2, 3 + 0.5) = 3.5; memory max(8Gi, 512Mi) = 8Gi
	if got := m.reserved(&p, usage); got != (podUse{cpu: 3.5, mem: 8 << 30}) {
		t.Errorf("pod-level: %+v", got)
	}
}

func TestModelOptionsValidate(t *testing.T) {
	for _, o := range []ModelOptions{
		{TopWorkloads: -1},
		{Labels: []string{""}},
		{Prices: &Prices{Currency: "US"}},
	} {
		if _, err := NewModel(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

// syntheticCluster is 100,000 running pods in 5,000 namespaces on 2,000
// nodes (a tenth of them spot, a tenth with an instance-type override),
// every tenth pod with a bound claim, plus 5,000 claims no pod mounts.
func syntheticCluster() Cluster {
	const (
		namespaces = 5000
		pods       = 100000
		nodes      = 2000
	)
	var c Cluster
	for i := range namespaces {
		c.Namespaces = append(c.Namespaces, namespace(fmt.Sprintf("ns-%d", i),
			"team", fmt.Sprintf("team-%d", i%200), "cost-center", fmt.Sprintf("cc-%d", i%50)))
		c.PersistentVolumeClaims = append(c.PersistentVolumeClaims,
			claim(fmt.Sprintf("ns-%d", i), "orphan", corev1.ClaimBound, "50Gi", "50Gi"))
	}
	for i := range nodes {
		switch i % 10 {
		case 0:
			c.Nodes = append(c.Nodes, node(fmt.Sprintf("node-%d", i), "karpenter.sh/capacity-type", "spot"))
		case 1:
			c.Nodes = append(c.Nodes, node(fmt.Sprintf("node-%d", i), "node.kubernetes.io/instance-type", "m5.xlarge"))
		default:
			c.Nodes = append(c.Nodes, node(fmt.Sprintf("node-%d", i)))
		}
	}
	app := resources("250m", "512Mi")
	sidecar := resources("50m", "64Mi")
	for i := range pods {
		ns := fmt.Sprintf("ns-%d", i%namespaces)
		deploy := fmt.Sprintf("app-%d", (i/namespaces)%4)
		p := corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: ns,
				Name:      fmt.Sprintf("%s-7f9c-%d", deploy, i),
				Labels:    map[string]string{"app": deploy, "pod-template-hash": "7f9c", "team": fmt.Sprintf("team-%d", i%200)},
				OwnerReferences: []metav1.OwnerReference{
					{Kind: "ReplicaSet", Name: deploy + "-7f9c", Controller: ptr(true)},
				},
			},
			Spec: corev1.PodSpec{
				NodeName:   fmt.Sprintf("node-%d", i%nodes),
				Containers: []corev1.Container{{Name: "app", Resources: app}, {Name: "proxy", Resources: sidecar}},
			},
			Status: corev1.PodStatus{Phase: corev1.PodRunning},
		}
		if i%10 == 0 {
			name := fmt.Sprintf("data-%d", i)
			p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: name}}}}
			c.PersistentVolumeClaims = append(c.PersistentVolumeClaims, claim(ns, name, corev1.ClaimBound, "10Gi", "10Gi"))
		}
		c.Pods = append(c.Pods, p)
	}
	return c
}

// BenchmarkTally tallies 100,000 pods in 5,000 namespaces, grouped by
// namespace, team, cost-center and one more label, with the top 20
// workloads. Target: under a second per tally on one core
// (go test -run '^$' -bench Tally -benchmem -cpu 1 ./finops).
func BenchmarkTally(b *testing.B) {
	c := syntheticCluster()
	prices := DefaultPrices()
	s := prices.Sheet
	s.CPU = 0.048
	prices.Overrides = []Override{{NodeSelector: map[string]string{"node.kubernetes.io/instance-type": "m5.xlarge"}, Sheet: s}}
	m := model(b, ModelOptions{Prices: prices, Labels: []string{"app"}, TopWorkloads: 20})
	b.ReportAllocs()
	b.ResetTimer()
	var out *Tally
	for b.Loop() {
		out = m.Tally(c)
	}
	if out.Charged != 100000 || len(out.Namespaces) != 5000 || len(out.Top) != 20 || out.Volumes != 15000 {
		b.Fatalf("charged %d, namespaces %d, top %d, volumes %d", out.Charged, len(out.Namespaces), len(out.Top), out.Volumes)
	}
}
