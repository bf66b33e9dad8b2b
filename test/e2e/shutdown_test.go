package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"
)

// slowPolicy judges only example.com/Slow objects (which no API server
// serves, so no configuration ever sends them) and takes a while doing it.
const slowPolicy = `apiVersion: tollgate.dev/v1alpha1
kind: TollgatePolicy
metadata: {name: slow}
spec:
  rego: |
    # METADATA
    # custom:
    #   id: slow
    #   severity: low
    #   action: enforce
    #   scope: object
    #   kinds: [example.com/Slow]
    package corp.slow

    violation contains {"msg": "counted"} if {
      count([i | some i in numbers.range(1, 300000); i % 7 == 0]) < 0
    }
`

// TestReadinessAndGracefulShutdown: /readyz answers once policies are
// loaded; on stop the server turns not ready, keeps serving through the
// shutdown delay, and drains a request in flight instead of cutting it.
func TestReadinessAndGracefulShutdown(t *testing.T) {
	ctx := context.Background()
	if _, _, err := apply(t, slowPolicy); err != nil {
		t.Fatal(err)
	}
	defer kubectl(t, "delete", "tollgatepolicy", "slow")
	waitPolicyReady(t, "slow", "True")

	logs := &syncBuffer{}
	stop, port, err := startServer(ctx, serverOptions{
		name: "tollgate-drain", log: logs, decisions: &syncBuffer{}, unmanaged: true,
		validateTimeout: 30,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	defer stop()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the test's own server
	base := fmt.Sprintf("https://127.0.0.1:%d", port)
	if code := get(t, hc, base+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d after Ready", code)
	}
	if code := get(t, hc, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d", code)
	}
	// The loader picks the TollgatePolicy up on its first load.
	review := map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": map[string]any{
		"uid": "drain-1", "kind": map[string]any{"group": "example.com", "version": "v1", "kind": "Slow"},
		"resource":  map[string]any{"group": "example.com", "version": "v1", "resource": "slows"},
		"namespace": "shop", "name": "x", "operation": "CREATE", "userInfo": map[string]any{"username": "alice"},
		"object": map[string]any{"apiVersion": "example.com/v1", "kind": "Slow", "metadata": map[string]any{"name": "x", "namespace": "shop"}},
	}}
	teamNamespace(t, "shop")
	body, _ := json.Marshal(review)

	stopped := make(chan struct{})
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) {
		go func() { stop(); close(stopped) }() // stop the server while the request is in flight
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodPost, base+"/validate", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	began := time.Now()
	resp, err := hc.Do(req)
	took := time.Since(began)
	if err != nil {
		t.Fatalf("the in-flight request was cut: %v", err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(out), `"uid":"drain-1"`) || !strings.Contains(string(out), `"allowed":true`) {
		t.Fatalf("in-flight request: HTTP %d %s", resp.StatusCode, out)
	}
	if took < 100*time.Millisecond {
		t.Fatalf("the request took %s: too quick to show it was drained rather than finished before the stop", took)
	}
	t.Logf("in-flight request answered after %s while the server stopped", took)
	select {
	case <-stopped:
	case <-time.After(time.Minute):
		t.Fatal("the server did not stop")
	}
	if !strings.Contains(logs.String(), "stopping: not ready, draining") {
		t.Errorf("no drain in the server log")
	}
}

func get(t *testing.T, hc *http.Client, url string) int {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
