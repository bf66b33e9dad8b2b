package cli

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/test/cluster"
	"github.com/tollgate-dev/tollgate/webhook"
)

// TestCostLive: `tollgate cost` against the real API server — running
// pods priced by their requests with OpenCost's default prices, grouped,
// with the Budgets beside them; bad flags and an unreachable cluster are
// usage errors.
func TestCostLive(t *testing.T) {
	ctx := context.Background()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := cluster.Start(ctx, cluster.Options{CRDDirs: []string{filepath.Join(root, "charts", "tollgate", "crds")}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Stop()
	c, err := client.New(cl.Config(), client.Options{Scheme: webhook.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"shop", "search"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"team": ns + "-team"}}}); err != nil {
			t.Fatal(err)
		}
	}
	pod := func(ns, name, cpu, mem string, phase corev1.PodPhase) {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x:1", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)}}}}}}
		if err := c.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		p.Status.Phase = phase
		if err := c.Status().Update(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	// shop: 1 core and 2 GiB running = (0.031611 + 2 × 0.004237) × 730
	// = 0.040085 × 730 = $29.26/month; its pending pod costs nothing.
	pod("shop", "web", "1", "2Gi", corev1.PodRunning)
	pod("shop", "pending", "4", "8Gi", corev1.PodPending)
	// search: 0.5 core and 1 GiB = (0.0158055 + 0.004237) × 730 = $14.63.
	pod("search", "idx", "500m", "1Gi", corev1.PodRunning)
	b := &v1alpha1.Budget{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "monthly"}, Spec: v1alpha1.BudgetSpec{Amount: "50"}}
	if err := c.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	b.Status = v1alpha1.BudgetStatus{Scope: "namespace shop", Spend: "12.40", Forecast: "29.26", Utilization: "25%", AlertedSummary: ""}
	if err := c.Status().Update(ctx, b); err != nil {
		t.Fatal(err)
	}
	kc := cl.KubeconfigPath()

	code, out, stderr := run(t, "", "cost", "--kubeconfig", kc)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"NAMESPACE", "shop", "29.26", "search", "14.63", "TOTAL (USD)", "43.89", "shop/monthly", "namespace shop", "12.40", "50 USD"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = run(t, "", "cost", "--kubeconfig", kc, "--by", "team", "--format", "json")
	var rep struct {
		Groups []struct {
			Name    string `json:"name"`
			Monthly struct {
				Total float64 `json:"total"`
			} `json:"monthly"`
		} `json:"groups"`
		Budgets []struct{ Spend string } `json:"budgets"`
	}
	if err := json.Unmarshal([]byte(out), &rep); code != ExitOK || err != nil {
		t.Fatalf("json: exit %d, %v\n%s", code, err, out)
	}
	if len(rep.Groups) != 2 || rep.Groups[0].Name != "search-team" || int(rep.Groups[1].Monthly.Total*100) != 2926 || len(rep.Budgets) != 1 {
		t.Errorf("by team: %+v", rep)
	}
	code, out, _ = run(t, "", "cost", "--kubeconfig", kc, "--by", "label:team", "--format", "csv")
	if code != ExitOK || !strings.HasPrefix(out, "label:team,pods,hourly,monthly,") || !strings.Contains(out, "shop-team,1,0.0401,29.26,") {
		t.Errorf("csv: exit %d\n%s", code, out)
	}

	for _, bad := range [][]string{
		{"cost", "--kubeconfig", kc, "--by", "planet"},
		{"cost", "--kubeconfig", kc, "--format", "pdf"},
		{"cost", "--kubeconfig", kc, "--by", "label:"},
		{"cost", "--kubeconfig", filepath.Join(t.TempDir(), "missing")},
		{"cost", "--kubeconfig", kc, "--prometheus", "::bad"},
	} {
		if code, _, stderr := run(t, "", bad...); code != ExitUsage || !strings.Contains(stderr, "tollgate:") {
			t.Errorf("%v: exit %d, %s", bad, code, stderr)
		}
	}
}
