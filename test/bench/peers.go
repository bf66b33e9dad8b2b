package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tollgate-dev/tollgate/test/cluster"
	"github.com/tollgate-dev/tollgate/test/proc"
)

// The peers comparison (-peers) runs Tollgate, Kyverno and Gatekeeper one
// after another against the same local API server, with the same load and
// the same compliant single-container Pod, each with Pod Security
// Standards checks in its own format (test/bench/peers), and prints them
// side by side with the ratios.

// Modules of the peer engines, as test/tools/peers pins them.
const (
	kyvernoModule    = "github.com/kyverno/kyverno"
	gatekeeperModule = "github.com/open-policy-agent/gatekeeper/v3"
	peersToolsDir    = "test/tools/peers"
)

// Engine keys, in the order the comparison runs them. Tollgate runs before
// the peers' policies exist in the cluster: it would otherwise also
// enforce the Gatekeeper templates, as it enforces any it finds.
const (
	engineNone         = "none"
	engineTollgate     = "tollgate"
	engineTollgatePSS  = "tollgate-pss"
	engineKyverno      = "kyverno"
	engineGatekeeper   = "gatekeeper"
	engineCPUKey       = "engine"
	peerWebhookName    = "bench-peer"
	peerStartTimeout   = 3 * time.Minute
	peerEnforceTimeout = 2 * time.Minute
)

// allEngines lists every engine key in run order.
var allEngines = []string{engineNone, engineTollgate, engineTollgatePSS, engineKyverno, engineGatekeeper}

// engineTitles are the rows' names.
var engineTitles = map[string]string{
	engineNone:        "no webhook",
	engineTollgate:    "Tollgate, full library + mutation",
	engineTollgatePSS: "Tollgate, PSS policies only, no mutation",
	engineKyverno:     "Kyverno, PSS ValidatingPolicies (CEL)",
	engineGatekeeper:  "Gatekeeper, PSS ConstraintTemplates (Rego)",
}

// directConcurrencies are the closed-loop loads of the direct phases; the
// one at peerConcurrency is repeated -repeat times.
var directConcurrencies = []int{1, 4, 16, 64}

// peerConcurrency is the load of the repeated phases.
const peerConcurrency = 16

// parseEngines parses -engines: a comma-separated subset of allEngines,
// returned in run order.
func parseEngines(v string) ([]string, error) {
	if strings.TrimSpace(v) == "" {
		return nil, errors.New("want at least one engine")
	}
	seen := map[string]bool{}
	for _, e := range strings.Split(v, ",") {
		e = strings.TrimSpace(e)
		if !slices.Contains(allEngines, e) {
			return nil, fmt.Errorf("unknown engine %q: want some of %s", e, strings.Join(allEngines, ","))
		}
		seen[e] = true
	}
	var out []string
	for _, e := range allEngines {
		if seen[e] {
			out = append(out, e)
		}
	}
	return out, nil
}

// peerRun is a running engine: where to post reviews directly, how to
// trust it, and how to take it away again.
type peerRun struct {
	// process is the engine; nil for no webhook.
	process *proc.Process
	// validateURL is the engine's validating endpoint for Pods.
	validateURL string
	// caPEM verifies its serving certificate.
	caPEM []byte
	// policies counts the PSS checks it enforces.
	policies int
	// cleanup stops the engine and removes its webhooks and policies.
	cleanup func(ctx context.Context) error
}

// peerEnv is what every engine's start needs.
type peerEnv struct {
	root       string
	opts       options
	log        *slog.Logger
	cluster    *cluster.Cluster
	kube       kubernetes.Interface
	tollgate   string
	kyverno    string
	gatekeeper string
	modules    map[string]string // module path → directory in the module cache
	workDir    string
}

