package fault

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/test/cluster"
	"github.com/tollgate-dev/tollgate/test/proc"
	"github.com/tollgate-dev/tollgate/webhook"
)

// Lease timings of every replica: a standby takes over at most
// leaseDuration after the leader's last renewal; the leader rides out an
// API server that is away for up to about renewDeadline.
const (
	leaseDuration = 12 * time.Second
	renewDeadline = 10 * time.Second
	retryPeriod   = time.Second
)

// serverNamespace is Tollgate's own namespace, where the lease lives.
const serverNamespace = "tollgate-system"

// faultConfig warns about mutable tags instead of denying them, so that
// the audit finds something to report on pods admission let through.
const faultConfig = `
policies:
  images-no-latest: {action: warn}
`

// faultPrices make a CPU core cost a cent a second, so that a Budget
// crosses its thresholds within a run.
const faultPrices = `
currencyCode: USD
CPU: "36"
RAM: "0"
GPU: "0"
storage: "0"
`

// env is what every fault run shares: one control plane, haproxy in front
// of the replicas' slots, an alert receiver and the files the replicas
// read.
var env struct {
	root      string
	cluster   *cluster.Cluster
	kube      *kubernetes.Clientset
	client    client.Client
	dir       string
	lbPort    int
	slots     []int // the replicas' ports, haproxy's servers
	haproxy   *proc.Process
	haLog     *proc.Buffer
	receiver  *receiver
	routes    string
	config    string
	prices    string
	mu        sync.Mutex
	replicas  map[int]*replica // by slot port
	nextIndex int
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "fault: "+format+"\n", args...)
		return 1
	}
	root, err := cluster.RepoRoot()
	if err != nil {
		return fail("%v", err)
	}
	env.root = root
	if _, err := os.Stat(filepath.Join(root, "bin", "tollgate")); err != nil {
		return fail("bin/tollgate is missing: run `make build` (the fault runs exec the real binary): %v", err)
	}
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		return fail("haproxy is missing: install Debian's haproxy (`make debs`): %v", err)
	}
	if env.dir, err = os.MkdirTemp("", "tollgate-fault-"); err != nil {
		return fail("%v", err)
	}
	defer os.RemoveAll(env.dir)

	clusterLog := &proc.Buffer{}
	c, err := cluster.Start(ctx, cluster.Options{
		CRDDirs: []string{filepath.Join(root, "charts", "tollgate", "crds"), filepath.Join(root, "scanners", "audit", "testdata")},
		Log:     clusterLog,
	})
	if err != nil {
		return fail("starting the control plane: %v", err)
	}
	defer c.Stop()
	env.cluster = c
	cfg := c.Config()
	cfg.WarningHandler = rest.NoWarnings{} // the audit run's pods are warned about by design
	if env.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return fail("%v", err)
	}
	if env.client, err = client.New(c.Config(), client.Options{Scheme: webhook.Scheme()}); err != nil {
		return fail("%v", err)
	}

	env.receiver = startReceiver()
	defer env.receiver.srv.Close()
	env.routes = filepath.Join(env.dir, "alert-routes.yaml")
	env.config = filepath.Join(env.dir, "config.yaml")
	if err := os.WriteFile(env.routes, []byte(`default: events
channels:
  events:
    type: cloudevents
    urlSecret: {namespace: tollgate-system, name: budget-webhooks, key: events}
`), 0o600); err != nil {
		return fail("%v", err)
	}
	if err := os.WriteFile(env.config, []byte(faultConfig), 0o600); err != nil {
		return fail("%v", err)
	}
	env.prices = filepath.Join(env.dir, "prices.yaml")
	if err := os.WriteFile(env.prices, []byte(faultPrices), 0o600); err != nil {
		return fail("%v", err)
	}
	if err := setupNamespaces(ctx); err != nil {
		return fail("%v", err)
	}

	// haproxy in front of three slots; two replicas fill two of them.
	if env.lbPort, err = proc.FreePort(); err != nil {
		return fail("%v", err)
	}
	for range 3 {
		p, err := proc.FreePort()
		if err != nil {
			return fail("%v", err)
		}
		env.slots = append(env.slots, p)
	}
	haCfg := filepath.Join(env.dir, "haproxy.cfg")
	if err := os.WriteFile(haCfg, []byte(haproxyConfig(env.lbPort, env.slots)), 0o600); err != nil {
		return fail("%v", err)
	}
	env.haLog = &proc.Buffer{}
	if env.haproxy, err = proc.Start(haproxy, []string{"-db", "-f", haCfg}, nil, env.haLog); err != nil {
		return fail("starting haproxy: %v", err)
	}
	defer env.haproxy.Stop(5 * time.Second)

	env.replicas = map[int]*replica{}
	defer stopReplicas()
	began := time.Now()
	if err := ensureReplicas(ctx, 2); err != nil {
		return fail("%v\nhaproxy: %s", err, env.haLog.String())
	}
	if err := waitEnforcing(ctx, time.Minute); err != nil {
		return fail("%v", err)
	}
	fmt.Fprintf(os.Stderr, "fault: two replicas behind haproxy enforcing after %.1fs\n", time.Since(began).Seconds())
	code := m.Run()
	if code != 0 {
		env.mu.Lock()
		for _, r := range env.replicas {
			fmt.Fprintf(os.Stderr, "--- %s log (last 6 KiB):\n%s\n", r.name, tail(r.log.String(), 6<<10))
		}
		env.mu.Unlock()
		fmt.Fprintf(os.Stderr, "--- haproxy log:\n%s\n", tail(env.haLog.String(), 4<<10))
	}
	return code
}

