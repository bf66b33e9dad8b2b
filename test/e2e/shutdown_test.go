package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/test/proc"
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

	logs := &proc.Buffer{}
	stop, port, err := startServer(ctx, serverOptions{
		name: "tollgate-drain", log: logs, decisions: &proc.Buffer{}, unmanaged: true,
		validateTimeout: 30,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	defer stop()
	hc := apiServerClient(t) // a certificate as the API server's, and a token for /metrics
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

	// Go's HTTP server drops a request it reads after a shutdown began (the
	// shutdown delay exists for that: the API server stops sending first),
	// so the stop comes once the handler has the request, as the
	// server's own in-flight gauge shows.
	type result struct {
		status int
		body   []byte
		err    error
		took   time.Duration
	}
	answered := make(chan result, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/validate", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		began := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			answered <- result{err: err, took: time.Since(began)}
			return
		}
		defer resp.Body.Close()
		out, err := io.ReadAll(resp.Body)
		answered <- result{resp.StatusCode, out, err, time.Since(began)}
	}()
	for inFlight(t, hc, base, "validate") < 1 {
		select {
		case r := <-answered:
			t.Fatalf("the request was answered before it could be seen in flight (%v): the slow policy is too quick", r.err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	r := <-answered
	out, took := r.body, r.took
	if r.err != nil {
		t.Fatalf("the in-flight request was cut after %s: %v\n%s", took, r.err, logs.String())
	}
	if r.status != http.StatusOK || !strings.Contains(string(out), `"uid":"drain-1"`) || !strings.Contains(string(out), `"allowed":true`) {
		t.Fatalf("in-flight request: HTTP %d %s", r.status, out)
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

// inFlight reads tollgate_admission_in_flight for a webhook off /metrics.
func inFlight(t *testing.T, hc *http.Client, base, webhook string) float64 {
	t.Helper()
	resp, err := hc.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	prefix := `tollgate_admission_in_flight{webhook="` + webhook + `"} `
	for line := range strings.SplitSeq(string(text), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return n
		}
	}
	return 0
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
