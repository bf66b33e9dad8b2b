package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/cmd/tollgate/serve"
	"github.com/tollgate-dev/tollgate/finops/alerts"
	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/test/cluster"
	"github.com/tollgate-dev/tollgate/test/docexample"
	"github.com/tollgate-dev/tollgate/test/proc"
	promtest "github.com/tollgate-dev/tollgate/test/prometheus"
	"github.com/tollgate-dev/tollgate/webhook"
)

// TestBudgetsAcrossClusters runs two clusters and a real Prometheus
// scraping both Tollgates: east (the shared API server) is the central
// cluster and an execution cluster, west (an API server started here)
// mirrors the central Budgets through a proxy the test can cut. A team
// Budget across both clusters sums both clusters' spend, alerts once at
// each threshold, and budget-aware admission in either cluster denies the
// change that would take the team past it (west alone is far from it);
// a cluster the Budget names that reports nothing is named in its status;
// with the central cluster out of reach, west keeps denying on its mirror
// while the verdict is fresh, then warns instead.
func TestBudgetsAcrossClusters(t *testing.T) {
	ctx := context.Background()
	const maxAge = 8 * time.Second

	// The central cluster's alert receiver, and its route.
	events := newEventReceiver(t)
	if _, err := env.kube.CoreV1().Secrets("tollgate-system").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "fleet-webhooks"},
		StringData: map[string]string{"events": events.srv.URL},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	routes := &alerts.Routes{Default: "fleet", Channels: map[string]alerts.Channel{
		"fleet": {Type: alerts.CloudEvents, URLSecret: alerts.SecretKeyRef{Namespace: "tollgate-system", Name: "fleet-webhooks", Key: "events"}},
	}}

	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	west, err := cluster.Start(ctx, cluster.Options{
		WebhookClientCert: true,
		CRDDirs:           []string{filepath.Join(root, "charts", "tollgate", "crds"), filepath.Join(root, "charts", "tollgate", "crds", "kyverno")},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer west.Stop()
	westClient, err := client.New(west.Config(), client.Options{Scheme: webhook.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	// West reads the central cluster through a proxy: closing it puts the
	// central cluster out of reach.
	proxy := startProxy(t, env.cluster.Server())
	central := rest.CopyConfig(env.cluster.Config())
	central.Host = "https://" + proxy.addr()
	central.Timeout = 2 * time.Second

	promPort, err := proc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	promURL := fmt.Sprintf("http://127.0.0.1:%d", promPort)
	eastLog, westLog := &proc.Buffer{}, &proc.Buffer{}
	stopEast, eastPort, err := startServer(ctx, serverOptions{
		name: "tollgate-east", log: eastLog, decisions: &proc.Buffer{}, noAudit: true, clusterName: "east",
		scanInterval: time.Second, metricsOpen: true,
		finops: func(fo *serve.FinOpsOptions) {
			fo.FleetPrometheusURL, fo.Routes, fo.MaxVerdictAge = promURL, routes, maxAge
			fo.Alerts = alerts.Options{AttemptTimeout: 2 * time.Second, Attempts: 2, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}
		},
	})
	if err != nil {
		t.Fatalf("east: %v\n%s", err, eastLog.String())
	}
	defer removeServer(ctx, env.cluster, "tollgate-east", stopEast)
	stopWest, westPort, err := startServer(ctx, serverOptions{
		name: "tollgate-west", cluster: west, log: westLog, decisions: &proc.Buffer{}, noAudit: true, clusterName: "west",
		scanInterval: time.Second, metricsOpen: true,
		finops: func(fo *serve.FinOpsOptions) {
			fo.Central, fo.CentralName, fo.MirrorInterval, fo.MaxVerdictAge = central, "east", time.Second, maxAge
		},
	})
	if err != nil {
		t.Fatalf("west: %v\n%s", err, westLog.String())
	}
	defer removeServer(ctx, west, "tollgate-west", stopWest)
	prom, err := promtest.Start(ctx, promtest.Options{Port: promPort, ScrapeInterval: time.Second, Scrape: []promtest.Target{
		{Job: "tollgate-east", URL: fmt.Sprintf("https://127.0.0.1:%d/metrics", eastPort)},
		{Job: "tollgate-west", URL: fmt.Sprintf("https://127.0.0.1:%d/metrics", westPort)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer prom.Stop()
	defer func() {
		if t.Failed() {
			t.Logf("east server log:\n%s", tail(eastLog.String(), 8<<10))
			t.Logf("west server log:\n%s", tail(westLog.String(), 8<<10))
		}
	}()

	// The Budget lives in fleet-finops, which both clusters have; the
	// team's workloads run in ml-east and ml-west.
	for _, c := range []struct {
		kube *cluster.Cluster
		nss  []string
	}{{env.cluster, []string{"fleet-finops", "ml-east"}}, {west, []string{"fleet-finops", "ml-west"}}} {
		for _, ns := range c.nss {
			obj := fmt.Sprintf(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":%q,"labels":{"team":"ml","owner":"ana","cost-center":"CC-0042"}}}`, ns)
			if _, stderr, err := c.kube.KubectlWithStdin(ctx, obj, "apply", "-f", "-"); err != nil {
				t.Fatalf("%v: %s", err, stderr)
			}
		}
	}
	// Two replicas of one core each in each cluster, admitted and not yet
	// running (neither cluster schedules pods): each cluster's share is
	// committed spend, $58.52 a month.
	for _, c := range []struct {
		kube *cluster.Cluster
		ns   string
	}{{env.cluster, "ml-east"}, {west, "ml-west"}} {
		if _, stderr, err := c.kube.KubectlWithStdin(ctx, trainingDeployment(c.ns, "train", 2), "apply", "-f", "-"); err != nil {
			t.Fatalf("%v: %s", err, stderr)
		}
	}

	// The team's Budget across east, west and north, which has no
	// Tollgate: its amount is set once the forecast is known.
	b := &v1alpha1.Budget{ObjectMeta: metav1.ObjectMeta{Namespace: "fleet-finops", Name: "ml"}, Spec: v1alpha1.BudgetSpec{
		Amount: "1000000", Action: v1alpha1.BudgetActionDeny,
		Scope: v1alpha1.BudgetScope{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "ml"}}, Clusters: []string{"east", "west", "north"}},
	}}
	// A cluster name no Tollgate could carry is refused by the API server.
	bad := b.DeepCopy()
	bad.Name, bad.Spec.Scope.Clusters = "bad", []string{"east", "Prod_EU", strings.Repeat("x", 64)}
	if err := env.client.Create(ctx, bad); err == nil || !strings.Contains(err.Error(), "spec.scope.clusters[1]") || !strings.Contains(err.Error(), "spec.scope.clusters[2]") {
		t.Errorf("bad cluster names: %v", err)
	}
	if err := env.client.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = env.client.Delete(ctx, b) }()

	// The central verdict counts both clusters' shares, read from
	// Prometheus, and names north as not reporting.
	var st v1alpha1.BudgetStatus
	eventually(t, 90*time.Second, func() error {
		var cur v1alpha1.Budget
		if err := env.client.Get(ctx, client.ObjectKeyFromObject(b), &cur); err != nil {
			return err
		}
		st = cur.Status
		if len(st.Clusters) != 2 {
			return fmt.Errorf("clusters counted: %+v (conditions %+v, lastError %q)", st.Clusters, st.Conditions, st.LastError)
		}
		for _, c := range st.Clusters {
			if r, _ := strconv.ParseFloat(c.CommittedRate, 64); r < 0.08 {
				return fmt.Errorf("cluster %s committed rate %s: its Deployment not counted yet", c.Name, c.CommittedRate)
			}
		}
		return nil
	})
	cond := apimeta.FindStatusCondition(st.Conditions, v1alpha1.ConditionClustersReporting)
	if cond == nil || cond.Status != metav1.ConditionFalse || !strings.Contains(cond.Message, "no spend reported by north") || !strings.Contains(cond.Message, "counting east, west") {
		t.Errorf("ClustersReporting: %+v", cond)
	}
	if got := []string{st.Clusters[0].Name, st.Clusters[1].Name}; !slices.Equal(got, []string{"east", "west"}) {
		t.Errorf("clusters %v", got)
	}
	if !strings.Contains(st.Scope, "in clusters east, west") {
		t.Errorf("scope %q", st.Scope)
	}
	forecast, _ := strconv.ParseFloat(st.Forecast, 64)
	out, _, _ := env.cluster.Kubectl(ctx, "get", "budget", "-n", "fleet-finops", "ml", "-o", "yaml")
	t.Logf("the central verdict:\n%s", statusOf(out))

	// The amount: $20 over the forecast. A one-core replica adds $29.26 a
	// month: over, across clusters, though west's own share is half the
	// forecast.
	amount := strconv.FormatFloat(forecast+20, 'f', 2, 64)
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var cur v1alpha1.Budget
		if err := env.client.Get(ctx, client.ObjectKeyFromObject(b), &cur); err != nil {
			return err
		}
		cur.Spec.Amount = amount
		return env.client.Update(ctx, &cur)
	}); err != nil {
		t.Fatal(err)
	}
	wantDeny := "[budget/fleet-finops/ml] this adds $29.26/month; team=ml across clusters is forecast at"
	for _, c := range []struct {
		name string
		kube *cluster.Cluster
		ns   string
	}{{"east", env.cluster, "ml-east"}, {"west", west, "ml-west"}} {
		// From a file, as docs/budgets-across-clusters.md applies it.
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "train-more.yaml"), []byte(trainingDeployment(c.ns, "train-more", 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		var denied string
		eventually(t, 60*time.Second, func() error {
			out, err := consoleIn(t, c.kube, dir, "apply", "--dry-run=server", "-f", "train-more.yaml")
			if err == nil {
				return fmt.Errorf("%s admitted (the verdict or the amount not there yet): %s", c.name, out)
			}
			if !strings.Contains(out, wantDeny) {
				return fmt.Errorf("%s: %s", c.name, out)
			}
			denied = out
			return nil
		})
		if c.name == "west" {
			docexample.Check(t, root, "e2e-fleet-budget-denied", denied)
		}
		// A quarter core fits.
		small := strings.ReplaceAll(trainingDeployment(c.ns, "notebook", 1), `"cpu":"1","memory":"2Gi"`, `"cpu":"250m","memory":"512Mi"`)
		small = strings.ReplaceAll(small, `"limits":{"memory":"2Gi"}`, `"limits":{"memory":"512Mi"}`)
		if _, stderr, err := c.kube.KubectlWithStdin(ctx, small, "apply", "--dry-run=server", "-f", "-"); err != nil {
			t.Errorf("%s: a quarter core is denied: %s", c.name, stderr)
		}
	}
	var mirror v1alpha1.Budget
	if err := westClient.Get(ctx, client.ObjectKeyFromObject(b), &mirror); err != nil {
		t.Fatal(err)
	}
	out, err = consoleIn(t, west, "", "get", "budget", "-n", "fleet-finops", "ml", "-o", "custom-columns=NAME:.metadata.name,MIRROR-OF:.metadata.labels.tollgate\\.dev/mirror-of,AMOUNT:.spec.amount,FORECAST:.status.forecast,EVALUATED:.status.lastScanTime,COPIED:.status.mirror.time")
	if err != nil {
		t.Fatalf("west's mirror: %v\n%s", err, out)
	}
	docexample.Check(t, root, "e2e-fleet-budget-mirror", out)
	shares, err := http.Get(promURL + "/api/v1/query?query=" + url.QueryEscape(`max by (cluster) (tollgate_budget_share_committed_hourly{namespace="fleet-finops",budget="ml"})`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(io.LimitReader(shares.Body, 1<<20))
	shares.Body.Close()
	t.Logf("the fleet Prometheus holds:\n%s", body)
	if mirror.Labels[v1alpha1.LabelMirror] != "east" || mirror.Status.Mirror == nil || mirror.Status.Mirror.Budget != "fleet-finops/ml" {
		t.Errorf("west's mirror: labels %v, status.mirror %+v", mirror.Labels, mirror.Status.Mirror)
	}
	// An edit of the mirror in west is put back.
	mirror.Spec.Amount = "999999"
	if err := westClient.Update(ctx, &mirror); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		var cur v1alpha1.Budget
		if err := westClient.Get(ctx, client.ObjectKeyFromObject(b), &cur); err != nil {
			return err
		}
		if cur.Spec.Amount != amount {
			return fmt.Errorf("mirror amount %s, want %s", cur.Spec.Amount, amount)
		}
		return nil
	})

	// Alerts: spend so far this period, as earlier days would have left
	// it, crosses 50%, 80% and 100% of the amount; each threshold alerts
	// once, from the central cluster.
	amt, _ := strconv.ParseFloat(amount, 64)
	for _, step := range []struct {
		share     float64
		threshold int
	}{{0.55, 50}, {0.85, 80}, {1.01, 100}} {
		seed := amt * step.share
		eventually(t, 60*time.Second, func() error {
			if got := events.thresholds(); slices.Contains(got, step.threshold) {
				return nil
			}
			// A scan that read the Budget before the seed writes over it:
			// seed again until a scan adds to it.
			if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
				var cur v1alpha1.Budget
				if err := env.client.Get(ctx, client.ObjectKeyFromObject(b), &cur); err != nil {
					return err
				}
				if spend, _ := strconv.ParseFloat(cur.Status.Spend, 64); spend >= seed {
					return nil
				}
				cur.Status.Spend = strconv.FormatFloat(seed, 'f', 6, 64)
				return env.client.Status().Update(ctx, &cur)
			}); err != nil {
				return err
			}
			return fmt.Errorf("alerts %v, want %d", events.thresholds(), step.threshold)
		})
	}
	time.Sleep(3 * time.Second) // three more scans: nothing is alerted again
	if got := events.thresholds(); !slices.Equal(got, []int{50, 80, 100}) {
		t.Errorf("alerts %v, want 50, 80, 100 once each", got)
	}
	if got := events.clusters(); len(got) == 0 || got[0] != "clusters east, west" {
		t.Errorf("alert clusters %v", got)
	}
	t.Logf("alerts received:\n%s", strings.Join(events.summaries(), "\n"))

	// The central cluster out of reach: west's mirror stays as it was and
	// still denies while the verdict is younger than maxAge; then the same
	// change is warned, never denied by surprise.
	proxy.close()
	cut := time.Now()
	_, stderr, err := west.KubectlWithStdin(ctx, trainingDeployment("ml-west", "train-more", 1), "apply", "--dry-run=server", "-f", "-")
	if time.Since(cut) < maxAge/2 && (err == nil || !strings.Contains(stderr, wantDeny)) {
		t.Errorf("just cut off, west does not deny on its mirror: %v %s", err, stderr)
	}
	eventually(t, 60*time.Second, func() error {
		_, stderr, err := west.KubectlWithStdin(ctx, trainingDeployment("ml-west", "train-more", 1), "apply", "--dry-run=server", "-f", "-")
		if err != nil {
			return fmt.Errorf("still denied: %s", stderr)
		}
		if !strings.Contains(stderr, "warned, not denied") {
			return fmt.Errorf("admitted without the stale warning: %s", stderr)
		}
		t.Logf("west, the central cluster out of reach for %s:\n%s", time.Since(cut).Round(time.Second), stderr)
		return nil
	})
	if m := scrapeOpen(t, westPort); !strings.Contains(m, `tollgate_fleet_mirror_failures_total{reason="central-unreachable"}`) {
		t.Errorf("no mirror failure counted:\n%s", grepLines(m, "tollgate_fleet_mirror"))
	}
	// The registry of shares: each cluster's, by its name.
	if m := scrapeOpen(t, westPort); !strings.Contains(m, `tollgate_budget_share_committed_hourly{budget="ml",cluster="west",namespace="fleet-finops"}`) {
		t.Errorf("west's share series:\n%s", grepLines(m, "tollgate_budget_share"))
	}
}

// statusOf is the status part of a Budget's YAML.
func statusOf(y string) string {
	if i := strings.Index(y, "\nstatus:"); i >= 0 {
		return y[i+1:]
	}
	return y
}

// removeServer stops a server and removes its webhook configurations, so
// later tests' requests are not sent to it.
func removeServer(ctx context.Context, c *cluster.Cluster, name string, stop func()) {
	stop()
	for _, kind := range []string{"validatingwebhookconfiguration", "mutatingwebhookconfiguration"} {
		_, _, _ = c.Kubectl(ctx, "delete", kind, name, "--ignore-not-found")
	}
}

// scrapeOpen reads a server's /metrics (served without authentication).
func scrapeOpen(t *testing.T, port int) string {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the test server's own certificate
	return scrape(t, hc, fmt.Sprintf("https://127.0.0.1:%d", port))
}

// eventReceiver records the CloudEvents alerts posted to it.
type eventReceiver struct {
	mu     sync.Mutex
	events []alertData
	srv    *httptest.Server
}

func newEventReceiver(t *testing.T) *eventReceiver {
	r := &eventReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var ev struct {
			Data alertData `json:"data"`
		}
		if err := json.NewDecoder(io.LimitReader(req.Body, 1<<20)).Decode(&ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.events = append(r.events, ev.Data)
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// alertData is the part of an alert's CloudEvent the test reads.
type alertData struct {
	Threshold int    `json:"threshold"`
	Cluster   string `json:"cluster"`
	Summary   string `json:"summary"`
}

func (r *eventReceiver) summaries() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.events))
	for i, e := range r.events {
		out[i] = e.Summary
	}
	return out
}

func (r *eventReceiver) thresholds() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]int, len(r.events))
	for i, e := range r.events {
		out[i] = e.Threshold
	}
	return out
}

func (r *eventReceiver) clusters() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.events))
	for i, e := range r.events {
		out[i] = e.Cluster
	}
	return out
}

// tcpProxy forwards loopback connections to one address until closed,
// and then refuses them: a network cut.
type tcpProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	target = strings.TrimPrefix(strings.TrimPrefix(target, "https://"), "http://")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(p.close)
	return p
}

func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) close() {
	if err := p.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
