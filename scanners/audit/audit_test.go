package audit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/library"
	"github.com/tollgate-dev/tollgate/policies/review"
	"github.com/tollgate-dev/tollgate/policies/vuln"
	"github.com/tollgate-dev/tollgate/scanners/audit"
	"github.com/tollgate-dev/tollgate/test/cluster"
	"github.com/tollgate-dev/tollgate/webhook"
)

// configMapTeam is a test policy over ConfigMaps, so thousands of cheap
// objects can be audited.
const configMapTeam = `# METADATA
# title: ConfigMaps name their team
# custom:
#   id: configmap-team
#   severity: low
#   action: warn
#   scope: object
#   kinds: [ConfigMap]
#   controls: [{framework: soc2, id: CC6.1}]
package corp.configmap_team

violation contains {"msg": "no team label", "path": ["metadata", "labels", "team"]} if {
	not input.object.metadata.labels.team
}
`

func start(t *testing.T) (*cluster.Cluster, client.Client, *rest.Config) {
	t.Helper()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := cluster.Start(context.Background(), cluster.Options{CRDDirs: []string{
		filepath.Join(root, "charts", "tollgate", "crds"), filepath.Join(root, "scanners", "audit", "testdata"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Stop() })
	c, err := client.New(cl.Config(), client.Options{Scheme: webhook.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return cl, c, cl.Config()
}

// kindsOnly is a plugin that judges nothing and names kinds to audit,
// except that it panics on an object named "panics": a broken evaluator
// the audit must contain.
type kindsOnly []policies.GroupVersionKind

func (kindsOnly) Evaluate(_ context.Context, in *policies.Input) *policies.Decision {
	if md, _ := in.Object["metadata"].(map[string]any); md["name"] == "panics" {
		panic("an evaluator broke on this object")
	}
	return &policies.Decision{}
}

func (k kindsOnly) Kinds() []policies.GroupVersionKind { return k }

func engine(t *testing.T, exceptions ...policies.Exception) *review.Set {
	t.Helper()
	lib, err := policies.ReadFS(library.FS(), "library", false)
	if err != nil {
		t.Fatal(err)
	}
	lib = append(lib, policies.Module{Name: "configmap-team.rego", Text: configMapTeam})
	e, err := policies.New(context.Background(), policies.Options{Modules: lib})
	if err != nil {
		t.Fatal(err)
	}
	return review.NewSet(e, exceptions, 7, review.Plugin{Name: "kinds", Evaluator: kindsOnly{
		{Kind: "ConfigMap"}, {Kind: "Namespace"},
		{Group: "example.com", Kind: "Missing"}, // not served here: skipped
	}})
}

func newAuditor(t *testing.T, c client.Client, cfg *rest.Config, eng *review.Set, reg prometheus.Registerer) *audit.Auditor {
	t.Helper()
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, hc)
	if err != nil {
		t.Fatal(err)
	}
	a, err := audit.New(audit.Options{Reader: c, Mapper: mapper, Policies: func() *review.Set { return eng },
		Sink: &audit.ReportWriter{Client: c, Mapper: mapper, MaxResults: 100}, Skip: []string{"tollgate-system"}, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func report(t *testing.T, c client.Client, kind, ns string) *unstructured.Unstructured {
	t.Helper()
	r := &unstructured.Unstructured{}
	r.SetGroupVersionKind(schema.GroupVersionKind{Group: "openreports.io", Version: "v1alpha1", Kind: kind})
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "tollgate"}, r); err != nil {
		return nil
	}
	return r
}

// results are a report's findings; passes lists the entries that name
// examples of what passed.
func results(r *unstructured.Unstructured) []map[string]any { return entries(r, false) }

func passes(r *unstructured.Unstructured) []map[string]any { return entries(r, true) }

func entries(r *unstructured.Unstructured, pass bool) []map[string]any {
	list, _, _ := unstructured.NestedSlice(r.Object, "results")
	out := make([]map[string]any, 0, len(list))
	for _, x := range list {
		if e := x.(map[string]any); (e["result"] == "pass") == pass {
			out = append(out, e)
		}
	}
	return out
}

// find returns the results about one resource name.
func find(r *unstructured.Unstructured, name string) []map[string]any {
	var out []map[string]any
	for _, res := range results(r) {
		subjects, _ := res["resources"].([]any)
		for _, s := range subjects {
			if s.(map[string]any)["name"] == name {
				out = append(out, res)
			}
		}
	}
	return out
}

func mustQ(s string) resource.Quantity { return resource.MustParse(s) }

func deployment(ns, name string, privileged bool) *appsv1.Deployment {
	sc := &corev1.SecurityContext{Privileged: &privileged}
	if !privileged {
		f, tr := false, true
		sc = &corev1.SecurityContext{AllowPrivilegeEscalation: &f, RunAsNonRoot: &tr, ReadOnlyRootFilesystem: &tr, Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}
	}
	labels := map[string]string{"app": name, "team": "payments", "owner": "alice", "cost-center": "CC-1234"}
	noToken := false
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{AutomountServiceAccountToken: &noToken, Containers: []corev1.Container{{
				Name: "c", Image: "ghcr.io/corp/app:1.0", SecurityContext: sc,
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{"cpu": mustQ("100m"), "memory": mustQ("64Mi")}, Limits: corev1.ResourceList{"memory": mustQ("64Mi")}},
			}}}}},
	}
}

