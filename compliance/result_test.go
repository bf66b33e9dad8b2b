package compliance

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tollgate-dev/tollgate/policies"
)

// TestReportResultRoundTrip: what the audit writes with ReportResult reads
// back as the same Result, through an unstructured object as the API
// server client holds it.
func TestReportResultRoundTrip(t *testing.T) {
	at := time.Date(2025, 6, 30, 10, 0, 0, 123000000, time.UTC)
	in := []Result{
		{
			Source: SourceTollgate, Policy: "pss-baseline-privileged", Result: OutcomeFail,
			Resource: Resource{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "agent", UID: "u-1"},
			Severity: policies.SeverityCritical, Message: `container "agent" is privileged`,
			Remediation: "Remove securityContext.privileged.",
			Controls:    []policies.Control{{Framework: "pss", ID: "baseline/privileged-containers"}, {Framework: "cis", ID: "5.2.2"}},
			Properties:  map[string]string{PropPath: "spec.template.spec.containers[0].securityContext.privileged", PropAction: "enforce"},
			Timestamp:   at,
		},
		{
			Source: SourceTollgate, Policy: "pss-restricted-run-as-non-root", Result: OutcomeSkip,
			Resource: Resource{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "legacy", Name: "billing"},
			Severity: policies.SeverityHigh, Message: "may run as root",
			Exception: &policies.ExceptionRef{Namespace: "px", Name: "legacy", Reason: "vendor image", Ticket: "CHG-1",
				Approver: "ciso", Expires: time.Date(2025, 9, 30, 0, 0, 0, 0, time.UTC)},
			Timestamp: at,
		},
		{Source: SourceTollgate, Policy: "ownership-labels", Result: OutcomePass, Resource: Resource{Kind: "Namespace", Name: "shop"}},
	}
	report := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "openreports.io/v1alpha1", "kind": "Report",
		"metadata": map[string]any{"name": "r", "namespace": "shop"},
	}}
	// SetNestedSlice deep-copies: it panics on values an unstructured
	// object cannot hold (int, []string, ...).
	if err := unstructured.SetNestedSlice(report.Object, ReportResults(in), "results"); err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedMap(report.Object, Summarize(in).Object(), "summary"); err != nil {
		t.Fatal(err)
	}
	// Through JSON, as the API server returns it.
	data, err := report.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	back := &unstructured.Unstructured{}
	if err := back.UnmarshalJSON(data); err != nil {
		t.Fatal(err)
	}
	got, meta, err := FromReport(back.Object)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Source != "" {
		t.Errorf("report source %q", meta.Source)
	}
	if diff := cmp.Diff(in, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if s, _, _ := unstructured.NestedMap(back.Object, "summary"); s["fail"] != int64(1) || s["skip"] != int64(1) || s["pass"] != int64(1) {
		t.Errorf("summary %v", s)
	}
	props := ReportResult(in[0])["properties"].(map[string]any)
	if props[PropControls] != "pss:baseline/privileged-containers,cis:5.2.2" {
		t.Errorf("controls property %q", props[PropControls])
	}
	_ = runtime.DeepCopyJSONValue(ReportResult(in[1]))
}

