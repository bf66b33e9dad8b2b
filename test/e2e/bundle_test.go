package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tollgate-dev/tollgate/test/cluster"
)

// TestBundlePolicy loads a TollgatePolicy from an OPA bundle served over
// HTTP, pinned by digest, limited by match to one namespace.
func TestBundlePolicy(t *testing.T) {
	ctx := context.Background()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := os.ReadFile(filepath.Join(root, "policies", "testdata", "bundle.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(bundle) }))
	defer srv.Close()
	sum := sha256.Sum256(bundle)
	policy := `apiVersion: tollgate.dev/v1alpha1
kind: TollgatePolicy
metadata: {name: corp-registry}
spec:
  bundle: {url: %q, sha256: %q}
  match: {namespaces: [bundled]}
`
	teamNamespace(t, "bundled")
	teamNamespace(t, "unbundled")
	// A digest that does not match is refused, and says so.
	if _, _, err := apply(t, fmt.Sprintf(policy, srv.URL+"/bundle.tar.gz", strings.Repeat("0", 64))); err != nil {
		t.Fatal(err)
	}
	defer kubectl(t, "delete", "tollgatepolicy", "corp-registry")
	waitPolicyReady(t, "corp-registry", "False")
	if msg := kubectl(t, "get", "tollgatepolicy", "corp-registry", "-o", `jsonpath={.status.conditions[0].message}`); !strings.Contains(msg, "spec.bundle.sha256: the bundle's digest is "+hex.EncodeToString(sum[:])) {
		t.Fatalf("status message %q", msg)
	}
	if _, _, err := apply(t, fmt.Sprintf(policy, srv.URL+"/bundle.tar.gz", hex.EncodeToString(sum[:]))); err != nil {
		t.Fatal(err)
	}
	waitPolicyReady(t, "corp-registry", "True")
	if ids := kubectl(t, "get", "tollgatepolicy", "corp-registry", "-o", "jsonpath={.status.policies}"); ids != `["bundle-registry"]` {
		t.Fatalf("status.policies = %s", ids)
	}
	pod := func(ns string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "public-image", Namespace: ns},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "docker.io/library/nginx:1.27"}}},
		}
	}
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	eventually(t, 30*time.Second, func() error {
		_, err := env.kube.CoreV1().Pods("bundled").Create(ctx, pod("bundled"), dry)
		if err == nil || !strings.Contains(err.Error(), `[bundle-registry] spec.containers[0].image: image "docker.io/library/nginx:1.27" is not from registry.corp.example`) {
			return fmt.Errorf("in the matched namespace: %w", err)
		}
		return nil
	})
	if _, err := env.kube.CoreV1().Pods("unbundled").Create(ctx, pod("unbundled"), dry); err != nil {
		t.Fatalf("outside the match: %v", err)
	}
}
