package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/tollgate-dev/tollgate/policies"
)

const deploymentsConfig = `
deployments:
  commitTimeAnnotations: [ci.example.com/commit-time]
profiles:
  default: golden
  changers: {users: [platform-admin]}
  definitions:
    golden: {description: the supported path}
    innovation: {description: on your own, policies: {"pss-*": warn}}
`

// workload is a compliant workload of a kind in shop with the image,
// replicas and annotations given (metadata and template annotations as
// JSON objects, "" for none).
func workload(kind, image string, replicas int, meta, tmplMeta string) string {
	if meta == "" {
		meta = "{}"
	}
	if tmplMeta == "" {
		tmplMeta = "{}"
	}
	pod := fmt.Sprintf(`{"metadata":{"labels":{"app":"web","team":"payments","owner":"alice","cost-center":"CC-1234"},"annotations":%s},
	 "spec":{"securityContext":{"runAsNonRoot":true,"seccompProfile":{"type":"RuntimeDefault"}},
	  "containers":[{"name":"c","image":%q,"securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}},
	   "resources":{"requests":{"cpu":"100m","memory":"128Mi"},"limits":{"memory":"256Mi"}}}]}}`, tmplMeta, image)
	head := fmt.Sprintf(`"metadata":{"name":"web","namespace":"shop","labels":{"team":"payments","owner":"alice","cost-center":"CC-1234"},"annotations":%s}`, meta)
	switch kind {
	case "CronJob":
		return fmt.Sprintf(`{"apiVersion":"batch/v1","kind":"CronJob",%s,"spec":{"schedule":"@hourly","jobTemplate":{"spec":{"template":%s}}}}`, head, pod)
	case "Pod":
		return fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod",%s,"spec":%s}`, head, strings.TrimSuffix(pod[strings.Index(pod, `"spec":`)+7:], "}"))
	}
	return fmt.Sprintf(`{"apiVersion":"apps/v1","kind":%q,%s,"spec":{"replicas":%d,"selector":{"matchLabels":{"app":"web"}},"template":%s}}`, kind, head, replicas, pod)
}

// admission is an AdmissionReview of a workload request.
type workloadReq struct {
	op, kind, ns, sub string
	obj, old          string
	dryRun            bool
}

