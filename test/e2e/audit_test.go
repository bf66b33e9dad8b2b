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
		r := &unstructured.Unstructured{}
		r.SetGroupVersionKind(schema.GroupVersionKind{Group: "openreports.io", Version: "v1alpha1", Kind: "Report"})
		if err := env.client.Get(ctx, client.ObjectKey{Namespace: "audited", Name: "tollgate"}, r); err != nil {
			return err
		}
		results, _, _ := unstructured.NestedSlice(r.Object, "results")
		for _, x := range results {
			res := x.(map[string]any)
			if res["policy"] == "images-no-latest" && res["result"] == "warn" && strings.Contains(fmt.Sprint(res["resources"]), "worker") {
				return nil
			}
		}
		return fmt.Errorf("no images-no-latest result for worker among %d results", len(results))
	})
}
