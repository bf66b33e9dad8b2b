package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/library"
	core "github.com/tollgate-dev/tollgate/policies/review"
)

// fakeNamespaces serves namespaces from a map; a missing one is an error,
// as a failed read is.
type fakeNamespaces map[string]map[string]any

func (f fakeNamespaces) Namespace(_ context.Context, name string) (map[string]any, error) {
	ns, ok := f[name]
	if !ok {
		return nil, errors.New("reading namespace " + name + ": connection refused")
	}
	return ns, nil
}

func teamNS(name string) map[string]any {
	return map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name, "labels": map[string]any{
		"team": "payments", "owner": "alice", "cost-center": "CC-1234", "kubernetes.io/metadata.name": name,
	}}}
}

type reviewFixture struct {
	reviewer *Reviewer
	log      *bytes.Buffer
	metrics  *Metrics
	reg      *prometheus.Registry
	mutate   http.Handler
	validate http.Handler
}

func newFixture(t testing.TB, extra []policies.Module, cfg *policies.Config, exceptions ...policies.Exception) *reviewFixture {
	t.Helper()
	lib, err := policies.ReadFS(library.FS(), "library", false)
	if err != nil {
		t.Fatal(err)
	}
	e, err := policies.New(context.Background(), policies.Options{Modules: append(lib, extra...), Config: cfg, PolicyTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	holder := &core.Holder{}
	holder.Store(core.NewSet(e, exceptions, 1))
	reg := prometheus.NewRegistry()
	f := &reviewFixture{log: &bytes.Buffer{}, metrics: NewMetrics(reg), reg: reg}
	f.reviewer, err = NewReviewer(ReviewerOptions{
		State:        holder,
		Namespaces:   fakeNamespaces{"shop": teamNS("shop"), "legacy": teamNS("legacy")},
		OwnNamespace: "tollgate-system",
		Metrics:      f.metrics,
		DecisionLog:  NewDecisionLog(f.log),
		ProfileEvery: 1,
		Now:          func() time.Time { return time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		t.Fatal(err)
	}
	f.mutate = f.reviewer.Handler(WebhookMutate, f.reviewer.Mutate)
	f.validate = f.reviewer.Handler(WebhookValidate, f.reviewer.Validate)
	return f
}

func review(t testing.TB, op, kind, ns, name string, obj, old string) []byte {
	t.Helper()
	group, version := "", "v1"
	switch kind {
	case "Deployment", "ReplicaSet":
		group = "apps"
	case "CronJob", "Job":
		group = "batch"
	}
	req := map[string]any{
		"uid":       "uid-" + name,
		"kind":      map[string]any{"group": group, "version": version, "kind": kind},
		"resource":  map[string]any{"group": group, "version": version, "resource": strings.ToLower(kind) + "s"},
		"namespace": ns, "name": name, "operation": op,
		"userInfo": map[string]any{"username": "alice"},
	}
	if obj != "" {
		req["object"] = json.RawMessage(obj)
	}
	if old != "" {
		req["oldObject"] = json.RawMessage(old)
	}
	b, err := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func post(h http.Handler, body []byte, contentType string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	h.ServeHTTP(rec, req)
	return rec
}

func decodeResponse(t *testing.T, rec *httptest.ResponseRecorder) (string, *admissionv1.AdmissionResponse) {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
	}
	var out struct {
		APIVersion string                         `json:"apiVersion"`
		Response   *admissionv1.AdmissionResponse `json:"response"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	return out.APIVersion, out.Response
}

const privilegedPod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"shop"},
 "spec":{"containers":[{"name":"c","image":"nginx:1.27","securityContext":{"privileged":true}}]}}`

const hardenedPod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"ok","namespace":"shop","labels":{"team":"payments","owner":"alice","cost-center":"CC-1234"}},
 "spec":{"securityContext":{"runAsNonRoot":true,"seccompProfile":{"type":"RuntimeDefault"}},
  "containers":[{"name":"c","image":"nginx:1.27","securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}},
   "resources":{"requests":{"cpu":"100m","memory":"128Mi"},"limits":{"memory":"256Mi"}}}]}}`

func TestMalformedReviews(t *testing.T) {
	f := newFixture(t, nil, nil)
	valid := review(t, "CREATE", "Pod", "shop", "p", privilegedPod, "")
	big := append([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","object":{"pad":"`),
		bytes.Repeat([]byte("a"), 8<<20)...)
	big = append(big, []byte(`"}}}`)...)
	cases := []struct {
		name        string
		body        []byte
		contentType string
		wantCode    int
		wantBody    string
	}{
		{"truncated JSON", valid[:len(valid)/2], "application/json", 400, "unexpected end of JSON input"},
		{"wrong content type", valid, "application/yaml", 415, `content type "application/yaml": want application/json`},
		{"missing content type", valid, "", 415, `content type "": want application/json`},
		{"missing UID", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"CREATE"}}`), "application/json", 400, "request.uid: missing"},
		{"missing request", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), "application/json", 400, "request: missing"},
		{"wrong kind", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"Pod","request":{"uid":"x"}}`), "application/json", 400, `kind "Pod": want AdmissionReview`},
		{"unknown version", []byte(`{"apiVersion":"admission.k8s.io/v2","kind":"AdmissionReview","request":{"uid":"x"}}`), "application/json", 400, `apiVersion "admission.k8s.io/v2": want admission.k8s.io/v1`},
		{"8 MiB body", big, "application/json", 413, "body is over the 7340032 byte limit"},
		{"not an object", []byte(`[1,2,3]`), "application/json", 400, "malformed AdmissionReview: a JSON array where an object belongs"},
		{"object is not an object", review(t, "CREATE", "Pod", "shop", "p", `"just a string"`, ""), "application/json", 200, "malformed AdmissionReview: request.object: a JSON string where an object belongs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, h := range []http.Handler{f.mutate, f.validate} {
				rec := post(h, tc.body, tc.contentType)
				if rec.Code != tc.wantCode || !strings.Contains(rec.Body.String(), tc.wantBody) {
					t.Fatalf("HTTP %d %q, want %d containing %q", rec.Code, rec.Body, tc.wantCode, tc.wantBody)
				}
			}
		})
	}
	// After all that, the server still answers a good request correctly.
	_, resp := decodeResponse(t, post(f.validate, valid, "application/json"))
	if resp.Allowed || resp.UID != "uid-p" {
		t.Fatalf("after bad input: %+v", resp)
	}
	// GET is not an admission review.
	rec := httptest.NewRecorder()
	f.validate.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/validate", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET: HTTP %d", rec.Code)
	}
}

