package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tollgate-dev/tollgate/test/cluster"
	"github.com/tollgate-dev/tollgate/test/proc"
)

// benchNS is the labelled namespace every object of the benchmark lives in.
const benchNS = "bench"

// Loads offered in the warm-ups, which are not reported.
var (
	directWarmup = load{Concurrency: 4, Duration: 2 * time.Second}
	apiWarmup    = load{Concurrency: 4, Duration: time.Second}
)

// bench is one run: the cluster, the server and what was measured.
type bench struct {
	opts    options
	log     *slog.Logger
	kube    kubernetes.Interface
	procs   map[string]int // kube-apiserver and etcd
	server  *server
	seq     atomic.Uint64
	results *results
	// pprofPort is where the server serves /debug/pprof with -profile.
	pprofPort int
	// metricsURL and certDir reach the server's /metrics.
	metricsURL, certDir string
	// engine, when set, is the process measured instead of tollgate
	// serve (the peers comparison).
	engine *engineProc
}

// engineProc is a measured admission engine: its key in CPUCores and its
// process id.
type engineProc struct {
	name string
	pid  int
}

// measured returns the process a phase measures: the engine, or else
// tollgate serve.
func (b *bench) measured() engineProc {
	if b.engine != nil {
		return *b.engine
	}
	return engineProc{name: "tollgate", pid: b.server.Pid()}
}

// benchmark sets up, runs every phase and tears down. It returns what it
// measured even when it fails part-way.
func benchmark(ctx context.Context, opts options, log *slog.Logger) (_ *results, err error) {
	b := &bench{opts: opts, log: log, results: newResults(opts)}
	root, err := repoRoot()
	if err != nil {
		return b.results, err
	}
	binary := opts.tollgate
	if !filepath.IsAbs(binary) {
		binary = filepath.Join(root, binary)
	}
	if fi, err := os.Stat(binary); err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return b.results, fmt.Errorf("-tollgate %s: not an executable file: build it with `go build -o bin/tollgate ./cmd/tollgate`", binary)
	}

	log.Info("starting the control plane")
	// The control plane's output is discarded: a failed start quotes its
	// last lines.
	c, err := cluster.Start(ctx, cluster.Options{
		CRDDirs: []string{filepath.Join(root, "charts", "tollgate", "crds")},
	})
	if err != nil {
		return b.results, fmt.Errorf("starting the control plane: %w", err)
	}
	defer func() {
		if err := c.Stop(); err != nil {
			log.Warn("stopping the control plane failed", "error", err)
		}
	}()
	if b.procs, err = childProcesses(); err != nil {
		log.Warn("no CPU figures for the control plane", "error", err)
	}
	cfg := c.Config()
	cfg.QPS, cfg.Burst = 1000, 1000
	if b.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return b.results, fmt.Errorf("creating the API client: %w", err)
	}
	if _, err := b.kube.CoreV1().Namespaces().Create(ctx, benchNamespace(benchNS), metav1.CreateOptions{}); err != nil {
		return b.results, fmt.Errorf("creating namespace %s: %w", benchNS, err)
	}
	templates, err := reviewTemplates(ctx, b.kube, benchNS)
	if err != nil {
		return b.results, err
	}

	certDir, err := os.MkdirTemp("", "tollgate-bench-certs-")
	if err != nil {
		return b.results, fmt.Errorf("creating the certificate directory: %w", err)
	}
	defer func() {
		if err := os.RemoveAll(certDir); err != nil {
			log.Warn("removing the certificate directory failed", "error", err)
		}
	}()
	port, err := proc.FreePort()
	if err != nil {
		return b.results, err
	}
	serverLog := &tailBuffer{max: 16 << 10}
	b.metricsURL, b.certDir = fmt.Sprintf("https://127.0.0.1:%d/metrics", port), certDir
	srvOpts := serverOptions{Binary: binary, Kubeconfig: c.KubeconfigPath(), Port: port, CertDir: certDir, Log: serverLog, Args: opts.serveArgs}
	if opts.profileDir != "" {
		if err := os.MkdirAll(opts.profileDir, 0o755); err != nil {
			return b.results, fmt.Errorf("-profile: %w", err)
		}
		if srvOpts.PprofPort, err = proc.FreePort(); err != nil {
			return b.results, err
		}
		b.pprofPort = srvOpts.PprofPort
	}
	defer func() {
		if b.server != nil {
			if err := b.server.stop(); err != nil {
				log.Warn("stopping tollgate serve failed", "error", err)
			}
		}
		if err != nil && ctx.Err() == nil {
			err = fmt.Errorf("%w\nlast output of tollgate serve:\n%s", err, indent(serverLog.String()))
		}
	}()

	log.Info("starting tollgate serve", "port", port, "manageWebhooks", false)
	if b.server, err = startServer(ctx, srvOpts); err != nil {
		return b.results, err
	}
	if err := b.directPhases(ctx, certDir, port, templates); err != nil {
		return b.results, err
	}

	creator := &podCreator{kube: b.kube, ns: benchNS}
	if err := b.apiPhases(ctx, creator, false); err != nil {
		return b.results, err
	}
	log.Info("restarting tollgate serve", "port", port, "manageWebhooks", true)
	if err := b.server.stop(); err != nil {
		return b.results, fmt.Errorf("stopping tollgate serve: %w", err)
	}
	b.server = nil
	srvOpts.ManageWebhooks = true
	if b.server, err = startServer(ctx, srvOpts); err != nil {
		return b.results, err
	}
	if err := waitEnforcing(ctx, b.kube, benchNS); err != nil {
		return b.results, err
	}
	if err := b.apiPhases(ctx, creator, true); err != nil {
		return b.results, err
	}
	return b.results, nil
}

