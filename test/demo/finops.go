package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// slackReceiver stands in for a Slack incoming webhook on loopback: it
// accepts Block Kit messages (text and blocks) and keeps their text.
type slackReceiver struct {
	srv *http.Server
	url string

	mu       sync.Mutex
	messages []string
}

func startReceiver() (*slackReceiver, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &slackReceiver{url: "http://" + l.Addr().String() + "/services/T0DEMO/B0ML/demo"}
	r.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		var msg struct {
			Text   string           `json:"text"`
			Blocks []map[string]any `json:"blocks"`
		}
		if err != nil || json.Unmarshal(body, &msg) != nil || msg.Text == "" || len(msg.Blocks) == 0 {
			http.Error(w, "invalid_payload", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.messages = append(r.messages, msg.Text)
		r.mu.Unlock()
		_, _ = w.Write([]byte("ok"))
	})}
	go func() {
		if err := r.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "demo receiver:", err)
		}
	}()
	return r, nil
}

func (r *slackReceiver) texts() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.messages...)
}

func (r *slackReceiver) stop() { _ = r.srv.Close() }

// demoFinOps is the receiver and the files the FinOps part of the tour
// applies (written beside the logs: they carry the receiver's port).
type demoFinOps struct {
	receiver                           *slackReceiver
	routes, namespace, trainer, budget string
	bigger                             string
}

func startFinOps(dir string) (*demoFinOps, error) {
	r, err := startReceiver()
	if err != nil {
		return nil, err
	}
	f := &demoFinOps{receiver: r,
		routes:    filepath.Join(dir, "alert-routes.yaml"),
		namespace: filepath.Join(dir, "ml-namespace.yaml"),
		trainer:   filepath.Join(dir, "trainer.yaml"),
		budget:    filepath.Join(dir, "ml-budget.yaml"),
		bigger:    filepath.Join(dir, "trainer-xl.yaml"),
	}
	files := map[string]string{
		f.routes: `# Where budget alerts go: channels by name, their webhook URLs in Secrets.
default: ml-slack
channels:
  ml-slack:
    type: slack
    urlSecret: {namespace: tollgate-system, name: budget-webhooks, key: ml-slack}
`,
		f.namespace: fmt.Sprintf(`# The ml team's namespace names its alert channel; the webhook URL is in a
# Secret in Tollgate's namespace, which the team cannot read.
apiVersion: v1
kind: Namespace
metadata:
  name: ml
  labels: {team: ml, owner: bob, cost-center: CC-4242, environment: prod}
  annotations: {tollgate.dev/budget-channel: ml-slack}
---
apiVersion: v1
kind: Secret
metadata: {name: budget-webhooks, namespace: tollgate-system}
stringData:
  ml-slack: %s
`, r.url),
		f.trainer: trainer("trainer", 4),
		f.bigger:  trainer("trainer-xl", 8),
		f.budget: `# A deliberately tiny monthly budget, so that this demo crosses its
# thresholds in seconds rather than weeks.
apiVersion: tollgate.dev/v1alpha1
kind: Budget
metadata: {name: monthly, namespace: ml}
spec:
  amount: "0.05"
  currency: USD
  period: monthly
  thresholds: [50, 80, 100]
  action: deny
`,
	}
	for path, text := range files {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			r.stop()
			return nil, err
		}
	}
	return f, nil
}

// trainer is a GPU training Deployment: replicas × 8 GPUs.
func trainer(name string, replicas int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %s, namespace: ml}
spec:
  replicas: %d
  selector: {matchLabels: {app: %s}}
  template:
    metadata: {labels: {app: %s}}
    spec:
      containers:
        - name: train
          image: ghcr.io/corp/trainer:2.1
          resources:
            requests: {cpu: "4", memory: 32Gi}
            limits: {memory: 32Gi, nvidia.com/gpu: 8}
`, name, replicas, name, name)
}

// markRunning sets the phase of the pods matching a selector to Running,
// as the kubelet this local control plane lacks would.
func markRunning(ctx context.Context, env *localEnv, ns, selector string, want int) (string, error) {
	deadline := time.Now().Add(90 * time.Second)
	for {
		stdout, stderr, err := env.cluster.Kubectl(ctx, "get", "pods", "-n", ns, "-l", selector, "-o", "name")
		if err != nil {
			return stderr, err
		}
		pods := strings.Fields(stdout)
		if len(pods) >= want {
			var out []string
			for _, p := range pods {
				o, e, err := env.cluster.Kubectl(ctx, "patch", "-n", ns, p, "--subresource=status", "--type=merge", "-p", `{"status":{"phase":"Running"}}`)
				if err != nil {
					return e, err
				}
				out = append(out, strings.TrimSpace(o))
			}
			return strings.Join(out, "\n"), nil
		}
		if time.Now().After(deadline) {
			return stdout, fmt.Errorf("%d pods, want %d", len(pods), want)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// tollgateCost runs `tollgate cost` against the demo's cluster.
func tollgateCost(ctx context.Context, env *localEnv) (string, error) {
	return tollgateRun(ctx, env, false, "cost", "--kubeconfig", env.cluster.KubeconfigPath())
}

// tollgateRun runs bin/tollgate. findingsOK accepts exit status 1 (a
// command that found violations, as an audit of the demo's cluster does).
func tollgateRun(ctx context.Context, env *localEnv, findingsOK bool, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(env.root, "bin", "tollgate"), args...)
	cmd.Dir = env.root // the paths it prints are the repository's, as the narration shows them
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if findingsOK && errors.As(err, &ee) && ee.ExitCode() == 1 {
		err = nil
	}
	return string(out), err
}
