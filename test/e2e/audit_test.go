package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestBackgroundAuditThroughTheServer: what admission only warned about
// is recorded by the server's background audit in the namespace's
// openreports.io Report, rescanned when policies change.
func TestBackgroundAuditThroughTheServer(t *testing.T) {
	ctx := context.Background()
	teamNamespace(t, "audited")
	deploy := `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"worker","namespace":"audited"},
	 "spec":{"selector":{"matchLabels":{"app":"worker"}},"template":{"metadata":{"labels":{"app":"worker"}},
	  "spec":{"containers":[{"name":"w","image":"ghcr.io/corp/worker:latest"}]}}}}`
	if _, stderr, err := apply(t, deploy); err != nil || !strings.Contains(stderr, "images-no-latest") {
		t.Fatalf("the latest tag is warned about at admission: %v\n%s", err, stderr)
	}
	// A policy change makes the audit rescan.
	if _, _, err := apply(t, strings.Replace(slowPolicy, "name: slow", "name: audit-trigger", 1)); err != nil {
		t.Fatal(err)
	}
	defer kubectl(t, "delete", "tollgatepolicy", "audit-trigger", "--ignore-not-found")
	defer func() {
		if t.Failed() {
			for _, line := range strings.Split(env.serverLog.String(), "\n") {
				if strings.Contains(line, "audit") {
					t.Log(line)
				}
			}
		}
	}()
	eventually(t, 3*time.Minute, func() error {
		results, err := reportResults(ctx, "audited", "tollgate")
		if err != nil {
			return err
		}
		for _, res := range results {
			if res["policy"] == "images-no-latest" && res["result"] == "warn" && strings.Contains(fmt.Sprint(res["resources"]), "worker") {
				return nil
			}
		}
		return fmt.Errorf("no images-no-latest result for worker among %d results", len(results))
	})
}

// reportResults reads the findings of the openreports.io Report name in
// namespace ns, as the audit wrote them (not the pass entries that name
// examples of what passed).
func reportResults(ctx context.Context, ns, name string) ([]map[string]any, error) {
	r := &unstructured.Unstructured{}
	r.SetGroupVersionKind(schema.GroupVersionKind{Group: "openreports.io", Version: "v1alpha1", Kind: "Report"})
	if err := env.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, r); err != nil {
		return nil, err
	}
	list, _, _ := unstructured.NestedSlice(r.Object, "results")
	results := make([]map[string]any, 0, len(list))
	for _, x := range list {
		if res, ok := x.(map[string]any); ok && res["result"] != "pass" {
			results = append(results, res)
		}
	}
	return results, nil
}