// directPhases post reviews straight to the server.
func (b *bench) directPhases(ctx context.Context, certDir string, port int, templates []bodyTemplate) error {
	base := fmt.Sprintf("https://127.0.0.1:%d", port)
	// reviewers returns a client and a reviewer for each endpoint, the
	// client with at most conns connections: one per worker. (With more
	// allowed, Go's transport dials spare connections while the workers
	// ramp up.) dials counts the connections opened.
	reviewers := func(conns int, dials *atomic.Int64) (*http.Client, *reviewer, *reviewer, error) {
		client, err := httpsClient(certDir, conns, dials)
		if err != nil {
			return nil, nil, nil, err
		}
		return client, &reviewer{client: client, url: base + "/validate", templates: templates},
			&reviewer{client: client, url: base + "/mutate", templates: templates}, nil
	}

	// Every kind through both endpoints once: a failure here is a setup
	// failure, not a measurement.
	client, validate, mutate, err := reviewers(directWarmup.Concurrency, nil)
	if err != nil {
		return err
	}
	for _, r := range []*reviewer{validate, mutate} {
		for range templates {
			if err := r.do(ctx, b.seq.Add(1)); err != nil {
				return fmt.Errorf("probing %s: %w", r.url, err)
			}
		}
	}
	b.log.Info("warming up", "load", directWarmup.String())
	if o := generate(ctx, directWarmup, &b.seq, validate.do); o.Errors > 0 {
		b.log.Warn("errors while warming up", "errors", o.Errors, "first", o.ErrorSamples[0])
	}
	client.CloseIdleConnections()

	d := b.opts.duration
	phases := []struct {
		endpoint string
		load     load
	}{
		{"validate", load{Concurrency: 1, Duration: d}},
		{"validate", load{Concurrency: 16, Duration: d}},
		{"validate", load{Concurrency: 64, Duration: d}},
		{"mutate", load{Concurrency: 16, Duration: d}},
		{"validate", load{Rate: b.opts.rate, Duration: d, Workers: 256}},
	}
	for _, p := range phases {
		if err := ctx.Err(); err != nil {
			return err
		}
		var dials atomic.Int64
		client, validate, mutate, err := reviewers(max(p.load.Concurrency, p.load.Workers), &dials)
		if err != nil {
			return err
		}
		r := validate
		if p.endpoint == "mutate" {
			r = mutate
		}
		res := b.measure(ctx, p.endpoint, "direct", p.load, r.do)
		res.Connections = dials.Load()
		client.CloseIdleConnections()
		b.results.Phases = append(b.results.Phases, res)
	}
	return ctx.Err()
}