func TestV1beta1ReviewIsAnsweredInKind(t *testing.T) {
	f := newFixture(t, nil, nil)
	body := bytes.Replace(review(t, "CREATE", "Pod", "shop", "p", privilegedPod, ""), []byte("admission.k8s.io/v1"), []byte("admission.k8s.io/v1beta1"), 1)
	version, resp := decodeResponse(t, post(f.validate, body, "application/json"))
	if version != "admission.k8s.io/v1beta1" || resp.Allowed || resp.UID != "uid-p" {
		t.Fatalf("v1beta1: version %s, response %+v", version, resp)
	}
}

func TestValidateDecisions(t *testing.T) {
	warnCfg, err := policies.ParseConfig([]byte("policies: {images-no-latest: {action: warn}, naming-convention: {action: audit}}\nparameters: {naming: {patterns: {Pod: '^[a-z]+$'}}}"))
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, nil, warnCfg)
	cases := []struct {
		name, op, kind, ns, objName, obj, old, sub string
		allowed                                    bool
		message                                    []string
		warnings                                   []string
	}{{
		name: "enforce: every violation listed with policy id and field path", op: "CREATE", kind: "Pod", ns: "shop", objName: "p", obj: privilegedPod,
		message: []string{
			"tollgate denied Pod shop/p:",
			"[pss-baseline-privileged] spec.containers[0].securityContext.privileged:",
			"[pss-restricted-run-as-non-root]",
			"[resources-requests-limits] spec.containers[0].resources",
		},
	}, {
		name: "warn: allowed with admission warnings", op: "CREATE", kind: "Pod", ns: "shop", objName: "ok",
		obj: strings.Replace(hardenedPod, "nginx:1.27", "nginx:latest", 1), allowed: true,
		warnings: []string{"tollgate: [images-no-latest] spec.containers[0].image: "},
	}, {
		name: "audit: allowed, recorded, no warning", op: "CREATE", kind: "Pod", ns: "shop", objName: "ok-2",
		obj: strings.Replace(hardenedPod, `"name":"ok"`, `"name":"ok-2"`, 1), allowed: true,
	}, {
		name: "namespace that cannot be read is an error", op: "CREATE", kind: "Pod", ns: "unknown", objName: "p",
		obj: strings.Replace(privilegedPod, `"shop"`, `"unknown"`, 1),
	}, {
		name: "exempt namespace is not judged", op: "CREATE", kind: "Pod", ns: "kube-system", objName: "p",
		obj: strings.Replace(privilegedPod, `"shop"`, `"kube-system"`, 1), allowed: true,
	}, {
		name: "own namespace is not judged", op: "CREATE", kind: "Pod", ns: "tollgate-system", objName: "p",
		obj: strings.Replace(privilegedPod, `"shop"`, `"tollgate-system"`, 1), allowed: true,
	}, {
		name: "status-only update is not re-judged", op: "UPDATE", kind: "Pod", ns: "shop", objName: "p",
		obj: strings.Replace(privilegedPod, `"spec"`, `"status":{"phase":"Running"},"spec"`, 1), old: privilegedPod, allowed: true,
	}, {
		name: "update that changes the spec is judged", op: "UPDATE", kind: "Pod", ns: "shop", objName: "p",
		obj: strings.Replace(privilegedPod, "nginx:1.27", "nginx:1.28", 1), old: privilegedPod,
		message: []string{"[pss-baseline-privileged]"},
	}, {
		name: "removing finalizers from a deleting object is allowed", op: "UPDATE", kind: "Pod", ns: "shop", objName: "p",
		obj: strings.Replace(privilegedPod, `"namespace":"shop"`, `"namespace":"shop","deletionTimestamp":"2026-11-21T11:00:00Z","finalizers":[]`, 1),
		old: strings.Replace(privilegedPod, `"namespace":"shop"`, `"namespace":"shop","deletionTimestamp":"2026-11-21T11:00:00Z","finalizers":["example.com/x"]`, 1), allowed: true,
	}, {
		name: "spec changes of a deleting object are still judged", op: "UPDATE", kind: "Pod", ns: "shop", objName: "p",
		obj:     strings.Replace(strings.Replace(privilegedPod, "nginx:1.27", "nginx:1.28", 1), `"namespace":"shop"`, `"namespace":"shop","deletionTimestamp":"2026-11-21T11:00:00Z"`, 1),
		old:     strings.Replace(privilegedPod, `"namespace":"shop"`, `"namespace":"shop","deletionTimestamp":"2026-11-21T11:00:00Z"`, 1),
		message: []string{"[pss-baseline-privileged]"},
	}, {
		name: "adding a finalizer is judged", op: "UPDATE", kind: "Pod", ns: "shop", objName: "p",
		obj: strings.Replace(privilegedPod, `"namespace":"shop"`, `"namespace":"shop","finalizers":["example.com/x"]`, 1), old: privilegedPod,
		message: []string{"[pss-baseline-privileged]"},
	}, {
		name: "DELETE with a null object is allowed", op: "DELETE", kind: "Pod", ns: "shop", objName: "p", old: privilegedPod, allowed: true,
	}, {
		name: "scale subresource is not judged as a pod", op: "UPDATE", kind: "Scale", ns: "shop", objName: "d", sub: "scale",
		obj: `{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"d","namespace":"shop"},"spec":{"replicas":3}}`, allowed: true,
	}, {
		name: "status subresource is not judged", op: "UPDATE", kind: "Pod", ns: "shop", objName: "p", sub: "status", obj: privilegedPod, old: privilegedPod, allowed: true,
	}, {
		name: "ephemeral containers are judged; the pod they attach to is not re-judged", op: "UPDATE", kind: "Pod", ns: "shop", objName: "p", sub: "ephemeralcontainers",
		obj: strings.Replace(privilegedPod, `"containers"`, `"ephemeralContainers":[{"name":"debugger","image":"busybox","securityContext":{"privileged":true}}],"containers"`, 1),
		old: privilegedPod,
		message: []string{
			"[pss-baseline-privileged] spec.ephemeralContainers[0].securityContext.privileged",
			"[pss-restricted-run-as-non-root] spec.ephemeralContainers[0]",
		},
		warnings: []string{"tollgate: [images-no-latest] spec.ephemeralContainers[0].image: "},
	}, {
		name: "unknown kinds are judged by the object policies that apply to any kind", op: "CREATE", kind: "Widget", ns: "shop", objName: "Bad_Name",
		obj:     `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"Bad_Name","namespace":"shop"}}`,
		message: []string{"[naming-dns1123]"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := review(t, tc.op, tc.kind, tc.ns, tc.objName, tc.obj, tc.old)
			if tc.sub != "" {
				var m map[string]any
				_ = json.Unmarshal(body, &m)
				m["request"].(map[string]any)["subResource"] = tc.sub
				body, _ = json.Marshal(m)
			}
			rec := post(f.validate, body, "application/json")
			if tc.name == "namespace that cannot be read is an error" {
				if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "reading namespace unknown") {
					t.Fatalf("HTTP %d %s: want 500 so the failure policy applies", rec.Code, rec.Body)
				}
				return
			}
			_, resp := decodeResponse(t, rec)
			if resp.Allowed != tc.allowed {
				t.Fatalf("allowed = %v, want %v (%+v)", resp.Allowed, tc.allowed, resp.Result)
			}
			if string(resp.UID) != "uid-"+tc.objName {
				t.Fatalf("uid = %q", resp.UID)
			}
			for _, want := range tc.message {
				if resp.Result == nil || !strings.Contains(resp.Result.Message, want) {
					t.Errorf("message does not contain %q:\n%v", want, resp.Result)
				}
			}
			if tc.sub == "ephemeralcontainers" && strings.Contains(resp.Result.Message, "spec.containers[0]") {
				t.Errorf("the existing container was re-judged:\n%s", resp.Result.Message)
			}
			if len(tc.warnings) != len(resp.Warnings) {
				t.Fatalf("warnings = %q, want %q", resp.Warnings, tc.warnings)
			}
			for i, w := range tc.warnings {
				if !strings.HasPrefix(resp.Warnings[i], w) {
					t.Errorf("warning %q does not start with %q", resp.Warnings[i], w)
				}
			}
		})
	}
	// Audit findings were recorded in the decision log.
	if !strings.Contains(f.log.String(), `"policy":"naming-convention"`) || !strings.Contains(f.log.String(), `"action":"audit"`) {
		t.Errorf("decision log lacks the audit finding:\n%s", f.log)
	}
}

