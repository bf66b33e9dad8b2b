// Package e2e tests Tollgate's admission webhooks end to end: a real etcd,
// kube-apiserver and kube-controller-manager (test/cluster), `tollgate
// serve` registered by URL on loopback, and requests made the ways users
// make them — kubectl client-side and server-side apply, --dry-run=server,
// client-go, controllers creating pods, kubectl debug.
package e2e

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/cmd/tollgate/serve"
	"github.com/tollgate-dev/tollgate/finops"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/imagesig"
	"github.com/tollgate-dev/tollgate/policies/library"
	"github.com/tollgate-dev/tollgate/policies/ocisource"
	"github.com/tollgate-dev/tollgate/test/cluster"
	"github.com/tollgate-dev/tollgate/test/proc"
	"github.com/tollgate-dev/tollgate/webhook"
)

// env is the cluster and server every test shares.
var env struct {
	cluster   *cluster.Cluster
	kube      *kubernetes.Clientset
	client    client.Client
	decision  *proc.Buffer
	serverLog *proc.Buffer
	port      int
	// registryCalls counts the shared server's registry requests by
	// method and path.
	registryCalls *countingTransport
}

const e2eConfig = `
policies:
  images-no-latest: {action: warn}
exceptions:
  namespaces: [platform-exceptions]
gatekeeper:
  sync:
    - {version: v1, kind: Service}
# Every namespace is on the golden path, which changes nothing; the
# profiles test adds an innovation path as a TollgateProfile.
profiles:
  default: golden
  changers:
    users: [platform-admin]
  definitions:
    golden:
      description: the supported path
`

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root, err := cluster.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	logs := &proc.Buffer{}
	c, err := cluster.Start(ctx, cluster.Options{
		ControllerManager: true,
		WebhookClientCert: true,
		CRDDirs: []string{filepath.Join(root, "charts", "tollgate", "crds"), filepath.Join(root, "charts", "tollgate", "crds", "kyverno"),
			filepath.Join(root, "scanners", "audit", "testdata")},
		Log: logs,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the control plane: %v\n", err)
		return 1
	}
	defer c.Stop()
	env.cluster = c
	if env.kube, err = kubernetes.NewForConfig(c.Config()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if env.client, err = client.New(c.Config(), client.Options{Scheme: webhook.Scheme()}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	env.decision = &proc.Buffer{}
	env.registryCalls = &countingTransport{counts: map[string]int{}}
	serverLog := &proc.Buffer{}
	stop, port, err := startServer(ctx, serverOptions{name: "tollgate", log: serverLog, decisions: env.decision, registry: env.registryCalls})
	env.serverLog = serverLog
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting tollgate serve: %v\n%s\n", err, serverLog.String())
		return 1
	}
	env.port = port
	defer stop()
	if err := waitEnforcing(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "%v\nserver log:\n%s\n", err, serverLog.String())
		return 1
	}
	code := m.Run()
	if code != 0 {
		// The server's own lines, without the client libraries' DEBUG
		// chatter that would fill the tail.
		var own strings.Builder
		for line := range strings.Lines(serverLog.String()) {
			if !strings.Contains(line, `"level":"DEBUG`) {
				own.WriteString(line)
			}
		}
		fmt.Fprintf(os.Stderr, "--- tollgate serve log, DEBUG left out (last 16 KiB):\n%s\n", tail(own.String(), 16<<10))
	}
	return code
}