// apiPhases create pods through the API server, with or without the
// webhooks registered, deleting them after each phase.
func (b *bench) apiPhases(ctx context.Context, creator *podCreator, webhooks bool) error {
	name := "pods, no webhooks"
	if webhooks {
		name = "pods, webhooks"
	}
	d := b.opts.duration
	for _, l := range []load{{Rate: b.opts.apiRate, Duration: d}, {Concurrency: 16, Duration: d}} {
		b.log.Info("warming up", "phase", name, "load", apiWarmup.String())
		if o := generate(ctx, apiWarmup, &b.seq, creator.do); o.Errors > 0 {
			b.log.Warn("errors while warming up", "errors", o.Errors, "first", o.ErrorSamples[0])
		}
		res := b.measure(ctx, name, "apiserver", l, creator.do)
		res.Webhooks = webhooks
		b.results.Phases = append(b.results.Phases, res)
		if err := ctx.Err(); err != nil {
			return err
		}
		start := time.Now()
		if err := deletePods(ctx, b.kube, benchNS); err != nil {
			return err
		}
		b.log.Info("deleted the pods", "phase", name, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// measure runs one phase and collects, besides the latencies, the server's
// memory at its end and the CPU every process used during it.
func (b *bench) measure(ctx context.Context, name, target string, l load, do request) phaseResult {
	b.log.Info("phase started", "phase", name, "target", target, "load", l.String())
	engine := b.measured()
	pids := map[string]int{engine.name: engine.pid, "bench": os.Getpid()}
	for _, p := range []string{"kube-apiserver", "etcd"} {
		if pid, ok := b.procs[p]; ok {
			pids[p] = pid
		}
	}
	peakReset := resetPeak(engine.pid) == nil
	cpu0 := cpuTimes(pids)
	host0, hostErr0 := hostBusy()
	profiled := b.profile(ctx, name, l)
	reviews0, reviewsErr0 := b.reviews(ctx)
	start := time.Now()
	o := generate(ctx, l, &b.seq, do)
	wall := time.Since(start)
	reviews1, reviewsErr1 := b.reviews(ctx)
	if err := <-profiled; err != nil {
		b.log.Warn("no CPU profile", "phase", name, "error", err)
	}
	cpu1 := cpuTimes(pids)
	host1, hostErr1 := hostBusy()

	res := phaseResult{
		Name: name, Target: target, Load: l.String(), Concurrency: l.Concurrency, Rate: l.Rate,
		Requests: o.Requests, Errors: o.Errors, ErrorSamples: o.ErrorSamples,
		ElapsedSeconds: o.Elapsed.Seconds(), PerSecond: o.Throughput(),
		LatencyMs: latencyMs{
			P50: ms(o.Percentile(0.50)), P95: ms(o.Percentile(0.95)),
			P99: ms(o.Percentile(0.99)), Max: ms(o.Percentile(1)),
		},
		CPUCores: map[string]float64{},
	}
	ours := 0.0
	for p, t1 := range cpu1 {
		if t0, ok := cpu0[p]; ok && wall > 0 {
			res.CPUCores[p] = (t1 - t0).Seconds() / wall.Seconds()
			ours += res.CPUCores[p]
		}
	}
	// Whatever else ran on the machine meanwhile competed for the same
	// CPUs.
	if hostErr0 == nil && hostErr1 == nil && wall > 0 {
		res.CPUCores["other"] = max((host1-host0).Seconds()/wall.Seconds()-ours, 0)
	}
	if err := errors.Join(reviewsErr0, reviewsErr1); err != nil {
		b.log.Warn("no review counts", "phase", name, "error", err)
	} else if reviews1 != nil {
		res.Reviews = map[string]float64{}
		for webhook, n := range reviews1 {
			if d := n - reviews0[webhook]; d > 0 {
				res.Reviews[webhook] = d
			}
		}
	}
	if m, err := readMemory(engine.pid); err == nil {
		res.ServerRSSBytes, res.ServerHWMBytes, res.ServerAnonBytes = m.RSS, m.HWM, m.Anon
		res.PeakSincePhaseStart = peakReset
	}
	args := []any{"phase", name, "load", res.Load, "requests", res.Requests, "errors", res.Errors,
		"perSecond", fmt.Sprintf("%.1f", res.PerSecond), "p50ms", res.LatencyMs.P50, "p99ms", res.LatencyMs.P99}
	if len(o.ErrorSamples) > 0 {
		args = append(args, "firstError", o.ErrorSamples[0])
	}
	b.log.Info("phase done", args...)
	return res
}

// cpuTimes reads the CPU time of each named process; those that cannot be
// read are left out.
func cpuTimes(pids map[string]int) map[string]time.Duration {
	out := make(map[string]time.Duration, len(pids))
	for name, pid := range pids {
		if t, err := cpuTime(pid); err == nil {
			out[name] = t
		}
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// repoRoot returns the nearest directory, from the working directory up,
// whose go.mod declares Tollgate's module.
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the repository root: %w", err)
	}
	for dir := wd; ; {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && declaresModule(data) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("finding the repository root: no go.mod of module github.com/tollgate-dev/tollgate in the working directory or above; run from the repository")
		}
		dir = parent
	}
}

// declaresModule reports whether a go.mod declares Tollgate's module.
func declaresModule(gomod []byte) bool {
	for line := range bytes.Lines(gomod) {
		if string(bytes.TrimSpace(line)) == "module github.com/tollgate-dev/tollgate" {
			return true
		}
	}
	return false
}

// indent prefixes every line of s with a tab.
func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return "\t(nothing)"
	}
	return "\t" + strings.ReplaceAll(s, "\n", "\n\t")
}