func TestDryRunHasNoSideEffects(t *testing.T) {
	f := newFixture(t, nil, nil)
	body := review(t, "CREATE", "Pod", "shop", "p", privilegedPod, "")
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	m["request"].(map[string]any)["dryRun"] = true
	dry, _ := json.Marshal(m)

	_, realResp := decodeResponse(t, post(f.validate, body, "application/json"))
	realViolations := testutil.ToFloat64(f.metrics.violations.WithLabelValues("pss-baseline-privileged", "enforce"))
	logLines := strings.Count(f.log.String(), "\n")
	_, dryResp := decodeResponse(t, post(f.validate, dry, "application/json"))

	if diff := cmp.Diff(realResp.Result.Message, dryResp.Result.Message); diff != "" || dryResp.Allowed {
		t.Fatalf("dry run verdict differs (-real +dry):\n%s", diff)
	}
	if got := testutil.ToFloat64(f.metrics.violations.WithLabelValues("pss-baseline-privileged", "enforce")); got != realViolations {
		t.Errorf("dry run counted violations: %v → %v", realViolations, got)
	}
	if got := testutil.ToFloat64(f.metrics.requests.WithLabelValues("validate", "CREATE", "Pod", "denied", "false")); got != 1 {
		t.Errorf("real denials = %v, want 1 (the dry run must not count)", got)
	}
	if got := testutil.ToFloat64(f.metrics.requests.WithLabelValues("validate", "CREATE", "Pod", "denied", "true")); got != 1 {
		t.Errorf("dry-run denials = %v, want 1", got)
	}
	lines := strings.Split(strings.TrimSpace(f.log.String()), "\n")
	if len(lines) != logLines+1 || !strings.Contains(lines[len(lines)-1], `"dryRun":true`) {
		t.Errorf("the dry run's log entry must be marked dryRun:true:\n%s", f.log)
	}
	for _, l := range lines[:logLines] {
		if strings.Contains(l, `"dryRun":true`) {
			t.Errorf("real entry marked dry run: %s", l)
		}
	}
}