// TestAuditWritesReports: a seeded cluster gives per-namespace Reports
// with the expected results and control ids; an exception shows as skip;
// fixing a resource clears its results on the next scan; deleting one
// removes them, and a namespace left clean loses its report.
func TestAuditWritesReports(t *testing.T) {
	ctx := context.Background()
	_, c, cfg := start(t)
	for _, ns := range []string{"shop", "vendor", "batch", "tollgate-system"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"team": "payments", "owner": "alice", "cost-center": "CC-1234"}}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, obj := range []client.Object{
		deployment("shop", "web", false), deployment("shop", "agent", true), deployment("vendor", "agent", true),
		deployment("tollgate-system", "tollgate", true), // Tollgate's own namespace: never audited
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "batch", Name: "settings"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "decoy"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "batch", Name: "panics"}},
	} {
		if err := c.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	// Bare privileged pods that claim a controller: a ConfigMap (an
	// audited kind, but not one that makes pods) and a ReplicaSet that does
	// not exist. Neither claim holds, so both are judged as themselves.
	var decoy corev1.ConfigMap
	if err := c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "decoy"}, &decoy); err != nil {
		t.Fatal(err)
	}
	yes := true
	for name, owner := range map[string]metav1.OwnerReference{
		"forged-configmap": {APIVersion: "v1", Kind: "ConfigMap", Name: "decoy", UID: decoy.UID, Controller: &yes},
		"forged-missing":   {APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "nowhere-5d8f", UID: "0b6c5a9e-0000-4000-8000-000000000001", Controller: &yes},
	} {
		tmpl := deployment("shop", name, true).Spec.Template
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, OwnerReferences: []metav1.OwnerReference{owner}}, Spec: tmpl.Spec}
		if err := c.Create(ctx, pod); err != nil {
			t.Fatal(err)
		}
	}
	exception := policies.Exception{Namespace: "vendor", Name: "vendor-agent", Policies: []string{"pss-baseline-privileged"},
		Match: policies.ExceptionMatch{Namespaces: []string{"vendor"}}, Reason: "the vendor's agent needs it until v3",
		Ticket: "SEC-1", Approver: "carol", Expires: time.Now().Add(24 * time.Hour)}
	eng := engine(t, exception)
	reg := prometheus.NewRegistry()
	a := newAuditor(t, c, cfg, eng, reg)
	scan, err := a.ScanOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The object an evaluator panics on is reported as not judged; the
	// scan goes on to the others.
	if len(scan.Errors) != 1 || !strings.Contains(scan.Errors[0], "batch/panics: not judged: the review panicked") {
		t.Fatalf("scan errors: %v; want the one object the evaluator panicked on", scan.Errors)
	}
	shop := report(t, c, "Report", "shop")
	if shop == nil {
		t.Fatal("no Report in shop")
	}
	agent := find(shop, "agent")
	var privileged map[string]any
	for _, r := range agent {
		if r["policy"] == "pss-baseline-privileged" {
			privileged = r
		}
	}
	if privileged == nil || privileged["result"] != "fail" || privileged["source"] != "tollgate" {
		t.Fatalf("shop/agent results: %v", agent)
	}
	props := privileged["properties"].(map[string]any)
	if !strings.Contains(props["controls"].(string), "pss:") || !strings.Contains(props["path"].(string), "privileged") {
		t.Errorf("properties %v: want control ids and the path", props)
	}
	for _, name := range []string{"forged-configmap", "forged-missing"} {
		found := false
		for _, r := range find(shop, name) {
			found = found || r["policy"] == "pss-baseline-privileged" && r["result"] == "fail"
		}
		if !found {
			t.Errorf("the pod %s, whose claimed controller does not hold, was not judged: %v", name, find(shop, name))
		}
	}
	if web := find(shop, "web"); len(web) != 0 {
		t.Errorf("the hardened Deployment has results: %v", web)
	}
	// The evidence: what each policy examined, and examples of what passed.
	var examined map[string]map[string]int
	if err := json.Unmarshal([]byte(shop.GetAnnotations()["tollgate.dev/examined"]), &examined); err != nil {
		t.Fatalf("the examined annotation: %v", err)
	}
	if got := examined["pss-baseline-privileged"]; got["apps/Deployment"] != 2 || got["Pod"] != 2 {
		t.Errorf("pss-baseline-privileged examined %v, want 2 Deployments (web, agent) and 2 Pods (the forged ones)", got)
	}
	var privilegedPasses []string
	for _, e := range passes(shop) {
		if e["policy"] != "pss-baseline-privileged" {
			continue
		}
		for _, r := range e["resources"].([]any) {
			privilegedPasses = append(privilegedPasses, r.(map[string]any)["name"].(string))
		}
	}
	if !slices.Equal(privilegedPasses, []string{"web"}) {
		t.Errorf("examples that passed pss-baseline-privileged: %v, want [web] (agent and the forged pods fail it)", privilegedPasses)
	}
	summary, _, _ := unstructured.NestedMap(shop.Object, "summary")
	if summary["fail"].(int64) == 0 || summary["pass"].(int64) == 0 {
		t.Errorf("summary %v: want passes and failures counted", summary)
	}
	// The exception in force: the vendor agent's privileged result is a skip naming it.
	for _, r := range find(report(t, c, "Report", "vendor"), "agent") {
		if r["policy"] == "pss-baseline-privileged" && (r["result"] != "skip" || r["properties"].(map[string]any)["exception"] != "vendor/vendor-agent") {
			t.Errorf("waived result %v", r)
		}
	}
	if report(t, c, "Report", "tollgate-system") != nil {
		t.Error("Tollgate's own namespace was audited")
	}
	if n, err := testutil.GatherAndCount(reg, "tollgate_audit_resources_scanned", "tollgate_audit_violations", "tollgate_audit_last_scan_timestamp_seconds"); err != nil || n < 3 {
		t.Errorf("audit series: %d, %v", n, err)
	}

	// Fix shop/agent, delete the ConfigMap: the next scan drops their
	// results, and batch, now empty, loses its report.
	var d appsv1.Deployment
	if err := c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "agent"}, &d); err != nil {
		t.Fatal(err)
	}
	d.Spec.Template.Spec.Containers[0].SecurityContext = deployment("shop", "agent", false).Spec.Template.Spec.Containers[0].SecurityContext
	if err := c.Update(ctx, &d); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "batch", Name: "settings"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ScanOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if left := find(report(t, c, "Report", "shop"), "agent"); len(left) != 0 {
		t.Errorf("the fixed Deployment still has results: %v", left)
	}
	if report(t, c, "Report", "batch") != nil {
		t.Error("the report of a namespace left with nothing was not removed")
	}

	// With a scan source, the Reports carry each vulnerable image's scan
	// per workload: counts, fixable, the most severe vulnerabilities and
	// the workload's team.
	scanned := vuln.Summarize(&vuln.Report{Digest: "sha256:" + strings.Repeat("c", 64), Vulnerabilities: []vuln.Vulnerability{
		{ID: "CVE-2024-5535", Package: "libssl3", Installed: "3.0.11-1~deb12u2", Fixed: "3.0.15-1~deb12u1", Severity: vuln.Critical},
		{ID: "CVE-2023-45853", Package: "zlib1g", Installed: "1:1.2.13.dfsg-1", Severity: vuln.High},
	}}, false)
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, hc)
	if err != nil {
		t.Fatal(err)
	}
	withScans, err := audit.New(audit.Options{Reader: c, Mapper: mapper, Policies: func() *review.Set { return eng },
		Reviewer: review.New(review.Options{Scans: staticScans{"ghcr.io/corp/app:1.0": scanned}}),
		Sink:     &audit.ReportWriter{Client: c, Mapper: mapper, MaxResults: 100}, Skip: []string{"tollgate-system"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := withScans.ScanOnce(ctx); err != nil {
		t.Fatal(err)
	}
	var vulnResult map[string]any
	for _, r := range find(report(t, c, "Report", "shop"), "web") {
		if r["policy"] == "images-vulnerability-report" {
			vulnResult = r
		}
	}
	if vulnResult == nil {
		t.Fatalf("no images-vulnerability-report result on shop/web: %v", find(report(t, c, "Report", "shop"), "web"))
	}
	if vulnResult["result"] != "warn" || vulnResult["severity"] != "critical" {
		t.Errorf("result %v severity %v: want warn (audit) and critical", vulnResult["result"], vulnResult["severity"])
	}
	want := map[string]any{
		"path": "spec.template.spec.containers[0].image", "image": "ghcr.io/corp/app:1.0", "digest": "sha256:" + strings.Repeat("c", 64),
		"scanStatus": "scanned", "criticalCount": "1", "highCount": "1", "mediumCount": "0", "lowCount": "0", "unknownCount": "0",
		"fixableCount": "1", "team": "payments", "remediation": vulnResult["properties"].(map[string]any)["remediation"],
		"vulnerabilities": "CVE-2024-5535 CRITICAL libssl3 3.0.11-1~deb12u2 -> 3.0.15-1~deb12u1; CVE-2023-45853 HIGH zlib1g 1:1.2.13.dfsg-1 (no fix)",
	}
	if diff := cmp.Diff(want, vulnResult["properties"]); diff != "" {
		t.Errorf("properties of the vulnerability result (-want +got):\n%s", diff)
	}
	// The pods of the cluster have no other images: nothing is unscanned,
	// and findings on other fields carry no scan.
	for _, r := range results(report(t, c, "Report", "shop")) {
		props, _ := r["properties"].(map[string]any)
		if r["policy"] == "images-unscanned" || r["policy"] != "images-vulnerability-report" && props["image"] != nil {
			t.Errorf("result %v", r)
		}
	}
}

// staticScans is a scan source with fixed summaries: the scan store is
// not what this test is about; an image it lacks is pending.
type staticScans map[string]*vuln.Summary

func (s staticScans) Summaries(_ context.Context, _ string, _ map[string]any, images []string) map[string]*vuln.Summary {
	out := map[string]*vuln.Summary{}
	for _, img := range images {
		if sum := s[img]; sum != nil {
			out[img] = sum
		}
	}
	return out
}

// TestAuditTwentyThousandObjects: 20,000 objects are scanned page by page
// with bounded memory; the report keeps 100 results and counts them all.
func TestAuditTwentyThousandObjects(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 20,000 objects")
	}
	ctx := context.Background()
	_, c, cfg := start(t)
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bulk"}}); err != nil {
		t.Fatal(err)
	}
	const n = 20000
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > n {
					return
				}
				cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "bulk", Name: fmt.Sprintf("cm-%05d", i)},
					Data: map[string]string{"payload": strings.Repeat("x", 512)}}
				if err := c.Create(ctx, cm); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	eng := engine(t)
	a := newAuditor(t, c, cfg, eng, nil)

	// Peak heap while scanning, sampled.
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		var m runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
				runtime.ReadMemStats(&m)
				if m.HeapInuse > peak.Load() {
					peak.Store(m.HeapInuse)
				}
			}
		}
	}()
	scan, err := a.ScanOnce(ctx)
	close(done)
	if err != nil {
		t.Fatal(err)
	}
	if got := scan.Scanned["ConfigMap"]; got < n {
		t.Fatalf("scanned %d ConfigMaps, want %d", got, n)
	}
	growth := int64(peak.Load()) - int64(base.HeapInuse)
	t.Logf("20,000 ConfigMaps: scanned in %s, heap grew by %d MiB at peak", scan.Finished.Sub(scan.Started), growth>>20)
	// All 20,000 objects as unstructured maps would take several times
	// this; pages of 500 and findings only stay well under it.
	if growth > 200<<20 {
		t.Errorf("heap grew by %d MiB during the scan: memory is not bounded by the page size", growth>>20)
	}
	bulk := report(t, c, "Report", "bulk")
	summary, _, _ := unstructured.NestedMap(bulk.Object, "summary")
	if len(results(bulk)) != 100 || summary["warn"].(int64) != n {
		t.Errorf("report: %d results listed, summary %v; want 100 listed of %d", len(results(bulk)), summary, n)
	}
}