// hostCPUs is how many CPUs the benchmark, the server and the control plane
// share.
func hostCPUs() int { return runtime.NumCPU() }

// profile records a CPU profile of tollgate serve over most of the phase
// into -profile DIR, named after the phase and its load. The channel
// yields once the profile is written (at once without -profile).
func (b *bench) profile(ctx context.Context, name string, l load) <-chan error {
	done := make(chan error, 1)
	if b.pprofPort == 0 {
		done <- nil
		return done
	}
	seconds := max(int(b.opts.duration.Seconds())-1, 1)
	file := filepath.Join(b.opts.profileDir, strings.NewReplacer(" ", "-", "/", "-per-", ",", "").Replace(name+"-"+l.String())+".pprof")
	go func() {
		url := fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", b.pprofPort, seconds)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			done <- err
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			done <- fmt.Errorf("%s: %s", url, resp.Status)
			return
		}
		body, err := io.ReadAll(resp.Body)
		if err == nil {
			err = os.WriteFile(file, body, 0o644)
		}
		done <- err
	}()
	return done
}

// reviews reads how many admission requests the server has answered, by
// webhook (mutate, validate), from its tollgate_admission_requests_total.
// Without metricsURL (the peers comparison) there is nothing to read.
func (b *bench) reviews(ctx context.Context) (map[string]float64, error) {
	if b.metricsURL == "" {
		return nil, nil
	}
	client, err := httpsClient(b.certDir, 1, nil)
	if err != nil {
		return nil, err
	}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.metricsURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", b.metricsURL, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.metricsURL, err)
	}
	counts := map[string]float64{}
	if f := families["tollgate_admission_requests_total"]; f != nil {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "webhook" {
					counts[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return counts, nil
}

// childProcesses returns the pids of this process's children by the name
// of their executable.
func childProcesses() (map[string]int, error) {
	procs, err := proc.Processes()
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for pid, p := range procs {
		if p.PPID == os.Getpid() {
			out[p.Name] = pid
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no child processes found in /proc")
	}
	return out, nil
}