func TestExceptionsInAdmission(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	active := policies.Exception{Namespace: "platform-exceptions", Name: "vendor-agent", Policies: []string{"pss-baseline-privileged"},
		Match: policies.ExceptionMatch{Namespaces: []string{"shop"}, Names: []string{"p"}}, Reason: "vendor", Approver: "sec", Expires: now.Add(time.Hour)}
	expired := active
	expired.Name, expired.Expires = "old", now.Add(-time.Hour)

	f := newFixture(t, nil, nil, expired)
	_, resp := decodeResponse(t, post(f.validate, review(t, "CREATE", "Pod", "shop", "p", privilegedPod, ""), "application/json"))
	if !strings.Contains(resp.Result.Message, "[pss-baseline-privileged]") {
		t.Fatalf("an expired exception waived the finding:\n%s", resp.Result.Message)
	}
	f = newFixture(t, nil, nil, active)
	_, resp = decodeResponse(t, post(f.validate, review(t, "CREATE", "Pod", "shop", "p", privilegedPod, ""), "application/json"))
	if resp.Result == nil || strings.Contains(resp.Result.Message, "[pss-baseline-privileged]") {
		t.Fatalf("the active exception did not waive the finding: %+v", resp.Result)
	}
	if !strings.Contains(f.log.String(), `"exception":{"namespace":"platform-exceptions","name":"vendor-agent"`) {
		t.Errorf("the waived finding does not name its exception in the decision log:\n%s", f.log)
	}
}