// peersBenchmark runs the comparison. It returns what it measured even when
// it fails part-way; an engine whose policies do not work is reported as
// skipped, with why, and the others still run.
func peersBenchmark(ctx context.Context, opts options, log *slog.Logger) (_ *peerResults, err error) {
	res := newPeerResults(opts)
	root, err := repoRoot()
	if err != nil {
		return res, err
	}
	env := &peerEnv{root: root, opts: opts, log: log}
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(root, p)
	}
	env.tollgate = abs(opts.tollgate)
	env.kyverno = filepath.Join(abs(opts.peersBin), "kyverno")
	env.gatekeeper = filepath.Join(abs(opts.peersBin), "gatekeeper")
	for _, b := range []struct {
		path, how string
		needed    bool
	}{
		{env.tollgate, "go build -o bin/tollgate ./cmd/tollgate", true},
		{env.kyverno, "make peers", slices.Contains(opts.engines, engineKyverno)},
		{env.gatekeeper, "make peers", slices.Contains(opts.engines, engineGatekeeper)},
	} {
		if !b.needed {
			continue
		}
		if fi, err := os.Stat(b.path); err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return res, fmt.Errorf("%s: not an executable file: build it with `%s`", b.path, b.how)
		}
	}
	if env.modules, err = moduleDirs(ctx, filepath.Join(root, peersToolsDir), kyvernoModule, gatekeeperModule); err != nil {
		return res, err
	}
	res.Versions = map[string]string{}
	for _, m := range []string{kyvernoModule, gatekeeperModule} {
		_, v, _ := strings.Cut(filepath.Base(env.modules[m]), "@")
		res.Versions[m] = v
	}
	crdDirs := []string{filepath.Join(root, "charts", "tollgate", "crds"),
		// Gatekeeper's CRDs as it installs them; its ConstraintTemplate
		// CRD replaces Tollgate's copy of it.
		filepath.Join(env.modules[gatekeeperModule], "deploy")}
	for _, d := range []string{"kyverno", "policies.kyverno.io", "policyreport", "reports"} {
		crdDirs = append(crdDirs, filepath.Join(env.modules[kyvernoModule], "config", "crds", d))
	}
	if env.workDir, err = os.MkdirTemp("", "tollgate-bench-peers-"); err != nil {
		return res, fmt.Errorf("creating the work directory: %w", err)
	}
	defer func() {
		if err := os.RemoveAll(env.workDir); err != nil {
			log.Warn("removing the work directory failed", "error", err)
		}
	}()

	log.Info("starting the control plane", "crdDirs", len(crdDirs))
	c, err := cluster.Start(ctx, cluster.Options{CRDDirs: crdDirs})
	if err != nil {
		return res, fmt.Errorf("starting the control plane: %w", err)
	}
	defer func() {
		if err := c.Stop(); err != nil {
			log.Warn("stopping the control plane failed", "error", err)
		}
	}()
	env.cluster = c
	b := &bench{opts: opts, log: log, results: newResults(opts)}
	if b.procs, err = childProcesses(); err != nil {
		log.Warn("no CPU figures for the control plane", "error", err)
	}
	cfg := c.Config()
	cfg.QPS, cfg.Burst = 1000, 1000
	if b.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return res, fmt.Errorf("creating the API client: %w", err)
	}
	env.kube = b.kube
	if _, err := b.kube.CoreV1().Namespaces().Create(ctx, benchNamespace(benchNS), metav1.CreateOptions{}); err != nil {
		return res, fmt.Errorf("creating namespace %s: %w", benchNS, err)
	}
	pod, err := b.kube.CoreV1().Pods(benchNS).Create(ctx, peerPod(benchNS, "bench-template"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		return res, fmt.Errorf("defaulting the benchmark pod (dry run): %w", err)
	}
	added := asAPIServerSends(pod)
	log.Info("the benchmark pod as the API server sends it", "completedWith", strings.Join(added, ", "))
	template, err := reviewTemplate(pod, corev1.SchemeGroupVersion.WithKind("Pod"), "pods", benchNS)
	if err != nil {
		return res, err
	}
	violating, err := reviewTemplate(violatingPod(benchNS), corev1.SchemeGroupVersion.WithKind("Pod"), "pods", benchNS)
	if err != nil {
		return res, err
	}
	creator := &podCreator{kube: b.kube, ns: benchNS, pod: peerPod}

	for _, key := range opts.engines {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		er := b.runEngine(ctx, env, key, template, violating, creator)
		res.Engines = append(res.Engines, er)
	}
	return res, ctx.Err()
}

