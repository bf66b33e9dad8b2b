package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/compliance"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/policies/library"
	"github.com/tollgate-dev/tollgate/policies/loader"
	"github.com/tollgate-dev/tollgate/policies/review"
	"github.com/tollgate-dev/tollgate/scanners/audit"
	"github.com/tollgate-dev/tollgate/test/cluster"
	"github.com/tollgate-dev/tollgate/webhook"
)

// TestReportCluster: tollgate report against the real API server. The
// background audit scans seeded workloads (compliant, privileged, and a
// root workload under an exception) and writes its openreports.io Reports;
// Kyverno's wgpolicyk8s.io PolicyReport and Trivy's ClusterReport sit
// beside them; a decision log holds denials. The report must show the
// cluster's identity, the controls' verdicts, the exception in force with
// its approver, the one that is not, the denials, and the other engines.
func TestReportCluster(t *testing.T) {
	ctx := context.Background()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := cluster.Start(ctx, cluster.Options{CRDDirs: []string{
		filepath.Join(root, "charts", "tollgate", "crds"),
		filepath.Join(root, "compliance", "testdata", "crds"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Stop()
	c, err := client.New(cl.Config(), client.Options{Scheme: webhook.Scheme()})
	if err != nil {
		t.Fatal(err)
	}

	// Workloads: test/manifests (a hardened checkout and a privileged
	// node-agent in shop) and a root workload in legacy.
	for _, ns := range []string{"legacy", "platform-exceptions"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
			Labels: map[string]string{"team": "platform", "owner": "ops", "cost-center": "CC-0001"}}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"hardened.yaml", "privileged.yaml"} {
		if _, stderr, err := cl.Kubectl(ctx, "apply", "-f", filepath.Join(root, "test", "manifests", f)); err != nil {
			t.Fatalf("kubectl apply %s: %v\n%s", f, err, stderr)
		}
	}
	billing := `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"billing-v1","namespace":"legacy",
	 "labels":{"team":"platform","owner":"ops","cost-center":"CC-0001"}},
	 "spec":{"selector":{"matchLabels":{"app":"billing"}},"template":{"metadata":{"labels":{"app":"billing"}},
	 "spec":{"securityContext":{"seccompProfile":{"type":"RuntimeDefault"}},"containers":[{"name":"app","image":"registry.corp.example/billing:1.0",
	 "securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}},
	 "resources":{"requests":{"cpu":"100m","memory":"64Mi"},"limits":{"memory":"128Mi"}}}]}}}}`
	if _, stderr, err := cl.KubectlWithStdin(ctx, billing, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply billing: %v\n%s", err, stderr)
	}

	// Exceptions: one honoured by the webhook, one it refused.
	expiry := metav1.NewTime(time.Now().Add(60 * 24 * time.Hour).Truncate(time.Second))
	exception := func(name, reason string, ready metav1.ConditionStatus, msg string) {
		x := &v1alpha1.TollgateException{ObjectMeta: metav1.ObjectMeta{Namespace: "platform-exceptions", Name: name},
			Spec: v1alpha1.TollgateExceptionSpec{Policies: []string{"pss-restricted-run-as-non-root"},
				Match:  v1alpha1.ExceptionMatch{Namespaces: []string{"legacy"}, Names: []string{"billing-v1*"}},
				Reason: reason, Ticket: "CHG-1042", Approver: "maria.schmidt (CISO)", Expiry: expiry}}
		if err := c.Create(ctx, x); err != nil {
			t.Fatal(err)
		}
		x.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: ready, Reason: v1alpha1.ReasonLoaded,
			Message: msg, LastTransitionTime: metav1.Now()}}
		if err := c.Status().Update(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	exception("legacy-billing", "Vendor image runs as root; replacement in Q3", metav1.ConditionTrue, "honoured until "+expiry.UTC().Format(time.RFC3339))
	exception("too-broad", "Convenience", metav1.ConditionFalse, "spec.match: matches every namespace")

	// The audit scans the cluster and writes its Reports, judging with a
	// Kyverno policy beside the library: its findings reach the report
	// under the control its annotation names.
	kyvernoPolicy, err := yaml.YAMLToJSON([]byte(`apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: require-tier-label
  annotations:
    policies.kyverno.io/severity: medium
    tollgate.dev/controls: "soc2:CC8.1"
spec:
  validationFailureAction: Audit
  rules:
  - name: tier-label
    match:
      any:
      - resources:
          kinds: [Deployment]
          namespaces: [shop]
    validate:
      message: "every Deployment in shop needs a tier label"
      pattern:
        metadata:
          labels:
            tier: "?*"
`))
	if err != nil {
		t.Fatal(err)
	}
	var kyvernoObj map[string]any
	if err := json.Unmarshal(kyvernoPolicy, &kyvernoObj); err != nil {
		t.Fatal(err)
	}
	plugins, err := loader.FromObjects(ctx, []loader.Object{{Source: "require-tier-label.yaml", Object: kyvernoObj}}, loader.FileOptions{})
	if err != nil || len(plugins) != 1 {
		t.Fatalf("loading the Kyverno policy: %d plugins, %v", len(plugins), err)
	}
	scan := scanForReport(t, c, cl.Config(), plugins, policies.Exception{
		Namespace: "platform-exceptions", Name: "legacy-billing", Policies: []string{"pss-restricted-run-as-non-root"},
		Match:  policies.ExceptionMatch{Namespaces: []string{"legacy"}, Names: []string{"billing-v1*"}},
		Reason: "Vendor image runs as root; replacement in Q3", Ticket: "CHG-1042", Approver: "maria.schmidt (CISO)", Expires: expiry.Time,
	})
	if len(scan.Results["shop"]) == 0 || len(scan.Results["legacy"]) == 0 {
		t.Fatalf("the audit found nothing: %+v", scan.Results)
	}

	// Other engines' reports, as Kyverno and the Trivy Operator write them.
	for _, f := range []string{"kyverno-policyreport.yaml", "trivy-clusterreport.yaml"} {
		createReport(t, c, filepath.Join(root, "compliance", "testdata", "reports", f))
	}

	dir := t.TempDir()
	now := time.Now().UTC()
	log := write(t, dir, "decisions.jsonl", fmt.Sprintf(
		`{"time":%q,"uid":"1","user":"alice@corp.example","operation":"CREATE","kind":"Deployment","namespace":"shop","name":"debug","dryRun":false,"allowed":false,"findings":[{"policy":"pss-baseline-privileged","message":"container \"shell\" is privileged","severity":"critical","action":"enforce"}],"generation":1,"authenticated":true}
{"time":%q,"uid":"2","user":"alice@corp.example","operation":"CREATE","kind":"Deployment","namespace":"shop","name":"debug","dryRun":true,"allowed":false,"findings":[{"policy":"pss-baseline-privileged","message":"privileged","severity":"critical","action":"enforce"}],"generation":1}
not json
`, now.Add(-time.Hour).Format(time.RFC3339), now.Add(-time.Hour).Format(time.RFC3339)))

	var kubeSystem corev1.Namespace
	if err := c.Get(ctx, client.ObjectKey{Name: "kube-system"}, &kubeSystem); err != nil {
		t.Fatal(err)
	}
	kc := cl.KubeconfigPath()
	r, _ := reportJSON(t, "--kubeconfig", kc, "--decision-log", log, "--cluster-name", "test-cluster")

	if r.Cluster == nil || r.Cluster.Name != "test-cluster" || r.Cluster.UID != string(kubeSystem.UID) || r.Cluster.Server != cl.Server() ||
		!strings.HasPrefix(r.Cluster.KubernetesVersion, "v1.") {
		t.Errorf("cluster %+v (kube-system %s, server %s)", r.Cluster, kubeSystem.UID, cl.Server())
	}
	// The privileged node-agent fails; the hardened checkout does not.
	for _, fc := range [][2]string{{"cis", "5.2.2"}, {"pss", "baseline/privileged-containers"}, {"soc2", "CC6.1"}} {
		ctl := control(t, r, fc[0], fc[1])
		res := strings.Join(failingResources(ctl), " ")
		if ctl.Verdict != compliance.VerdictFailed || !strings.Contains(res, "shop/Deployment/node-agent") || strings.Contains(res, "checkout") {
			t.Errorf("%s:%s: %s, failing %s", fc[0], fc[1], ctl.Verdict, res)
		}
	}
	// The Kyverno policy's audit finding is evidence of its control.
	var kyvernoFailures []string
	for _, f := range control(t, r, "soc2", "CC8.1").Failures {
		if f.Policy == "ClusterPolicy/require-tier-label" {
			kyvernoFailures = append(kyvernoFailures, f.Resource.String())
		}
	}
	if got := strings.Join(kyvernoFailures, " "); !strings.Contains(got, "shop/Deployment/node-agent") || !strings.Contains(got, "shop/Deployment/checkout") || strings.Contains(got, "legacy") {
		t.Errorf("soc2:CC8.1 failures of the Kyverno policy: %q, want the two shop Deployments", got)
	}
	// The root workload is waived by the exception in force, named with
	// its approver though the audit records only the exception's name.
	ctl := control(t, r, "pss", "restricted/running-as-non-root")
	var waived []string
	for _, w := range ctl.Waived {
		waived = append(waived, w.Resource.String()+" by "+w.Exception.Approver)
	}
	if got := strings.Join(waived, ", "); !strings.Contains(got, "legacy/Deployment/billing-v1 by maria.schmidt (CISO)") {
		t.Errorf("waived: %s", got)
	}
	if len(r.Exceptions) != 1 || r.Exceptions[0].Name != "legacy-billing" || r.Exceptions[0].Waived == 0 {
		t.Errorf("exceptions in force: %+v", r.Exceptions)
	}
	notes := strings.Join(r.Notes, "\n")
	for _, want := range []string{
		"TollgateException platform-exceptions/too-broad is not in force: spec.match: matches every namespace",
		"openreports.io/v1alpha1 and wgpolicyk8s.io/v1alpha2",
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	// Other engines, by source; Tollgate's passes counted from the
	// Reports' summaries.
	counts := map[string]compliance.Summary{}
	for _, s := range r.Sources {
		counts[s.Source] = s.Summary
	}
	if counts["kyverno"].Fail != 2 || counts["trivy-operator"].Fail != 1 || counts["tollgate"].Pass == 0 || r.Checks != counts["tollgate"].Total() {
		t.Errorf("sources %+v, checks %d", counts, r.Checks)
	}
	// Trivy's finding names cis:5.1.1, which the RBAC policies automate:
	// another engine's result counts toward the control it names.
	if ctl := control(t, r, "cis", "5.1.1"); ctl.Verdict != compliance.VerdictFailed || len(ctl.Failures) != 1 {
		t.Errorf("5.1.1: %s, %d failures", ctl.Verdict, len(ctl.Failures))
	}
	// Denials of the period; the dry run and the broken line do not count.
	if d := r.Denials; d == nil || d.Denied != 1 || d.DryRun != 1 || d.Malformed != 1 || control(t, r, "cis", "5.2.2").Denied != 1 {
		t.Errorf("denials %+v", r.Denials)
	}

	// The HTML an auditor receives, signed.
	out := filepath.Join(dir, "report.html")
	code, stdout, stderr := run(t, "", "report", "--kubeconfig", kc, "--decision-log", log, "--output", out)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	html, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{string(kubeSystem.UID), "shop/Deployment/node-agent", "platform-exceptions/legacy-billing", "maria.schmidt (CISO)",
		`id="denials"`, "alice@corp.example", `id="sources"`, "disallow-latest-tag", "KSV111"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("the HTML lacks %q", want)
		}
	}
	if !strings.Contains(stdout, "report: "+out) {
		t.Errorf("stdout: %s", stdout)
	}
}

// scanForReport scans the cluster once with the built-in library, as tollgate
// serve's audit does, and writes its Reports.
func scanForReport(t *testing.T, c client.Client, cfg *rest.Config, plugins []review.Plugin, exceptions ...policies.Exception) *audit.Scan {
	t.Helper()
	lib, err := policies.ReadFS(library.FS(), "library", false)
	if err != nil {
		t.Fatal(err)
	}
	e, err := policies.New(context.Background(), policies.Options{Modules: lib})
	if err != nil {
		t.Fatal(err)
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, hc)
	if err != nil {
		t.Fatal(err)
	}
	eng := review.NewSet(e, exceptions, 1, plugins...)
	a, err := audit.New(audit.Options{Reader: c, Mapper: mapper, Policies: func() *review.Set { return eng },
		Sink: &audit.ReportWriter{Client: c, Mapper: mapper}})
	if err != nil {
		t.Fatal(err)
	}
	scan, err := a.ScanOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return scan
}

// createReport creates a report object from a YAML file.
func createReport(t *testing.T, c client.Client, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(data, &obj.Object); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %s: %v", path, err)
	}
}
