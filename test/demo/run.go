package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/test/cluster"
	"github.com/tollgate-dev/tollgate/test/proc"
)

// localEnv is the control plane and the Tollgate process serving it.
type localEnv struct {
	root     string
	dir      string
	cluster  *cluster.Cluster
	tollgate *proc.Process
	port     int
	images   *demoImages
	finops   *demoFinOps
	scanning *demoScanning
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mode := fs.String("mode", "demo", "demo (narrated tour, then stop) or dev (keep running until interrupted)")
	stateDir := fs.String("state-dir", "", "where the kubeconfig, logs and certificates go (default .tollgate/MODE in the repository); emptied first")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *mode != "demo" && *mode != "dev" {
		fmt.Fprintf(stderr, "demo: -mode %q: want demo or dev\n", *mode)
		return 2
	}
	env, err := start(ctx, *mode, *stateDir, stdout)
	if env != nil {
		defer env.stop(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}
	if *mode == "dev" {
		kubeconfig := rel(env.root, env.cluster.KubeconfigPath())
		fmt.Fprintf(stdout, "ready: Tollgate is enforcing on https://127.0.0.1:%d\n", env.port)
		fmt.Fprintf(stdout, "  export KUBECONFIG=%s\n  bin/k8s/kubectl apply -f test/demo/manifests/namespace.yaml\n", kubeconfig)
		fmt.Fprintf(stdout, "  logs: %s/tollgate.log, decisions: %s/decisions.log; Ctrl-C stops everything\n", rel(env.root, env.dir), rel(env.root, env.dir))
		fmt.Fprintf(stdout, "  console: bin/tollgate ui --kubeconfig %s (then open http://127.0.0.1:8087/)\n", kubeconfig)
		<-ctx.Done()
		return 0
	}
	return tour(ctx, env, stdout)
}

// stateDir is where a run keeps its files: dir if given, else
// .tollgate/MODE in the repository, so `make dev` always leaves its
// kubeconfig at .tollgate/dev/kubeconfig.
func stateDir(root, mode, dir string) (string, error) {
	if dir == "" {
		return filepath.Join(root, ".tollgate", mode), nil
	}
	return filepath.Abs(dir)
}

func start(ctx context.Context, mode, dir string, out io.Writer) (*localEnv, error) {
	root, err := cluster.RepoRoot()
	if err != nil {
		return nil, err
	}
	if dir, err = stateDir(root, mode, dir); err != nil {
		return nil, err
	}
	env := &localEnv{root: root, dir: dir}
	if err := os.RemoveAll(env.dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(env.dir, 0o755); err != nil {
		return nil, err
	}
	fmt.Fprintln(out, "Starting etcd, kube-apiserver and kube-controller-manager (built from the Go module proxy into bin/k8s) ...")
	cpLog, err := os.Create(filepath.Join(env.dir, "control-plane.log"))
	if err != nil {
		return nil, err
	}
	began := time.Now()
	env.cluster, err = cluster.Start(ctx, cluster.Options{
		ControllerManager: true,
		WebhookClientCert: true, // kube-apiserver presents a client certificate to the webhooks
		// Kyverno's CRDs too, so Kyverno policies can be applied with kubectl.
		CRDDirs: []string{filepath.Join(root, "charts", "tollgate", "crds"), filepath.Join(root, "charts", "tollgate", "crds", "kyverno"),
			filepath.Join(root, "scanners", "audit", "testdata"),
			// The database claim the golden-path steps price and cap.
			filepath.Join(root, "test", "demo", "manifests", "crds")},
		KubeconfigPath: filepath.Join(env.dir, "kubeconfig"),
		Log:            cpLog,
	})
	if err != nil {
		return nil, fmt.Errorf("starting the control plane: %w", err)
	}
	fmt.Fprintf(out, "  API server %s up in %.1fs\n", env.cluster.Server(), time.Since(began).Seconds())

	if env.images, err = startImages(ctx, env.dir); err != nil {
		return env, err
	}
	fmt.Fprintf(out, "  registry %s (Debian's docker-registry) with %s signed by a release key, and an unsigned image\n", env.images.reg.Host(), env.images.signed)

	if env.scanning, err = startScanning(ctx, env.dir, env.images.reg.Host()); err != nil {
		return env, err
	}
	fmt.Fprintf(out, "  and %s, with a vulnerability database (Trivy's format, planted advisories) beside it\n", env.scanning.image)
	if env.finops, err = startFinOps(env.dir); err != nil {
		return env, err
	}

	if env.port, err = proc.FreePort(); err != nil {
		return env, err
	}
	tlog, err := os.Create(filepath.Join(env.dir, "tollgate.log"))
	if err != nil {
		return env, err
	}
	args := []string{"serve",
		"--kubeconfig", env.cluster.KubeconfigPath(),
		"--host", "127.0.0.1", "--port", fmt.Sprint(env.port),
		"--webhook-url", fmt.Sprintf("https://127.0.0.1:%d", env.port),
		"--cert-dir", filepath.Join(env.dir, "certs"),
		"--config", filepath.Join(root, "test", "demo", "config.yaml"),
		"--prices", filepath.Join(root, "test", "demo", "prices.yaml"),
		"--decision-log", filepath.Join(env.dir, "decisions.log"),
		// Only the API server's client certificate gets a review.
		"--client-ca-file", env.cluster.WebhookClientCAFile(), "--client-name", cluster.WebhookClientName,
		"--allow-insecure-registries", // the demo registry speaks plain HTTP on loopback
		"--alert-routes", env.finops.routes, "--budget-scan-interval", "2s", "--cluster-name", "demo",
	}
	env.tollgate, err = proc.Start(filepath.Join(root, "bin", "tollgate"), append(args, env.scanning.serveArgs()...), nil, tlog)
	if err != nil {
		return env, fmt.Errorf("starting bin/tollgate (run make build): %w", err)
	}
	fmt.Fprintf(out, "Starting tollgate serve on https://127.0.0.1:%d (self-managed CA, webhooks registered by URL,\n  only the API server's client certificate admitted) ...\n", env.port)
	if err := env.waitEnforcing(ctx); err != nil {
		return env, fmt.Errorf("%w (see %s)", err, rel(root, filepath.Join(env.dir, "tollgate.log")))
	}
	fmt.Fprintf(out, "  enforcing after %.1fs\n\n", time.Since(began).Seconds())
	return env, nil
}

// waitEnforcing waits for /readyz and then for the API server to call the
// webhooks (it sees new webhook configurations a moment after they exist).
func (e *localEnv) waitEnforcing(ctx context.Context) error {
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // probing our own server
	deadline := time.Now().Add(2 * time.Minute)
	probe := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"probe","namespace":"default"},"spec":{"containers":[{"name":"c","image":"x:1","securityContext":{"privileged":true}}]}}`
	for time.Now().Before(deadline) {
		select {
		case <-e.tollgate.Done():
			return fmt.Errorf("tollgate serve exited: %w", e.tollgate.ExitErr())
		default:
		}
		resp, err := hc.Get(fmt.Sprintf("https://127.0.0.1:%d/readyz", e.port))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				_, stderr, err := e.cluster.KubectlWithStdin(ctx, probe, "create", "--dry-run=server", "-f", "-")
				if err != nil && strings.Contains(stderr, "tollgate denied") {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return errors.New("tollgate was not enforcing after 2 minutes")
}

// stop ends Tollgate (SIGTERM, then SIGKILL) and the control plane.
func (e *localEnv) stop(out io.Writer) {
	if e.tollgate != nil {
		if err := e.tollgate.Stop(10 * time.Second); err != nil {
			fmt.Fprintf(out, "stopping tollgate: %v\n", err)
		}
	}
	if e.images != nil {
		_ = e.images.reg.Stop()
	}
	if e.finops != nil {
		e.finops.receiver.stop()
	}
	if e.cluster != nil {
		if err := e.cluster.Stop(); err != nil {
			fmt.Fprintf(out, "stopping the control plane: %v\n", err)
		}
	}
	fmt.Fprintln(out, "Stopped tollgate, kube-controller-manager, kube-apiserver, etcd and the registry.")
}

// rel names p from the repository root, where the README's commands run,
// or absolutely when p lies outside it.
func rel(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return r
	}
	return p
}