// runEngine starts one engine, checks that its policies work, measures it
// and takes it away. A failure is recorded in the result.
func (b *bench) runEngine(ctx context.Context, env *peerEnv, key string, template, violating bodyTemplate, creator *podCreator) engineResult {
	er := engineResult{Key: key, Name: engineTitles[key]}
	b.log.Info("engine", "engine", key)
	run, err := startEngine(ctx, env, key)
	if err != nil {
		er.Skipped = err.Error()
		b.log.Error("engine not measured", "engine", key, "error", err)
		return er
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := run.cleanup(cctx); err != nil {
			b.log.Warn("removing the engine failed", "engine", key, "error", err)
		}
		if err := waitNotEnforcing(cctx, b.kube, benchNS); err != nil {
			b.log.Warn("webhooks still called after the engine was removed", "engine", key, "error", err)
		}
	}()
	er.Policies = run.policies
	b.results = &results{}
	// No webhook has no engine process: its CPU and memory stay empty.
	b.engine = &engineProc{name: engineCPUKey}
	if run.process != nil {
		b.engine.pid = run.process.Pid()
		if err := b.checkPolicies(ctx, run, template, violating); err != nil {
			er.Skipped = err.Error()
			b.log.Error("engine not measured: its policies do not work", "engine", key, "error", err)
			return er
		}
		if err := b.peerDirect(ctx, run, template); err != nil {
			er.Skipped = err.Error()
		}
	}
	if er.Skipped == "" {
		if err := b.peerAPI(ctx, creator, key != engineNone); err != nil {
			er.Skipped = err.Error()
		}
	}
	er.Phases = b.results.Phases
	er.summarise()
	return er
}

// checkPolicies proves, before anything is measured, that the engine
// admits the compliant Pod and denies, through the API server and
// directly, a Pod that breaks every check, naming each check.
func (b *bench) checkPolicies(ctx context.Context, run *peerRun, template, violating bodyTemplate) error {
	client, err := caClient(run.caPEM, 1, nil)
	if err != nil {
		return err
	}
	defer client.CloseIdleConnections()
	r := &reviewer{client: client, url: run.validateURL, templates: []bodyTemplate{template}}
	if err := r.do(ctx, b.seq.Add(1)); err != nil {
		return fmt.Errorf("the compliant Pod, posted to %s: %w", run.validateURL, err)
	}
	v := &reviewer{client: client, url: run.validateURL, templates: []bodyTemplate{violating}}
	err = v.do(ctx, b.seq.Add(1))
	if err == nil {
		return fmt.Errorf("a Pod breaking every Pod Security check, posted to %s, was allowed", run.validateURL)
	}
	var missing []string
	for _, id := range pssCheckIDs {
		if !strings.Contains(err.Error(), id) {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("a Pod breaking every Pod Security check, posted to %s, was denied without naming %s: %w",
			run.validateURL, strings.Join(missing, ", "), err)
	}
	return waitEnforcingPSS(ctx, b.kube, benchNS)
}

// peerDirect posts the Pod's review straight to the engine at each
// concurrency, the one at peerConcurrency -repeat times.
func (b *bench) peerDirect(ctx context.Context, run *peerRun, template bodyTemplate) error {
	client, err := caClient(run.caPEM, directWarmup.Concurrency, nil)
	if err != nil {
		return err
	}
	warm := &reviewer{client: client, url: run.validateURL, templates: []bodyTemplate{template}}
	b.log.Info("warming up", "load", directWarmup.String())
	if o := generate(ctx, directWarmup, &b.seq, warm.do); o.Errors > 0 {
		b.log.Warn("errors while warming up", "errors", o.Errors, "first", o.ErrorSamples[0])
	}
	client.CloseIdleConnections()
	for _, c := range directConcurrencies {
		n := 1
		if c == peerConcurrency {
			n = b.opts.repeat
		}
		for range n {
			if err := ctx.Err(); err != nil {
				return err
			}
			var dials atomic.Int64
			client, err := caClient(run.caPEM, c, &dials)
			if err != nil {
				return err
			}
			r := &reviewer{client: client, url: run.validateURL, templates: []bodyTemplate{template}}
			res := b.measure(ctx, "validate", "direct", load{Concurrency: c, Duration: b.opts.duration}, r.do)
			res.Connections = dials.Load()
			client.CloseIdleConnections()
			b.results.Phases = append(b.results.Phases, res)
		}
	}
	return nil
}

// peerAPI creates Pods through the API server at peerConcurrency, -repeat
// times, deleting them after each phase.
func (b *bench) peerAPI(ctx context.Context, creator *podCreator, webhooks bool) error {
	name := "pods, no webhooks"
	if webhooks {
		name = "pods, webhooks"
	}
	l := load{Concurrency: peerConcurrency, Duration: b.opts.duration}
	for range b.opts.repeat {
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
		if err := deletePods(ctx, b.kube, benchNS); err != nil {
			return err
		}
	}
	return nil
}

// startEngine starts the engine key with its policies and its webhooks
// registered, and waits until the API server calls them.
func startEngine(ctx context.Context, env *peerEnv, key string) (*peerRun, error) {
	switch key {
	case engineNone:
		return &peerRun{cleanup: func(context.Context) error { return nil }}, nil
	case engineTollgate:
		return startTollgate(ctx, env, false)
	case engineTollgatePSS:
		return startTollgate(ctx, env, true)
	case engineKyverno:
		return startKyverno(ctx, env)
	case engineGatekeeper:
		return startGatekeeper(ctx, env)
	}
	return nil, fmt.Errorf("unknown engine %q", key)
}

// moduleDirs returns the module cache directory of each module at the
// version the tools module in dir requires, downloading it if needed.
func moduleDirs(ctx context.Context, dir string, modules ...string) (map[string]string, error) {
	cmd := exec.CommandContext(ctx, "go", append([]string{"mod", "download", "-json"}, modules...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go mod download in %s: %w: %s", dir, err, strings.TrimSpace(stderr.String()))
	}
	dirs := map[string]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var m struct{ Path, Version, Dir, Error string }
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("go mod download in %s: %w", dir, err)
		}
		if m.Error != "" {
			return nil, fmt.Errorf("go mod download %s: %s", m.Path, m.Error)
		}
		dirs[m.Path] = m.Dir
	}
	for _, m := range modules {
		if dirs[m] == "" {
			return nil, fmt.Errorf("go mod download in %s: no directory for %s", dir, m)
		}
	}
	return dirs, nil
}