// haproxyConfig spreads TLS connections (passed through, as a Service
// does) over the slots whose /readyz answers 200.
func haproxyConfig(lb int, slots []int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `global
  maxconn 2000
defaults
  mode tcp
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  retries 1
frontend webhooks
  bind 127.0.0.1:%d
  default_backend tollgate
backend tollgate
  balance roundrobin
  option httpchk
  http-check send meth GET uri /readyz
  http-check expect status 200
  default-server check check-ssl verify none inter 500ms fall 2 rise 1
`, lb)
	for i, p := range slots {
		fmt.Fprintf(&b, "  server slot%d 127.0.0.1:%d\n", i, p)
	}
	return b.String()
}

// setupNamespaces creates the namespaces the runs use, with ownership
// labels, and the Secret holding the alert receiver's URL.
func setupNamespaces(ctx context.Context) error {
	for _, ns := range []string{serverNamespace, "load", "spend"} {
		obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
		if ns != serverNamespace {
			obj.Labels = ownership
			obj.Annotations = map[string]string{"tollgate.dev/budget-channel": "events"}
		}
		if _, err := env.kube.CoreV1().Namespaces().Create(ctx, obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	_, err := env.kube.CoreV1().Secrets(serverNamespace).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "budget-webhooks"},
		StringData: map[string]string{"events": env.receiver.srv.URL},
	}, metav1.CreateOptions{})
	return err
}

// ownership are the labels of every namespace the load runs in; the
// mutating webhook copies them onto each pod.
var ownership = map[string]string{"team": "payments", "owner": "alice", "cost-center": "CC-1234", "environment": "prod"}

// replica is one `tollgate serve` process in a slot behind haproxy.
type replica struct {
	name    string
	port    int
	proc    *proc.Process
	log     *proc.Buffer
	started time.Time
}