func (a workloadReq) body(t *testing.T, uid string) []byte {
	t.Helper()
	group := map[string]string{"Deployment": "apps", "StatefulSet": "apps", "DaemonSet": "apps", "ReplicaSet": "apps", "CronJob": "batch", "Job": "batch"}[a.kind]
	ns := a.ns
	if ns == "" {
		ns = "shop"
	}
	req := map[string]any{
		"uid": uid, "kind": map[string]any{"group": group, "version": "v1", "kind": a.kind},
		"resource":  map[string]any{"group": group, "version": "v1", "resource": strings.ToLower(a.kind) + "s"},
		"namespace": ns, "name": "web", "operation": a.op, "subResource": a.sub, "dryRun": a.dryRun,
		"userInfo": map[string]any{"username": "ci-bot"},
	}
	if a.obj != "" {
		req["object"] = json.RawMessage(a.obj)
	}
	if a.old != "" {
		req["oldObject"] = json.RawMessage(a.old)
	}
	b, err := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDeployments: which admitted requests are deployments, what the
// decision log says of them, and how commit times are read, the bad and
// forged ones included.
func TestDeployments(t *testing.T) {
	cfg, err := policies.ParseConfig([]byte(deploymentsConfig))
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, nil, cfg)
	lab := teamNS("lab")
	lab["metadata"].(map[string]any)["labels"].(map[string]any)["team"] = "research"
	lab["metadata"].(map[string]any)["labels"].(map[string]any)["tollgate.dev/path"] = "innovation"
	f.reviewer.opts.Namespaces = fakeNamespaces{"shop": teamNS("shop"), "lab": lab}
	var serverLog bytes.Buffer
	f.reviewer.opts.Logger = slog.New(slog.NewJSONHandler(&serverLog, nil))

	// The fixture's clock is 2026-11-21 12:00 UTC.
	commit := func(t string) string { return fmt.Sprintf(`{"tollgate.dev/commit-time":%q}`, t) }
	v1 := workload("Deployment", "nginx:1.27", 2, commit("2026-11-21T11:00:00Z"), "")
	privileged := strings.Replace(v1, `"allowPrivilegeEscalation":false`, `"privileged":true`, 1)
	semantic := strings.NewReplacer(`"cpu":"100m"`, `"cpu":"0.1"`, `"annotations":{}}`, `"annotations":{},"creationTimestamp":null}`).Replace(v1)
	if semantic == v1 {
		t.Fatal("the semantic variant is the same text")
	}
	huge := strings.Repeat("9", 100_000)

	for _, tc := range []struct {
		name string
		req  workloadReq
		want *Deployment // nil: not a deployment
		warn string      // in the server's log
	}{
		{name: "create", req: workloadReq{op: "CREATE", kind: "Deployment", obj: v1},
			want: &Deployment{Team: "payments", Profile: "golden", Golden: true, CommitTime: ptime("2026-11-21T11:00:00Z"), CommitTimeAnnotation: "tollgate.dev/commit-time", LeadTimeSeconds: pf(3600)}},
		{name: "scale by spec.replicas", req: workloadReq{op: "UPDATE", kind: "Deployment", obj: workload("Deployment", "nginx:1.27", 5, commit("2026-11-21T11:00:00Z"), ""), old: v1}},
		{name: "no-op re-apply", req: workloadReq{op: "UPDATE", kind: "Deployment", obj: v1, old: v1}},
		{name: "same template, as the API server writes it", req: workloadReq{op: "UPDATE", kind: "Deployment", obj: strings.Replace(semantic, `"replicas":2`, `"replicas":3`, 1), old: v1}},
		{name: "new image, same commit time: no lead time", req: workloadReq{op: "UPDATE", kind: "Deployment", obj: workload("Deployment", "nginx:1.28", 2, commit("2026-11-21T11:00:00Z"), ""), old: v1},
			want: &Deployment{Team: "payments", Profile: "golden", Golden: true}},
		{name: "new image, new commit time", req: workloadReq{op: "UPDATE", kind: "Deployment", obj: workload("Deployment", "nginx:1.28", 2, commit("2026-11-21T11:30:00.5+01:00"), ""), old: v1},
			want: &Deployment{Team: "payments", Profile: "golden", Golden: true, CommitTime: ptime("2026-11-21T10:30:00.5Z"), CommitTimeAnnotation: "tollgate.dev/commit-time", LeadTimeSeconds: pf(5399.5)}},
		{name: "restart annotation on the template", req: workloadReq{op: "UPDATE", kind: "Deployment", obj: workload("Deployment", "nginx:1.27", 2, commit("2026-11-21T11:00:00Z"), `{"kubectl.kubernetes.io/restartedAt":"2026-11-21T11:59:00Z"}`), old: v1},
			want: &Deployment{Team: "payments", Profile: "golden", Golden: true}},
		{name: "commit time on the template under the config's key", req: workloadReq{op: "CREATE", kind: "StatefulSet", obj: workload("StatefulSet", "nginx:1.27", 1, "", `{"ci.example.com/commit-time":"2026-11-20T12:00:00Z"}`)},
			want: &Deployment{Team: "payments", Profile: "golden", Golden: true, CommitTime: ptime("2026-11-20T12:00:00Z"), CommitTimeAnnotation: "ci.example.com/commit-time", LeadTimeSeconds: pf(86400)}},
		{name: "cronjob", req: workloadReq{op: "CREATE", kind: "CronJob", obj: workload("CronJob", "nginx:1.27", 0, "", "")},
			want: &Deployment{Team: "payments", Profile: "golden", Golden: true}},
		{name: "innovation namespace", req: workloadReq{op: "CREATE", kind: "DaemonSet", ns: "lab", obj: strings.NewReplacer(`"namespace":"shop"`, `"namespace":"lab"`, `"payments"`, `"research"`).Replace(workload("DaemonSet", "nginx:1.27", 1, "", ""))},
			want: &Deployment{Team: "research", Profile: "innovation"}},
		{name: "malformed commit time", req: workloadReq{op: "CREATE", kind: "Deployment", obj: workload("Deployment", "nginx:1.27", 1, commit("yesterday"), "")},
			want: &Deployment{Team: "payments", Profile: "golden", Golden: true}, warn: "not an RFC 3339 time"},
		{name: "forged commit time in the future", req: workloadReq{op: "CREATE", kind: "Deployment", obj: workload("Deployment", "nginx:1.27", 1, commit("2030-01-01T00:00:00Z"), "")},
			want: &Deployment{Team: "payments", Profile: "golden", Golden: true}, warn: "in the future"},
		{name: "commit time from year one", req: workloadReq{op: "CREATE", kind: "Deployment", obj: workload("Deployment", "nginx:1.27", 1, commit("0001-01-01T00:00:00Z"), "")},
			want: &Deployment{Team: "payments", Profile: "golden", Golden: true}, warn: "older than the longest lead time believed"},
		{name: "huge commit time", req: workloadReq{op: "CREATE", kind: "Deployment", obj: workload("Deployment", "nginx:1.27", 1, commit(huge), "")},
			want: &Deployment{Team: "payments", Profile: "golden", Golden: true}, warn: strings.Repeat("9", maxLoggedValue) + "..."},
		{name: "bad first key, good second", req: workloadReq{op: "CREATE", kind: "Deployment", obj: workload("Deployment", "nginx:1.27", 1, `{"tollgate.dev/commit-time":"soon","ci.example.com/commit-time":"2026-11-21T11:59:00Z"}`, "")},
			want: &Deployment{Team: "payments", Profile: "golden", Golden: true, CommitTime: ptime("2026-11-21T11:59:00Z"), CommitTimeAnnotation: "ci.example.com/commit-time", LeadTimeSeconds: pf(60)}, warn: "not an RFC 3339 time"},
		{name: "dry run", req: workloadReq{op: "CREATE", kind: "Deployment", obj: v1, dryRun: true}},
		{name: "denied", req: workloadReq{op: "CREATE", kind: "Deployment", obj: privileged}},
		{name: "status subresource", req: workloadReq{op: "UPDATE", kind: "Deployment", sub: "status", obj: workload("Deployment", "nginx:1.28", 2, "", ""), old: v1}},
		{name: "bare pod", req: workloadReq{op: "CREATE", kind: "Pod", obj: workload("Pod", "nginx:1.27", 0, "", "")}},
		{name: "replicaset of a deployment", req: workloadReq{op: "CREATE", kind: "ReplicaSet", obj: strings.Replace(workload("ReplicaSet", "nginx:1.27", 1, "", ""), `"namespace":"shop",`,
			`"namespace":"shop","ownerReferences":[{"apiVersion":"apps/v1","kind":"Deployment","name":"web","uid":"u1","controller":true}],`, 1)}},
		{name: "delete", req: workloadReq{op: "DELETE", kind: "Deployment", old: v1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.log.Reset()
			serverLog.Reset()
			total := sumCounter(t, f)
			uid := "uid-" + strings.ReplaceAll(tc.name, " ", "-")
			_, resp := decodeResponse(t, post(f.validate, tc.req.body(t, uid), "application/json"))
			if tc.name == "denied" && resp.Allowed {
				t.Fatal("the privileged Deployment was admitted")
			}
			var got *Deployment
			for line := range strings.Lines(f.log.String()) {
				var e DecisionEntry
				if err := json.Unmarshal([]byte(line), &e); err != nil {
					t.Fatalf("decision log line %q: %v", line, err)
				}
				if e.UID == uid {
					got = e.Deployment
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("deployment in the decision log (-want +got):\n%s\nlog:\n%s", diff, f.log)
			}
			counted := sumCounter(t, f) - total
			switch {
			case tc.want == nil && counted != 0:
				t.Errorf("counted %v deployments, want none", counted)
			case tc.want != nil:
				if counted != 1 {
					t.Errorf("counted %v deployments, want 1", counted)
				}
				ns := tc.req.ns
				if ns == "" {
					ns = "shop"
				}
				if n := testutil.ToFloat64(f.metrics.deployments.WithLabelValues(ns, tc.want.Team, tc.want.Profile)); n < 1 {
					t.Errorf("no series {namespace=%s,team=%s,profile=%s}", ns, tc.want.Team, tc.want.Profile)
				}
			}
			if tc.warn != "" && (!strings.Contains(serverLog.String(), `"level":"WARN","msg":"commit time ignored"`) || !strings.Contains(serverLog.String(), tc.warn)) {
				t.Errorf("server log lacks the warning %q:\n%.2000s", tc.warn, serverLog.String())
			}
			if tc.warn != "" {
				t.Logf("server log: %s", serverLog.String())
			}
			if len(serverLog.String()) > 4096 {
				t.Errorf("server log holds %d bytes for one request: a bad value must be cut short", serverLog.Len())
			}
			if tc.warn == "" && strings.Contains(serverLog.String(), "commit time ignored") {
				t.Errorf("unexpected warning:\n%s", serverLog.String())
			}
		})
	}

	// The lead time histogram holds what the decision log says: 3600 s,
	// 5399.5 s and 60 s on golden, 86400 s for the StatefulSet.
	if n := testutil.CollectAndCount(f.metrics.leadTime); n != 1 {
		t.Errorf("lead time series = %d, want 1 (golden)", n)
	}
	expo := gather(t, f)
	for _, want := range []string{
		`tollgate_deployment_lead_time_seconds_count{profile="golden"} 4`,
		`tollgate_deployment_lead_time_seconds_sum{profile="golden"} 95459.5`,
		`tollgate_deployments_total{namespace="lab",profile="innovation",team="research"} 1`,
	} {
		if !strings.Contains(expo, want) {
			t.Errorf("metrics lack %s:\n%s", want, expo)
		}
	}
}

func sumCounter(t *testing.T, f *reviewFixture) float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "tollgate_deployments_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			n += m.GetCounter().GetValue()
		}
	}
	return n
}