type serverOptions struct {
	name                     string
	log, decisions           *proc.Buffer
	caValidity, certValidity time.Duration
	publishGrace, certCheck  time.Duration
	unmanaged                bool  // do not register webhook configurations
	validateTimeout          int32 // default 8
	shutdownDelay            time.Duration
	registry                 http.RoundTripper // registry calls of image verification
	// clientCAFile is the client CA the server trusts (default: the
	// cluster's, whose certificate kube-apiserver presents).
	clientCAFile string
	// imageScan, when set, turns image scanning on.
	imageScan *serve.ImageScanOptions
	// configName names the server's TollgateConfig (default tollgate).
	configName string
	// noAudit leaves the background audit (and its Reports) to the shared
	// server.
	noAudit bool
	// auditReport, when set, names the Reports this server's audit writes
	// (beside the shared server's "tollgate"), every auditInterval.
	auditReport   string
	auditInterval time.Duration
	// config is the server's config file (default e2eConfig); prices its
	// price catalogue (default OpenCost's).
	config string
	prices *finops.Prices
	// namespaceDefaults, when set, turns the generated namespace
	// defaults on; every other server leaves them off, so that one
	// server's profiles are the only ones the cluster's namespaces get.
	namespaceDefaults *serve.NamespaceDefaultsOptions
	// scanInterval is how often the server's budget scanner runs (default
	// a day: Budget status is seeded by the tests).
	scanInterval time.Duration
	// rest is the API server the server serves (default the shared
	// cluster's); policySource, when set, is the policy set it follows.
	rest         *rest.Config
	policySource *ocisource.Options
	// cluster, when set, is the cluster the server serves instead (its
	// API server and webhook client CA), and clusterName its
	// --cluster-name (default none).
	cluster     *cluster.Cluster
	clusterName string
	// finops, when set, adjusts the server's FinOps options (Budgets
	// across clusters); metricsOpen serves /metrics without
	// authentication, for a test's Prometheus to scrape.
	finops      func(*serve.FinOpsOptions)
	metricsOpen bool
}

// startServer runs `tollgate serve` in-process on a free loopback port.
func startServer(ctx context.Context, o serverOptions) (stop func(), port int, err error) {
	lib, err := policies.ReadFS(library.FS(), "library", false)
	if err != nil {
		return nil, 0, err
	}
	cfg, err := policies.ParseConfig([]byte(cmp.Or(o.config, e2eConfig)))
	if err != nil {
		return nil, 0, err
	}
	if port, err = proc.FreePort(); err != nil {
		return nil, 0, err
	}
	certDir, err := os.MkdirTemp("", "tollgate-certs-")
	if err != nil {
		return nil, 0, err
	}
	target := cmp.Or(o.cluster, env.cluster)
	restConfig := o.rest
	switch {
	case o.cluster != nil:
		restConfig = o.cluster.Config()
	case restConfig == nil:
		restConfig = env.cluster.Config()
	}
	fo := serve.FinOpsOptions{ScanInterval: orDuration(o.scanInterval, 24*time.Hour), Prices: o.prices, Cluster: o.clusterName}
	if o.finops != nil {
		o.finops(&fo)
	}
	metricsAuth := ""
	if o.metricsOpen {
		metricsAuth = serve.MetricsAuthNone
	}
	ready := make(chan struct{})
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- serve.Run(sctx, serve.Options{
			REST: restConfig, Host: "127.0.0.1", Port: port,
			CertDir: certDir, CertMode: serve.CertModeSelf,
			CAValidity: o.caValidity, CertValidity: o.certValidity, CAPublishGrace: orDuration(o.publishGrace, time.Second),
			CertCheckInterval: orDuration(o.certCheck, time.Second),
			Namespace:         "tollgate-system", Name: o.name,
			ManageWebhooks: !o.unmanaged, URL: fmt.Sprintf("https://127.0.0.1:%d", port),
			MutateTimeout: max(o.validateTimeout, 5), ValidateTimeout: max(o.validateTimeout, 8), ShutdownDelay: o.shutdownDelay,
			Modules: lib, Config: cfg, ConfigName: cmp.Or(o.configName, "tollgate"),
			Images: imagesig.Options{Insecure: true, Transport: o.registry, CacheTTL: time.Hour},
			// Budget status is seeded by the tests; the scanner's own
			// accounting is tested in finops/budget.
			FinOps:            fo,
			MetricsAuth:       metricsAuth,
			ImageScan:         imageScanOptions(o.imageScan),
			Audit:             serve.AuditOptions{Disabled: o.noAudit, ReportName: o.auditReport, Interval: o.auditInterval},
			NamespaceDefaults: namespaceDefaultsOptions(o.namespaceDefaults),
			PolicySource:      o.policySource,
			DecisionLog:       webhook.NewChainedDecisionLog(o.decisions, webhook.DecisionLogOptions{Cluster: o.clusterName}),
			ClientAuth: &webhook.ClientAuthOptions{
				CAFile: cmp.Or(o.clientCAFile, target.WebhookClientCAFile()), Names: []string{cluster.WebhookClientName},
			},
			Logger: slog.New(slog.NewJSONHandler(o.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
			Ready:  func() { close(ready) },
		})
	}()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		return nil, 0, fmt.Errorf("tollgate serve exited: %w", err)
	case <-time.After(2 * time.Minute):
		cancel()
		return nil, 0, fmt.Errorf("tollgate serve not ready after 2 minutes")
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
			os.RemoveAll(certDir)
		})
	}, port, nil
}