// startReplica runs bin/tollgate serve in a free slot, with leader
// election, the shared self-managed certificate and the webhooks
// registered at haproxy's port. extra flags are appended.
func startReplica(extra ...string) (*replica, error) {
	env.mu.Lock()
	defer env.mu.Unlock()
	port := 0
	for _, p := range env.slots {
		if env.replicas[p] == nil {
			port = p
			break
		}
	}
	if port == 0 {
		return nil, fmt.Errorf("no free slot for another replica")
	}
	env.nextIndex++
	name := fmt.Sprintf("replica-%d", env.nextIndex)
	dir := filepath.Join(env.dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	args := []string{"serve",
		"--kubeconfig", env.cluster.KubeconfigPath(),
		"--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--webhook-url", fmt.Sprintf("https://127.0.0.1:%d", env.lbPort),
		"--cert-dir", filepath.Join(dir, "certs"),
		"--namespace", serverNamespace,
		"--config", env.config,
		"--leader-elect",
		"--leader-elect-lease-duration", leaseDuration.String(),
		"--leader-elect-renew-deadline", renewDeadline.String(),
		"--leader-elect-retry-period", retryPeriod.String(),
		"--decision-log", filepath.Join(dir, "decisions.log"),
		"--alert-routes", env.routes, "--cluster-name", "fault", "--prices", env.prices,
		"--budget-scan-interval", "1s",
		"--audit-interval", "2s",
	}
	args = append(args, extra...)
	log := &proc.Buffer{}
	p, err := proc.Start(filepath.Join(env.root, "bin", "tollgate"), args, nil, log)
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	r := &replica{name: name, port: port, proc: p, log: log, started: time.Now()}
	env.replicas[port] = r
	return r, nil
}

// ensureReplicas starts replicas until n run, and waits until each
// answers /readyz.
func ensureReplicas(ctx context.Context, n int) error {
	for len(running()) < n {
		if _, err := startReplica(); err != nil {
			return err
		}
	}
	for _, r := range running() {
		if err := r.waitReady(ctx, 90*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// running returns the replicas whose process runs.
func running() []*replica {
	env.mu.Lock()
	defer env.mu.Unlock()
	var out []*replica
	for _, p := range env.slots {
		r := env.replicas[p]
		if r == nil {
			continue
		}
		select {
		case <-r.proc.Done():
			delete(env.replicas, p)
		default:
			out = append(out, r)
		}
	}
	return out
}

// kill sends SIGKILL and frees the slot.
func (r *replica) kill() {
	_ = r.proc.Stop(0)
	env.mu.Lock()
	delete(env.replicas, r.port)
	env.mu.Unlock()
}

func stopReplicas() {
	for _, r := range running() {
		_ = r.proc.Stop(10 * time.Second)
	}
}

// waitReady waits for the replica's /readyz.
func (r *replica) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		select {
		case <-r.proc.Done():
			return fmt.Errorf("%s exited: %w\n%s", r.name, r.proc.ExitErr(), tail(r.log.String(), 4<<10))
		default:
		}
		code, body := r.get(ctx, "/readyz")
		if code == http.StatusOK {
			return nil
		}
		last = strings.TrimSpace(body)
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %s (/readyz: %s)\n%s", r.name, timeout, last, tail(r.log.String(), 4<<10))
}

// insecure reads the replicas' own endpoints (their certificate is the
// one the test's API server trusts, not this process).
var insecure = &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{TLSClientConfig: insecureTLS()}}

// get fetches a path from the replica directly.
func (r *replica) get(ctx context.Context, path string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d%s", r.port, path), nil)
	if err != nil {
		return 0, err.Error()
	}
	resp, err := insecure.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	return resp.StatusCode, string(body)
}

// metric returns the sum of a replica's series whose line starts with
// prefix (a name, or a name and the start of its labels).
func (r *replica) metric(ctx context.Context, prefix string) float64 {
	_, text := r.get(ctx, "/metrics")
	return sumMetric(text, prefix)
}

func sumMetric(text, prefix string) float64 {
	total := 0.0
	for line := range strings.SplitSeq(text, "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			total += v
		}
	}
	return total
}

// isLeader reports whether the replica holds the lease, by its own
// leader-election gauge.
func (r *replica) isLeader(ctx context.Context) bool {
	return r.metric(ctx, `leader_election_master_status{name="tollgate-leader"}`) == 1
}

// leader waits until exactly one running replica says it leads, and
// returns it.
func leader(ctx context.Context, timeout time.Duration) (*replica, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var leaders []*replica
		for _, r := range running() {
			if r.isLeader(ctx) {
				leaders = append(leaders, r)
			}
		}
		if len(leaders) == 1 {
			return leaders[0], nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, fmt.Errorf("no single leader among %d replicas after %s", len(running()), timeout)
}

// waitEnforcing waits until a privileged pod is denied through haproxy.
func waitEnforcing(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		_, err = env.kube.CoreV1().Pods("load").Create(ctx, violatingPod("load", "probe"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil && strings.Contains(err.Error(), "pss-baseline-privileged") {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("the webhooks never enforced through haproxy: last answer %w", err)
}

// receiver is the budget alert route: a loopback CloudEvents receiver that
// records every event it is sent.
type receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	ids []string // every event's id, in arrival order
	// hold, when set, is called with each event's id before it is
	// answered; a run uses it to kill the sender mid-delivery.
	hold func(id string)
}

func startReceiver() *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var ev struct {
			ID          string `json:"id"`
			SpecVersion string `json:"specversion"`
			Type        string `json:"type"`
		}
		if err := json.NewDecoder(io.LimitReader(req.Body, 1<<20)).Decode(&ev); err != nil || ev.ID == "" || ev.SpecVersion != "1.0" {
			http.Error(w, "not a structured CloudEvent with an id", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.ids = append(r.ids, ev.ID)
		hold := r.hold
		r.mu.Unlock()
		if hold != nil {
			hold(ev.ID)
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	return r
}

// received returns the ids received so far.
func (r *receiver) received() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ids...)
}

func (r *receiver) setHold(f func(string)) {
	r.mu.Lock()
	r.hold = f
	r.mu.Unlock()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// logLines returns the JSON log lines of a replica whose msg matches re.
func logLines(log string, re *regexp.Regexp) []string {
	var out []string
	for line := range strings.SplitSeq(log, "\n") {
		var rec struct {
			Msg string `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && re.MatchString(rec.Msg) {
			out = append(out, line)
		}
	}
	return out
}