func TestPanicsAndTimeoutsAreContained(t *testing.T) {
	loop := policies.Module{Name: "slow.rego", Text: `# METADATA
# custom:
#   id: slow
#   severity: low
#   action: enforce
#   scope: object
package test.slow

violation contains {"msg": "never"} if {
	some i in numbers.range(1, 100000000)
	i < 0
}
`}
	f := newFixture(t, []policies.Module{loop}, nil)
	start := time.Now()
	_, resp := decodeResponse(t, post(f.validate, review(t, "CREATE", "Pod", "shop", "ok", hardenedPod, ""), "application/json"))
	if resp.Allowed || !strings.Contains(resp.Result.Message, "[slow] could not be evaluated") {
		t.Fatalf("a timed-out enforce policy must fail closed, named: %+v", resp.Result)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("the policy deadline did not hold")
	}
	if got := testutil.ToFloat64(f.metrics.errors.WithLabelValues("slow")); got != 1 {
		t.Errorf("policy errors = %v", got)
	}

	// A panic outside the engine is answered with the request's UID.
	boom := f.reviewer.Handler(WebhookValidate, func(context.Context, *Request) (*admissionv1.AdmissionResponse, error) {
		panic("boom")
	})
	_, resp = decodeResponse(t, post(boom, review(t, "CREATE", "Pod", "shop", "p", privilegedPod, ""), "application/json"))
	if resp.UID != "uid-p" || resp.Allowed || !strings.Contains(resp.Result.Message, "boom") {
		t.Fatalf("panic response: %+v", resp)
	}
	boomMutate := f.reviewer.Handler(WebhookMutate, func(context.Context, *Request) (*admissionv1.AdmissionResponse, error) {
		panic("boom")
	})
	_, resp = decodeResponse(t, post(boomMutate, review(t, "CREATE", "Pod", "shop", "p", privilegedPod, ""), "application/json"))
	if resp.UID != "uid-p" || !resp.Allowed || len(resp.Warnings) != 1 {
		t.Fatalf("mutate panic must fail open with a warning: %+v", resp)
	}
}

func TestMutateEndpoint(t *testing.T) {
	f := newFixture(t, nil, nil)
	deploy := `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"shop"},
	 "spec":{"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"app","image":"nginx:1.27"}]}}}}`
	_, resp := decodeResponse(t, post(f.mutate, review(t, "CREATE", "Deployment", "shop", "web", deploy, ""), "application/json"))
	if !resp.Allowed || resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("response %+v", resp)
	}
	var ops []policies.PatchOperation
	if err := json.Unmarshal(resp.Patch, &ops); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, op := range ops {
		paths = append(paths, op.Op+" "+op.Path)
	}
	for _, want := range []string{
		"add /metadata/labels", "add /spec/template/metadata/labels/team",
		"add /spec/template/spec/securityContext", "add /spec/template/spec/containers/0/securityContext",
		"add /spec/template/spec/containers/0/resources", "add /metadata/annotations",
	} {
		found := false
		for _, p := range paths {
			found = found || p == want
		}
		if !found {
			t.Errorf("patch lacks %q: %v", want, paths)
		}
	}
	// A namespace that cannot be read fails the request (mutating failurePolicy Ignore then applies).
	rec := post(f.mutate, review(t, "CREATE", "Deployment", "nowhere", "web", strings.Replace(deploy, `"shop"`, `"nowhere"`, 1), ""), "application/json")
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
	}
	body, _ := io.ReadAll(rec.Body)
	if !strings.Contains(string(body), "reading namespace nowhere") {
		t.Fatalf("error body %q", body)
	}
}
