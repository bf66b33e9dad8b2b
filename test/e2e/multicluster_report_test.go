package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/compliance"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/library"
	"github.com/tollgate-dev/tollgate/test/cluster"
	"github.com/tollgate-dev/tollgate/test/proc"
	"github.com/tollgate-dev/tollgate/webhook"
)

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// TestMultiClusterReport: two real API servers, each with its own
// tollgate serve and background audit. Both run a hardened workload; a
// privileged one exists in cluster b only. `tollgate report --cluster a=... --cluster b=...` gives
// one report: both clusters with their identity and policy-set digest,
// the failure attributed to b, the control failed overall and passed in
// a; b's decision-log lines name b and the policy set that judged. A
// third cluster that cannot be reached stops the report unless
// --allow-missing, which names it.
func TestMultiClusterReport(t *testing.T) {
	ctx := context.Background()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bLog := &proc.Buffer{}
	b, err := cluster.Start(ctx, cluster.Options{
		WebhookClientCert: true,
		CRDDirs:           []string{filepath.Join(root, "charts", "tollgate", "crds"), filepath.Join(root, "scanners", "audit", "testdata")},
		Log:               bLog,
	})
	if err != nil {
		t.Fatalf("starting cluster b: %v", err)
	}
	defer b.Stop()

	// The hardened workload (test/manifests/hardened.yaml) in namespace
	// fleet-shop of both clusters.
	hardenedYAML, err := os.ReadFile(filepath.Join(root, "test", "manifests", "hardened.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	hardened := strings.NewReplacer("name: shop\n", "name: fleet-shop\n", "namespace: shop\n", "namespace: fleet-shop\n").Replace(string(hardenedYAML))
	for name, c := range map[string]*cluster.Cluster{"a": env.cluster, "b": b} {
		if _, stderr, err := c.KubectlWithStdin(ctx, hardened, "apply", "-f", "-"); err != nil {
			t.Fatalf("seeding cluster %s: %v\n%s", name, err, stderr)
		}
	}
	defer kubectl(t, "delete", "namespace", "fleet-shop", "--ignore-not-found", "--wait=false")
	// The privileged workload goes in before b's webhooks exist, as in a
	// cluster Tollgate was installed into later: only the audit finds it.
	agent := `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"node-agent","namespace":"fleet-shop","labels":{"team":"payments","owner":"alice","cost-center":"CC-1234"}},
	 "spec":{"selector":{"matchLabels":{"app":"node-agent"}},"template":{"metadata":{"labels":{"app":"node-agent"}},
	  "spec":{"containers":[{"name":"agent","image":"registry.corp.example/ops/node-agent:2.1","securityContext":{"privileged":true}}]}}}}`
	if _, stderr, err := b.KubectlWithStdin(ctx, agent, "apply", "-f", "-"); err != nil {
		t.Fatalf("seeding cluster b: %v\n%s", err, stderr)
	}
	// a's audit scans every 10 minutes and whenever what it judges with
	// changes: a TollgateException (outside the namespaces the config
	// designates, so not in force) makes it scan the new workload now.
	rescan := `{"apiVersion":"tollgate.dev/v1alpha1","kind":"TollgateException","metadata":{"name":"fleet-rescan","namespace":"fleet-shop"},
	 "spec":{"policies":["images-no-latest"],"match":{"names":["none"]},"reason":"makes the audit rescan","ticket":"OPS-1","approver":"platform@corp.example",
	  "expiry":"` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `"}}`
	if _, stderr, err := apply(t, rescan); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}

	serverLog, decisions := &proc.Buffer{}, &proc.Buffer{}
	stop, _, err := startServer(ctx, serverOptions{name: "tollgate", cluster: b, clusterName: "b", log: serverLog, decisions: decisions, auditInterval: 10 * time.Second})
	if err != nil {
		t.Fatalf("starting tollgate serve on b: %v\n%s", err, serverLog.String())
	}
	defer stop()
	defer func() {
		if t.Failed() {
			t.Logf("tollgate serve on b (last 8 KiB):\n%s", tail(serverLog.String(), 8<<10))
		}
	}()

	// b's server loads the library alone: its policy set is the
	// library's modules digest.
	lib, err := policies.ReadFS(library.FS(), "library", false)
	if err != nil {
		t.Fatal(err)
	}
	libSet := policies.ModulesDigest(lib)

	bClient, err := client.New(b.Config(), client.Options{Scheme: webhook.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	// Each audit has written its Reports, naming the policy set (and b's
	// its cluster).
	annotations := func(c client.Client, kind, ns, name string) (map[string]string, error) {
		r := &unstructured.Unstructured{}
		r.SetGroupVersionKind(schema.GroupVersionKind{Group: "openreports.io", Version: "v1alpha1", Kind: kind})
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, r); err != nil {
			return nil, err
		}
		return r.GetAnnotations(), nil
	}
	eventually(t, 2*time.Minute, func() error {
		anns, err := annotations(bClient, "Report", "fleet-shop", "tollgate")
		if err != nil {
			return err
		}
		if anns[compliance.AnnotationCluster] != "b" || anns[compliance.AnnotationPolicySet] != libSet {
			return fmt.Errorf("b's Report annotations %v, want cluster b and policy set %s", anns, libSet)
		}
		return nil
	})
	eventually(t, 2*time.Minute, func() error {
		anns, err := annotations(env.client, "Report", "fleet-shop", "tollgate")
		if err != nil {
			return err
		}
		if !digestRE.MatchString(anns[compliance.AnnotationPolicySet]) {
			return fmt.Errorf("a's ClusterReport names policy set %q", anns[compliance.AnnotationPolicySet])
		}
		return nil
	})

	// Admission in b: a privileged pod is denied, and the decision-log
	// line names b and the policy set that judged.
	eventually(t, time.Minute, func() error {
		_, stderr, err := b.KubectlWithStdin(ctx, privilegedPod("fleet-shop", "debug"), "apply", "-f", "-")
		if err == nil || !strings.Contains(stderr, "pss-baseline-privileged") {
			return fmt.Errorf("privileged pod in b not denied yet: %w %s", err, stderr)
		}
		return nil
	})
	var denial map[string]any
	eventually(t, 30*time.Second, func() error {
		sc := bufio.NewScanner(strings.NewReader(decisions.String()))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil && line["name"] == "debug" && line["allowed"] == false {
				denial = line
				t.Logf("decision-log line of b:\n%s", sc.Text())
				return nil
			}
		}
		return fmt.Errorf("no denial of pod debug in b's decision log")
	})
	if denial["cluster"] != "b" || denial["policySet"] != libSet {
		t.Errorf("decision-log line names cluster %v, policy set %v; want b, %s", denial["cluster"], denial["policySet"], libSet)
	}
	dir := t.TempDir()
	logFile := filepath.Join(dir, "b-decisions.jsonl")
	if err := os.WriteFile(logFile, []byte(decisions.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	bin := tollgateBinary(t)
	clusters := []string{"--cluster", "a=" + env.cluster.KubeconfigPath(), "--cluster", "b=" + b.KubeconfigPath()}
	out, err := exec.CommandContext(ctx, bin, append(append([]string{"report"}, clusters...), "--format", "json", "--decision-log", logFile, "--since", "1d")...).Output()
	if err != nil {
		t.Fatalf("tollgate report: %v\n%s", err, errText(err))
	}
	var r compliance.Report
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}

	if len(r.Clusters) != 2 || r.Clusters[0].Cluster.Name != "a" || r.Clusters[1].Cluster.Name != "b" {
		t.Fatalf("clusters %+v", r.Clusters)
	}
	for _, c := range r.Clusters {
		id := c.Cluster
		if id.Server == "" || id.KubernetesVersion == "" || id.UID == "" || len(c.Frameworks) != len(r.Frameworks) {
			t.Errorf("cluster %s: identity %+v, %d framework summaries", id.Name, id, len(c.Frameworks))
		}
		if len(id.PolicySets) != 1 || !digestRE.MatchString(id.PolicySets[0]) {
			t.Errorf("cluster %s names policy sets %v", id.Name, id.PolicySets)
		}
	}
	if r.Clusters[0].Cluster.Server == r.Clusters[1].Cluster.Server || r.Clusters[0].Cluster.UID == r.Clusters[1].Cluster.UID {
		t.Errorf("the two clusters have one identity: %+v, %+v", r.Clusters[0].Cluster, r.Clusters[1].Cluster)
	}
	if got := r.Clusters[1].Cluster.PolicySets; !slices.Equal(got, []string{libSet}) {
		t.Errorf("b's policy set %v, want the library's %s", got, libSet)
	}

	if j, err := json.MarshalIndent(struct {
		Cluster compliance.Cluster `json:"cluster"`
		PSS     any                `json:"pss"`
	}{r.Clusters[1].Cluster, r.Clusters[1].Frameworks[slices.IndexFunc(r.Frameworks, func(f compliance.FrameworkResult) bool { return f.ID == "pss" })]}, "", "  "); err == nil {
		t.Logf("the JSON report's breakdown of b (identity and pss summary):\n%s", j)
	}
	var privileged *compliance.ControlResult
	for i := range r.Frameworks {
		for j := range r.Frameworks[i].Controls {
			if c := &r.Frameworks[i].Controls[j]; r.Frameworks[i].ID == "pss" && c.ID == "baseline/privileged-containers" {
				privileged = c
			}
		}
	}
	if privileged == nil {
		t.Fatal("no pss control baseline/privileged-containers")
	}
	if privileged.Verdict != compliance.VerdictFailed {
		t.Errorf("privileged containers: %s overall, want failed", privileged.Verdict)
	}
	// a is the shared cluster, where other tests leave privileged
	// workloads of their own: only b's verdict is known here.
	want := compliance.ClusterVerdict{Cluster: "b", Verdict: compliance.VerdictFailed, Failures: 1}
	if i := slices.IndexFunc(privileged.Clusters, func(v compliance.ClusterVerdict) bool { return v.Cluster == "b" }); i < 0 || !gocmp.Equal(want, privileged.Clusters[i]) {
		t.Errorf("privileged containers per cluster: %+v, want b %+v", privileged.Clusters, want)
	}
	agentFailure := false
	for _, f := range privileged.Failures {
		if f.Resource.Namespace == "fleet-shop" && f.Cluster != "b" {
			t.Errorf("failure on %s attributed to cluster %q", f.Resource, f.Cluster)
		}
		agentFailure = agentFailure || (f.Cluster == "b" && f.Resource.Namespace == "fleet-shop" && f.Resource.Name == "node-agent")
	}
	if !agentFailure {
		t.Errorf("node-agent is not among the failures: %+v", privileged.Failures)
	}

	// The decision log is counted per cluster with its policy set.
	if r.Denials == nil || !slices.ContainsFunc(r.Denials.Clusters, func(c compliance.ClusterDecisions) bool {
		return c.Cluster == "b" && c.Denied >= 1 && slices.Equal(c.PolicySets, []string{libSet})
	}) {
		t.Errorf("denials per cluster: %+v", r.Denials)
	}

	// The Markdown report and the summary, for the documentation.
	md, err := exec.CommandContext(ctx, bin, append(append([]string{"report"}, clusters...), "--framework", "pss", "--format", "markdown")...).Output()
	if err != nil {
		t.Fatalf("tollgate report --format markdown: %v\n%s", err, errText(err))
	}
	text := string(md)
	if i := strings.Index(text, "## Clusters"); i >= 0 {
		end := strings.Index(text[i:], "\n## Pod Security")
		if end < 0 {
			end = len(text) - i
		}
		t.Logf("tollgate report --framework pss, Clusters section:\n%s", text[i:i+end])
	} else {
		t.Errorf("the Markdown report has no Clusters section:\n%s", text)
	}
	if i := strings.Index(text, "### baseline/privileged-containers"); i >= 0 {
		t.Logf("the failing control:\n%s", text[i:min(len(text), i+900)])
	}

	// The same report from the central cluster (a): the clusters'
	// kubeconfigs in its Secrets, as a CronJob there would read them.
	for name, path := range map[string]string{"a": env.cluster.KubeconfigPath(), "b": b.KubeconfigPath()} {
		kc, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "tollgate-system", Name: "cluster-" + name, Labels: map[string]string{"tollgate.dev/cluster": name}},
			Data: map[string][]byte{"kubeconfig": kc}}
		if err := env.client.Create(ctx, sec); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = env.client.Delete(ctx, sec) }()
	}
	central := []string{"report", "--kubeconfig", env.cluster.KubeconfigPath(), "--clusters-from-secrets", "tollgate-system", "--format", "json"}
	out, err = exec.CommandContext(ctx, bin, central...).Output()
	if err != nil {
		t.Fatalf("tollgate report --clusters-from-secrets: %v\n%s", err, errText(err))
	}
	var fromCentral compliance.Report
	if err := json.Unmarshal(out, &fromCentral); err != nil {
		t.Fatal(err)
	}
	if len(fromCentral.Clusters) != 2 || fromCentral.Clusters[0].Cluster.UID != r.Clusters[0].Cluster.UID || fromCentral.Clusters[1].Cluster.UID != r.Clusters[1].Cluster.UID ||
		!slices.Equal(fromCentral.Clusters[1].Cluster.PolicySets, r.Clusters[1].Cluster.PolicySets) {
		t.Errorf("from the central cluster's Secrets: clusters %+v, want those of --cluster", fromCentral.Clusters)
	}
	// A cluster Secret without its kubeconfig: an error naming it, no report.
	broken := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "tollgate-system", Name: "cluster-edge", Labels: map[string]string{"tollgate.dev/cluster": "edge"}},
		Data: map[string][]byte{"config": []byte("x")}}
	if err := env.client.Create(ctx, broken); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = env.client.Delete(ctx, broken) }()
	if _, err := exec.CommandContext(ctx, bin, central...).Output(); err == nil || !strings.Contains(errText(err), "Secret tollgate-system/cluster-edge: no key kubeconfig holding the cluster's kubeconfig") {
		t.Errorf("a broken cluster Secret: %v, %s", err, errText(err))
	}

	// A cluster that cannot be reached: no report, unless --allow-missing.
	gone := filepath.Join(dir, "gone.kubeconfig")
	if err := os.WriteFile(gone, []byte(`apiVersion: v1
kind: Config
clusters: [{name: edge, cluster: {server: "https://127.0.0.1:1"}}]
contexts: [{name: edge, context: {cluster: edge, user: u}}]
current-context: edge
users: [{name: u, user: {token: x}}]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	output := filepath.Join(dir, "fleet.md")
	withEdge := append(slices.Clone(clusters), "--cluster", "edge="+gone, "--timeout", "10s", "--framework", "pss", "--output", output)
	cmd := exec.CommandContext(ctx, bin, append([]string{"report"}, withEdge...)...)
	if _, err := cmd.Output(); err == nil || !strings.Contains(errText(err), "--cluster edge="+gone) || !strings.Contains(errText(err), "no report written") {
		t.Errorf("an unreachable cluster: %v, %s", err, errText(err))
	} else {
		t.Logf("without --allow-missing: %s", errText(err))
	}
	if _, err := os.Stat(output); err == nil {
		t.Error("a report was written without the unreachable cluster")
	}
	summary, err := exec.CommandContext(ctx, bin, append([]string{"report", "--allow-missing"}, withEdge...)...).Output()
	if err != nil {
		t.Fatalf("with --allow-missing: %v\n%s", err, errText(err))
	}
	t.Logf("tollgate report --allow-missing:\n%s", summary)
	written, err := os.ReadFile(output)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(written), "Cluster edge (https://127.0.0.1:1) could not be read and is not in this report") ||
		!strings.Contains(string(summary), "cluster edge: not read") {
		t.Errorf("the report does not name the cluster not read:\n%s", written)
	}
}