// waitEnforcing waits until the API server calls the webhooks: its view of
// webhook configurations lags their creation a little.
func waitEnforcing(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	ns := `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"probe","labels":{"team":"platform","owner":"ops","cost-center":"CC-0001"}}}`
	if _, _, err := env.cluster.KubectlWithStdin(ctx, ns, "apply", "-f", "-"); err != nil {
		return err
	}
	for time.Now().Before(deadline) {
		_, stderr, err := env.cluster.KubectlWithStdin(ctx, privilegedPod("probe", "probe"), "apply", "--dry-run=server", "-f", "-")
		if err != nil && strings.Contains(stderr, "pss-baseline-privileged") {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("the API server never called the validating webhook")
}

func privilegedPod(ns, name string) string {
	return fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":%q,"namespace":%q},
	 "spec":{"containers":[{"name":"c","image":"nginx:1.27","securityContext":{"privileged":true}}]}}`, name, ns)
}

func imageScanOptions(o *serve.ImageScanOptions) serve.ImageScanOptions {
	if o == nil {
		return serve.ImageScanOptions{}
	}
	return *o
}

func namespaceDefaultsOptions(o *serve.NamespaceDefaultsOptions) serve.NamespaceDefaultsOptions {
	if o == nil {
		return serve.NamespaceDefaultsOptions{Disabled: true}
	}
	return *o
}

func orDuration(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// kubectl runs kubectl, failing the test on error.
func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, _, err := env.cluster.Kubectl(context.Background(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// console runs kubectl as someone types it at a terminal, in dir (the
// repository root when empty, so relative paths read as they would there),
// and returns the transcript the docs quote: "$ kubectl ARGS", then what
// kubectl printed, standard output and error interleaved in the order it
// wrote them. The error is kubectl's (a denial is one).
func console(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	return consoleIn(t, env.cluster, dir, args...)
}

// consoleIn is console against cluster c.
func consoleIn(t *testing.T, c *cluster.Cluster, dir string, args ...string) (string, error) {
	t.Helper()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return c.Transcript(ctx, cmp.Or(dir, root), "", args...)
}

// apply runs kubectl apply with a manifest on stdin and returns stdout,
// stderr and the error (denials are errors).
func apply(t *testing.T, manifest string, flags ...string) (string, string, error) {
	t.Helper()
	return env.cluster.KubectlWithStdin(context.Background(), manifest, append([]string{"apply", "-f", "-"}, flags...)...)
}

// eventually retries f until it returns nil or the deadline passes.
var eventually = proc.Eventually

// teamNamespace creates a namespace with ownership labels.
func teamNamespace(t *testing.T, name string) {
	t.Helper()
	ns := fmt.Sprintf(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":%q,"labels":{"team":"payments","owner":"alice","cost-center":"CC-1234","environment":"prod"}}}`, name)
	if _, _, err := apply(t, ns); err != nil {
		t.Fatal(err)
	}
}

// countingTransport counts registry requests ("HEAD /v2/team/app/manifests/1.0").
type countingTransport struct {
	mu     sync.Mutex
	counts map[string]int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.counts[r.Method+" "+r.URL.Path]++
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

// count returns the requests whose "METHOD path" has the prefix.
func (c *countingTransport) count(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k, v := range c.counts {
		if strings.HasPrefix(k, prefix) {
			n += v
		}
	}
	return n
}