// registerWebhook registers a validating webhook for Pods in the
// benchmark's namespace, calling url and trusting caPEM.
func registerWebhook(ctx context.Context, kube kubernetes.Interface, url string, caPEM []byte) error {
	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: peerWebhookName},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    "pods.bench-peer.tollgate.dev",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caPEM},
			Rules:                   []admissionregistrationv1.RuleWithOperations{podRule()},
			FailurePolicy:           &fail,
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr(int32(10)),
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": benchNS}},
		}},
	}
	if _, err := kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, cfg, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("registering the webhook %s: %w", url, err)
	}
	return nil
}

// unregisterWebhook removes what registerWebhook registered.
func unregisterWebhook(ctx context.Context, kube kubernetes.Interface) error {
	err := kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(ctx, peerWebhookName, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing the webhook configuration %s: %w", peerWebhookName, err)
	}
	return nil
}

func podRule() admissionregistrationv1.RuleWithOperations {
	return admissionregistrationv1.RuleWithOperations{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
	}
}

// waitEnforcingPSS waits until a privileged Pod is denied through the API
// server by a check named pss-baseline-privileged, and the compliant Pod
// is admitted; both are dry runs.
func waitEnforcingPSS(ctx context.Context, kube kubernetes.Interface, ns string) error {
	ctx, cancel := context.WithTimeout(ctx, peerEnforceTimeout)
	defer cancel()
	pods := kube.CoreV1().Pods(ns)
	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	var last error
	for {
		_, err := pods.Create(ctx, privilegedPeerPod(ns, "bench-probe-privileged"), dryRun)
		switch {
		case err == nil:
			last = errors.New("a privileged pod was admitted")
		case strings.Contains(err.Error(), "pss-baseline-privileged"):
			if _, err := pods.Create(ctx, peerPod(ns, "bench-probe-compliant"), dryRun); err != nil {
				return fmt.Errorf("the compliant pod was denied through the API server: %w", err)
			}
			return nil
		default:
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the API server to deny a privileged pod: %w; last: %w", ctx.Err(), last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// waitNotEnforcing waits until a privileged Pod is admitted again (dry
// run): the engine's webhooks are gone from the API server's view.
func waitNotEnforcing(ctx context.Context, kube kubernetes.Interface, ns string) error {
	pods := kube.CoreV1().Pods(ns)
	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	for {
		_, err := pods.Create(ctx, privilegedPeerPod(ns, "bench-probe-privileged"), dryRun)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("a privileged pod is still denied: %w", err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// caClient is httpsClient trusting caPEM instead of a file.
func caClient(caPEM []byte, conns int, dials *atomic.Int64) (*http.Client, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("the engine's CA bundle holds no PEM certificate")
	}
	return rootsClient(roots, conns, dials), nil
}

// pollUntil calls f every interval until it returns nil, or returns its
// last error once ctx ends or the process exits.
func pollUntil(ctx context.Context, p *proc.Process, what string, f func() error) error {
	for {
		last := f()
		if last == nil {
			return nil
		}
		var done <-chan struct{}
		if p != nil {
			done = p.Done()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w; last: %w", what, ctx.Err(), last)
		case <-done:
			return fmt.Errorf("waiting for %s: the process exited: %w; last: %w", what, p.ExitErr(), last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
