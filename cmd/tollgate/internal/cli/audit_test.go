package cli

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/test/cluster"
	"github.com/tollgate-dev/tollgate/webhook"
)

// TestAuditCommand: `tollgate audit` on the real API server reports what
// already runs, honours the cluster's exceptions, exits 1 on enforced
// findings, and with --write-reports writes the Reports the server would.
func TestAuditCommand(t *testing.T) {
	ctx := context.Background()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := cluster.Start(ctx, cluster.Options{CRDDirs: []string{filepath.Join(root, "charts", "tollgate", "crds"), filepath.Join(root, "scanners", "audit", "testdata")}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Stop()
	c, err := client.New(cl.Config(), client.Options{Scheme: webhook.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "legacy"}}); err != nil {
		t.Fatal(err)
	}
	priv := true
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "legacy", Name: "agent"},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "agent"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Image: "corp/agent:1", SecurityContext: &corev1.SecurityContext{Privileged: &priv}}}}}}}
	if err := c.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	kc := cl.KubeconfigPath()
	code, out, stderr := run(t, "", "audit", "--kubeconfig", kc)
	if code != ExitFindings || !strings.Contains(out, "fail") || !strings.Contains(out, "pss-baseline-privileged") || !strings.Contains(out, "Deployment legacy/agent") {
		t.Fatalf("audit: exit %d\n%s%s", code, out, stderr)
	}
	code, out, _ = run(t, "", "audit", "--kubeconfig", kc, "--format", "json", "--write-reports")
	var scan struct {
		Scanned map[string]int
	}
	if err := json.Unmarshal([]byte(out), &scan); code != ExitFindings || err != nil || scan.Scanned["Deployment.apps"] != 1 {
		t.Fatalf("json: exit %d, %v\n%s", code, err, out)
	}
	r := &unstructured.Unstructured{}
	r.SetGroupVersionKind(schema.GroupVersionKind{Group: "openreports.io", Version: "v1alpha1", Kind: "Report"})
	if err := c.Get(ctx, client.ObjectKey{Namespace: "legacy", Name: "tollgate"}, r); err != nil {
		t.Fatalf("--write-reports wrote no Report: %v", err)
	}
	for _, bad := range [][]string{
		{"audit", "--kubeconfig", kc, "--format", "pdf"},
		{"audit", "--kubeconfig", filepath.Join(t.TempDir(), "missing")},
		{"audit", "--kubeconfig", kc, "--config", "/nonexistent.yaml"},
	} {
		if code, _, stderr := run(t, "", bad...); code != ExitUsage || !strings.Contains(stderr, "tollgate:") {
			t.Errorf("%v: exit %d %s", bad, code, stderr)
		}
	}
}