func gather(t *testing.T, f *reviewFixture) string {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "tollgate_deployment") {
			if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
				t.Fatal(err)
			}
		}
	}
	return b.String()
}

func ptime(s string) *time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return &t
}

func pf(f float64) *float64 { return &f }

// TestSameTemplate: the template comparison sees what a person changed,
// not how the API server writes it.
func TestSameTemplate(t *testing.T) {
	base := `{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"c","image":"nginx:1.27","ports":[{"containerPort":8080}],"resources":{"limits":{"memory":"1Gi"}}}]}}`
	for _, tc := range []struct {
		name, other string
		same        bool
	}{
		{"identical", base, true},
		{"null creationTimestamp and empty annotations", strings.Replace(base, `"metadata":{`, `"metadata":{"creationTimestamp":null,"annotations":{},`, 1), true},
		{"quantity written another way", strings.Replace(base, `"1Gi"`, `"1024Mi"`, 1), true},
		{"number written another way", strings.Replace(base, `8080`, `8080.0`, 1), true},
		{"empty list", strings.Replace(base, `"name":"c",`, `"name":"c","args":[],`, 1), true},
		{"image", strings.Replace(base, "1.27", "1.28", 1), false},
		{"label", strings.Replace(base, `"web"`, `"web2"`, 1), false},
		{"quantity", strings.Replace(base, `"1Gi"`, `"2Gi"`, 1), false},
		{"port", strings.Replace(base, `8080`, `8081`, 1), false},
		{"not a quantity stays a string", strings.Replace(base, `"1Gi"`, `"lots"`, 1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := decodeObject(t, base), decodeObject(t, tc.other)
			if got := sameTemplate(a, b); got != tc.same {
				t.Errorf("sameTemplate = %v, want %v", got, tc.same)
			}
		})
	}
}

func decodeObject(t *testing.T, s string) map[string]any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}