// TestAuditFallsBackToWGPolicyReports: where only the policy working
// group's PolicyReport API is installed, the audit writes that.
func TestAuditFallsBackToWGPolicyReports(t *testing.T) {
	ctx := context.Background()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	crds := t.TempDir()
	data, err := os.ReadFile(filepath.Join(root, "compliance", "testdata", "crds", "wgpolicyk8s.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(crds, "wgpolicyk8s.yaml"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	cl, err := cluster.Start(ctx, cluster.Options{CRDDirs: []string{crds}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Stop()
	c, err := client.New(cl.Config(), client.Options{Scheme: webhook.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, deployment("shop", "agent", true)); err != nil {
		t.Fatal(err)
	}
	a := newAuditor(t, c, cl.Config(), engine(t), nil)
	if _, err := a.ScanOnce(ctx); err != nil {
		t.Fatal(err)
	}
	r := &unstructured.Unstructured{}
	r.SetGroupVersionKind(schema.GroupVersionKind{Group: "wgpolicyk8s.io", Version: "v1alpha2", Kind: "PolicyReport"})
	if err := c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "tollgate"}, r); err != nil {
		t.Fatalf("no PolicyReport in shop: %v", err)
	}
	if len(find(r, "agent")) == 0 {
		t.Errorf("the PolicyReport has no result for shop/agent: %v", results(r))
	}
}