// TestFromReportShapes: results without resources are about the report's
// scope; several resources make several results; the source falls back
// to the report's, then the managed-by label.
func TestFromReportShapes(t *testing.T) {
	rs, meta, err := FromReport(readReport(t, "kyverno-policyreport.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if meta.Source != "kyverno" || len(rs) != 3 {
		t.Fatalf("source %q, %d results", meta.Source, len(rs))
	}
	if rs[0].Resource.String() != "shop/Deployment/node-agent" || rs[0].Rule != "validate-image-tag" || rs[0].Category != "Best Practices" ||
		!rs[0].Timestamp.Equal(time.Unix(1751270400, 0)) || rs[0].Severity != policies.SeverityMedium {
		t.Errorf("first result %+v", rs[0])
	}
	obj := map[string]any{
		"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "ClusterPolicyReport",
		"metadata": map[string]any{"name": "x", "labels": map[string]any{"app.kubernetes.io/managed-by": "kubewarden"}},
		"results": []any{
			map[string]any{"policy": "p", "result": "fail", "resources": []any{
				map[string]any{"kind": "Pod", "namespace": "a", "name": "one"},
				map[string]any{"kind": "Pod", "namespace": "a", "name": "two"},
			}},
			map[string]any{"policy": "q", "result": "warn", "resourceSelector": map[string]any{"matchLabels": map[string]any{"app": "web"}}},
		},
	}
	rs, _, err = FromReport(obj)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 3 || rs[0].Source != "kubewarden" || rs[1].Resource.Name != "two" || resourceText(&rs[2]) != "selector app=web" {
		t.Errorf("results %+v", rs)
	}
}

// TestFromReportMalformed: a bad entry is reported with its field path and
// the good entries are kept; a non-report is an error.
func TestFromReportMalformed(t *testing.T) {
	obj := map[string]any{
		"apiVersion": "openreports.io/v1alpha1", "kind": "Report",
		"metadata": map[string]any{"name": "r", "namespace": "ns"},
		"source":   "tollgate",
		"results": []any{
			map[string]any{"policy": "ok", "result": "pass"},
			"a string",
			map[string]any{"result": "fail"},
			map[string]any{"policy": "p", "result": "maybe"},
			map[string]any{"policy": "p", "result": "fail", "severity": "urgent"},
			map[string]any{"policy": "p", "result": "fail", "properties": map[string]any{"controls": "cis"}},
			map[string]any{"policy": "p", "result": "fail", "properties": map[string]any{"n": int64(3)}},
			map[string]any{"policy": "p", "result": "fail", "resources": []any{"x"}},
			map[string]any{"policy": "p", "result": "fail", "properties": map[string]any{"exception": "a/b", "exceptionExpires": "soon"}},
		},
	}
	rs, _, err := FromReport(obj)
	if len(rs) != 1 || rs[0].Policy != "ok" {
		t.Errorf("kept %+v", rs)
	}
	for _, want := range []string{
		"Report ns/r: results[1]: not an object",
		"results[2].policy: required",
		`results[3].result: unknown result "maybe"`,
		`results[4].severity: unknown severity "urgent"`,
		`results[5].properties.controls: control "cis": want framework:id`,
		"results[6].properties.n: want a string, got int64",
		"results[7].resources[0]: not an object",
		"results[8].properties.exceptionExpires: want an RFC 3339 time",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if _, _, err := FromReport(map[string]any{"apiVersion": "v1", "kind": "ConfigMap"}); err == nil {
		t.Error("a ConfigMap read as a report")
	}
	obj["results"] = "nope"
	if _, _, err := FromReport(obj); err == nil || !strings.Contains(err.Error(), "results: not a list") {
		t.Errorf("results not a list: %v", err)
	}
}

// TestFromFinding: a waived finding is skip with its exception; the path
// and action are properties.
func TestFromFinding(t *testing.T) {
	f := &policies.Finding{Policy: "p", Message: "m", Severity: policies.SeverityLow, Action: policies.ActionWarn, Path: "spec.x",
		Controls: []policies.Control{{Framework: "cis", ID: "1"}}, Remediation: "fix"}
	r := FromFinding(f, Resource{Kind: "Pod", Name: "a"}, time.Time{})
	want := Result{Source: SourceTollgate, Policy: "p", Resource: Resource{Kind: "Pod", Name: "a"}, Result: OutcomeFail,
		Severity: policies.SeverityLow, Message: "m", Remediation: "fix", Controls: []policies.Control{{Framework: "cis", ID: "1"}},
		Properties: map[string]string{PropPath: "spec.x", PropAction: "warn"}}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	f.Exception = &policies.ExceptionRef{Name: "x"}
	if r := FromFinding(f, Resource{}, time.Time{}); r.Result != OutcomeSkip || r.Exception == nil || r.Exception == f.Exception {
		t.Errorf("waived: %+v", r)
	}
}

// TestFromReportClusterAnnotations: the cluster and the policy set are
// read from the audit's annotations; a malformed one is reported with the
// report and the annotation, and the results are still read.
func TestFromReportClusterAnnotations(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name               string
		annotations        map[string]any
		cluster, policySet string
		err                string
	}{
		{name: "both", annotations: map[string]any{AnnotationCluster: "prod-eu-1", AnnotationPolicySet: digest}, cluster: "prod-eu-1", policySet: digest},
		{name: "absent", annotations: map[string]any{}},
		{name: "cluster not a string", annotations: map[string]any{AnnotationCluster: int64(7), AnnotationPolicySet: digest}, policySet: digest,
			err: "Report ns/r: annotation tollgate.dev/cluster: want a string, got int64"},
		{name: "cluster too long", annotations: map[string]any{AnnotationCluster: strings.Repeat("x", 300)},
			err: "annotation tollgate.dev/cluster: 300 bytes, longer than a cluster name (at most 256)"},
		{name: "cluster with a newline", annotations: map[string]any{AnnotationCluster: "a\nb"},
			err: `annotation tollgate.dev/cluster: "a\nb" holds control characters`},
		{name: "not a digest", annotations: map[string]any{AnnotationCluster: "a", AnnotationPolicySet: "latest; rm -rf /"}, cluster: "a",
			err: `annotation tollgate.dev/policy-set: "latest; rm -rf /" is not a digest (want algorithm:hex`},
		{name: "huge digest", annotations: map[string]any{AnnotationPolicySet: "sha256:" + strings.Repeat("0", 1<<20)},
			err: "annotation tollgate.dev/policy-set: 1048583 bytes, longer than a digest (at most 256)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj := map[string]any{
				"apiVersion": "openreports.io/v1alpha1", "kind": "Report",
				"metadata": map[string]any{"name": "r", "namespace": "ns", "annotations": tc.annotations},
				"source":   "tollgate",
				"results":  []any{map[string]any{"policy": "ok", "result": "fail"}},
			}
			rs, meta, err := FromReport(obj)
			if len(rs) != 1 {
				t.Errorf("results %+v: a bad annotation must not lose them", rs)
			}
			if meta.Cluster != tc.cluster || meta.PolicySet != tc.policySet {
				t.Errorf("cluster %q, policy set %q; want %q, %q", meta.Cluster, meta.PolicySet, tc.cluster, tc.policySet)
			}
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("error %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("error %v, want %q", err, tc.err)
			}
		})
	}
}
