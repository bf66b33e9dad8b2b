package console_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/console"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/policies/library"
	"github.com/tollgate-dev/tollgate/test/cluster"
	promtest "github.com/tollgate-dev/tollgate/test/prometheus"
	"github.com/tollgate-dev/tollgate/webhook"
)

// fixture is a real API server seeded with what the console shows: two
// teams' namespaces, their Budgets (one with an amount at the CRD's
// largest), ten Reports of a thousand results in team-a and a few in
// team-b, exceptions (one expiring this week, one whose reason is HTML),
// an image scan, and a user, alice, who may read team-a only.
type fixture struct {
	cluster *cluster.Cluster
	c       client.Client
	now     time.Time
}

var shared *fixture

func TestMain(m *testing.M) {
	code := func() int {
		f, stop, err := seed()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer stop()
		shared = f
		return m.Run()
	}()
	os.Exit(code)
}

func seed() (*fixture, func(), error) {
	ctx := context.Background()
	root, err := cluster.RepoRoot()
	if err != nil {
		return nil, nil, err
	}
	cl, err := cluster.Start(ctx, cluster.Options{CRDDirs: []string{filepath.Join(root, "charts", "tollgate", "crds"), filepath.Join(root, "scanners", "audit", "testdata")}})
	if err != nil {
		return nil, nil, err
	}
	f := &fixture{cluster: cl, now: time.Now().UTC().Truncate(time.Second)}
	if f.c, err = client.New(cl.Config(), client.Options{Scheme: webhook.Scheme()}); err != nil {
		cl.Stop()
		return nil, nil, err
	}
	if err := f.seed(ctx); err != nil {
		cl.Stop()
		return nil, nil, err
	}
	return f, func() { _ = cl.Stop() }, nil
}

func (f *fixture) seed(ctx context.Context) error {
	create := func(o client.Object) error {
		if err := f.c.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
		return nil
	}
	for name, team := range map[string]string{"team-a": "payments", "team-b": "search"} {
		if err := create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"team": team, "cost-center": "CC-" + team}}}); err != nil {
			return err
		}
	}
	scan := metav1.NewTime(f.now.Add(-time.Hour))
	// The Budgets' periods began two days ago (TestSpendOverTime draws
	// them).
	periodStart := metav1.NewTime(f.now.Add(-48 * time.Hour))
	budgets := []struct {
		ns, name, amount, spend, forecast string
		alerted                           []int32
	}{
		{"team-a", "monthly", "1000", "850.000000", "1240.00", []int32{50, 80}},
		{"team-b", "huge", "999999999999.9999", "12.000000", "30.00", nil},
	}
	for _, b := range budgets {
		obj := &v1alpha1.Budget{ObjectMeta: metav1.ObjectMeta{Namespace: b.ns, Name: b.name}, Spec: v1alpha1.BudgetSpec{Amount: b.amount, Action: "deny"}}
		if err := create(obj); err != nil {
			return err
		}
		obj.Status = v1alpha1.BudgetStatus{Spend: b.spend, Forecast: b.forecast, LastScanTime: &scan, Scope: "namespace " + b.ns, Utilization: "85%", PeriodStart: &periodStart}
		for _, t := range b.alerted {
			obj.Status.Alerted = append(obj.Status.Alerted, v1alpha1.BudgetAlert{Threshold: t, At: scan, Delivered: true, Channels: []string{"payments-slack"}})
		}
		if err := f.c.Status().Update(ctx, obj); err != nil {
			return err
		}
	}
	// Ten Reports of 1,000 results in team-a (the audit writes at most
	// 1,000 per Report), and three in team-b.
	for i := range 10 {
		if err := create(report("team-a", fmt.Sprintf("tollgate-%d", i), 1000, i)); err != nil {
			return err
		}
	}
	if err := create(report("team-b", "tollgate", 3, 0)); err != nil {
		return err
	}
	for _, e := range []struct {
		ns, name, reason string
		expiry           time.Duration
	}{
		{"team-a", "legacy-root", `<script>alert("x")</script> legacy image runs as root`, 3 * 24 * time.Hour},
		{"team-a", "batch-hostpath", "batch reads node logs", 40 * 24 * time.Hour},
		{"team-b", "search-privileged", "kernel tuning", 2 * 24 * time.Hour},
	} {
		if err := create(&v1alpha1.TollgateException{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: e.name},
			Spec: v1alpha1.TollgateExceptionSpec{Policies: []string{"pss-restricted-run-as-non-root"}, Reason: e.reason, Ticket: "SEC-1",
				Approver: "sec-lead@corp.example", Expiry: metav1.NewTime(f.now.Add(e.expiry)), Match: v1alpha1.ExceptionMatch{Kinds: []string{"Deployment"}}}}); err != nil {
			return err
		}
	}
	img := &v1alpha1.ImageScan{ObjectMeta: metav1.ObjectMeta{Name: "ghcr-io-corp-api"}, Spec: v1alpha1.ImageScanSpec{Image: "ghcr.io/corp/api:1.4"}}
	if err := create(img); err != nil {
		return err
	}
	img.Status = v1alpha1.ImageScanStatus{Phase: "Scanned", Digest: "sha256:abc", Counts: map[string]int32{"CRITICAL": 2, "HIGH": 5, "MEDIUM": 9}, Fixable: map[string]int32{"CRITICAL": 2}}
	if err := f.c.Status().Update(ctx, img); err != nil {
		return err
	}
	// alice may read team-a's objects, and nothing across the cluster.
	if err := create(&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "reader"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{"tollgate.dev", "openreports.io"}, Resources: []string{"*"}, Verbs: []string{"get", "list"}},
	}}); err != nil {
		return err
	}
	return create(&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "alice"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "reader"},
		Subjects: []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: "alice"}}})
}

// report is an openreports.io Report of n results in namespace ns; the
// first result of team-b's carries HTML in its message.
func report(ns, name string, n, shard int) *unstructured.Unstructured {
	sev := []string{"critical", "high", "medium", "low"}
	results := make([]any, n)
	for i := range n {
		msg := fmt.Sprintf("container %d of shard %d runs as root", i, shard)
		policy := []string{"pss-restricted-run-as-non-root", "images-no-latest"}[i%2]
		if ns == "team-b" && i == 0 {
			msg = `image "<img src=x onerror=alert(1)>" is not signed`
			policy = "image-policy/corp-signed"
		}
		results[i] = map[string]any{
			"source": "tollgate", "policy": policy, "result": []string{"fail", "warn", "pass"}[i%3],
			"severity": sev[i%4], "message": msg,
			"properties": map[string]any{"controls": "cis:5.2.6,nsa:pod-security", "remediation": "Set runAsNonRoot: true."},
			"resources":  []any{map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "namespace": ns, "name": fmt.Sprintf("web-%d-%d", shard, i)}},
		}
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "openreports.io/v1alpha1", "kind": "Report",
		"metadata": map[string]any{"namespace": ns, "name": name},
		"summary":  map[string]any{"fail": int64(0)},
		"results":  results,
	}}
	return u
}

// serve runs the console as user (empty: the admin) and returns its base
// URL.
func serve(t testing.TB, user string) string {
	t.Helper()
	return serveWith(t, user, "")
}

func serveWith(t testing.TB, user, prometheusURL string) string {
	t.Helper()
	cfg := shared.cluster.Config()
	if user != "" {
		cfg = rest.CopyConfig(cfg)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	}
	lib, err := policies.ReadFS(library.FS(), "library", false)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := console.New(console.Options{REST: cfg, Modules: lib, Namespace: "team-a", PrometheusURL: prometheusURL, Now: func() time.Time { return shared.now }})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &httptest.Server{Listener: ln, Config: &http.Server{Handler: srv.Handler(ln.Addr().String())}}
	hs.Start()
	t.Cleanup(hs.Close)
	return hs.URL
}

func get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestPagesAsTheAdmin(t *testing.T) {
	base := serve(t, "")
	_, body := get(t, base+"/budgets")
	for _, want := range []string{"team-a/monthly", "$850.00", "$1,240.00", "50% ", "to payments-slack", "team-b/huge", "$1,000,000,000,000.00"} {
		if !strings.Contains(body, want) {
			t.Errorf("budgets page lacks %q", want)
		}
	}
	_, body = get(t, base+"/reports")
	if !strings.Contains(body, "10003 results, page 1 of 101") {
		t.Errorf("reports count: %s", between(body, `<p id="count">`, "</p>"))
	}
	_, body = get(t, base+"/reports?namespace=team-b")
	if !strings.Contains(body, "3 results.") || strings.Contains(body, "<img src=x") || !strings.Contains(body, "&lt;img src=x onerror=alert(1)&gt;") {
		t.Errorf("team-b's results, escaped: %s", between(body, "<tbody>", "</tbody>"))
	}
	_, body = get(t, base+"/reports?namespace=team-a&severity=critical&result=fail&page=2")
	if !strings.Contains(body, "840 results, page 2 of 9") {
		t.Errorf("filtered count: %s", between(body, `<p id="count">`, "</p>"))
	}
	_, body = get(t, base+"/exceptions?expiring=week")
	if !strings.Contains(body, "team-a/legacy-root") || !strings.Contains(body, "team-b/search-privileged") || strings.Contains(body, "batch-hostpath") ||
		strings.Contains(body, "<script>") || !strings.Contains(body, "&lt;script&gt;") {
		t.Errorf("exceptions expiring this week: %s", between(body, "<tbody>", "</tbody>"))
	}
	_, body = get(t, base+"/images")
	if !strings.Contains(body, "ghcr.io/corp/api:1.4") || !strings.Contains(body, `<td class="num">2</td><td class="num">5</td>`) ||
		!strings.Contains(body, "image-policy/corp-signed") || !strings.Contains(body, "&lt;img src=x") {
		t.Errorf("images: %s", between(body, "<tbody>", "</tbody>"))
	}
	_, body = get(t, base+"/")
	if !strings.Contains(body, "pss-restricted-run-as-non-root") || !strings.Contains(body, "Violations by namespace") {
		t.Errorf("overview lacks the policies or the charts")
	}

	// CSV: every filtered row, not one page; formulas defused.
	code, body := get(t, base+"/reports?namespace=team-a&format=csv")
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if code != http.StatusOK || err != nil || len(rows) != 10001 || rows[0][0] != "namespace" {
		t.Errorf("CSV of team-a's results: %d %v, %d rows", code, err, len(rows))
	}

	// An object's YAML.
	_, body = get(t, base+"/object?apiVersion=tollgate.dev/v1alpha1&kind=Budget&namespace=team-a&name=monthly")
	if !strings.Contains(body, "amount: &#34;1000&#34;") && !strings.Contains(body, `amount: "1000"`) {
		t.Errorf("object page: %s", between(body, "<pre>", "</pre>"))
	}

	// Bad input: a page that is no number, an object that is not there,
	// a Host of another site.
	if code, _ := get(t, base+"/reports?page=x"); code != http.StatusBadRequest {
		t.Errorf("page=x: %d", code)
	}
	if code, _ := get(t, base+"/object?apiVersion=v1&kind=Secret&namespace=team-a&name=nope"); code != http.StatusBadRequest {
		t.Errorf("missing object: %d", code)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/budgets", nil)
	req.Host = "evil.example:80"
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("foreign Host: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

// alice may read team-a only: team-b's Budget, Reports, exceptions and
// the cluster's image scans are not shown, and the pages say something is
// left out.
func TestWhatTheUserMayNotReadIsNotShown(t *testing.T) {
	base := serve(t, "alice")
	_, body := get(t, base+"/budgets")
	if !strings.Contains(body, "team-a/monthly") || strings.Contains(body, "team-b") {
		t.Errorf("alice's budgets: %s", between(body, "<tbody>", "</tbody>"))
	}
	_, body = get(t, base+"/reports")
	if !strings.Contains(body, "10000 results") || strings.Contains(body, "team-b") {
		t.Errorf("alice's reports: %s", between(body, `<p id="count">`, "</p>"))
	}
	_, body = get(t, base+"/exceptions")
	if strings.Contains(body, "search-privileged") || !strings.Contains(body, "legacy-root") {
		t.Errorf("alice's exceptions: %s", between(body, "<tbody>", "</tbody>"))
	}
	_, body = get(t, base+"/images")
	if strings.Contains(body, "ghcr.io/corp/api") || !strings.Contains(body, "ImageScans: 1 namespace(s) you may not read are left out.") {
		t.Errorf("alice's images: %s", body[:min(len(body), 3000)])
	}
	if code, _ := get(t, base+"/object?apiVersion=tollgate.dev/v1alpha1&kind=Budget&namespace=team-b&name=huge"); code != http.StatusBadRequest {
		t.Errorf("team-b's Budget as alice: %d", code)
	}
}

// The overview draws the denials per hour from a real Prometheus holding
// the admission counter: 6 denials an hour for the last five hours.
func TestDenialsOverTime(t *testing.T) {
	var h promtest.Series
	end := shared.now.Truncate(time.Hour)
	start := end.Add(-6 * time.Hour)
	h.Counter("tollgate_admission_requests_total", `webhook="validate",operation="CREATE",kind="Pod",decision="denied",dry_run="false"`,
		start, shared.now, time.Minute, func(at time.Time) float64 {
			if at.Before(end.Add(-5 * time.Hour)) {
				return 0
			}
			return at.Sub(end.Add(-5*time.Hour)).Minutes() / 10 // 6 an hour
		})
	prom, err := promtest.Start(context.Background(), promtest.Options{History: h.String()})
	if err != nil {
		t.Fatal(err)
	}
	defer prom.Stop()
	_, body := get(t, serveWith(t, "", prom.URL())+"/")
	chart := between(body, `data-chart="Denials per hour"`, "</svg>")
	if n := strings.Count(chart, `data-value="6"`); n < 4 {
		t.Errorf("denials per hour: %d bars of 6 in\n%s", n, chart)
	}
	_, body = get(t, serve(t, "")+"/")
	if !strings.Contains(body, "Give --prometheus to see the denials over time.") {
		t.Error("no note without Prometheus")
	}
}

// spendPrometheus is a real Prometheus holding tollgate_budget_spend and
// tollgate_budget_amount: team-a/monthly's spend rising from $400 to $850
// over the two days of its period, team-b/huge's flat at $12, and two
// series of no Budget (team-a has no "huge", and a budget label holding
// HTML).
func spendPrometheus(t *testing.T) *promtest.Server {
	t.Helper()
	var h promtest.Series
	start := shared.now.Add(-48 * time.Hour)
	from := start.Add(-10 * time.Minute)
	rising := func(at time.Time) float64 {
		return 400 + 450*max(0, at.Sub(start).Seconds())/(48*time.Hour).Seconds()
	}
	flat := func(v float64) func(time.Time) float64 { return func(time.Time) float64 { return v } }
	h.Gauge("tollgate_budget_spend", `namespace="team-a",budget="monthly"`, from, shared.now, time.Minute, rising)
	h.Gauge("tollgate_budget_spend", `namespace="team-b",budget="huge"`, from, shared.now, time.Minute, flat(12))
	h.Gauge("tollgate_budget_spend", `namespace="team-a",budget="huge"`, from, shared.now, time.Minute, flat(77777))
	h.Gauge("tollgate_budget_spend", `namespace="team-a",budget="<script>alert(1)</script>"`, from, shared.now, time.Minute, flat(5))
	h.Gauge("tollgate_budget_amount", `namespace="team-a",budget="monthly"`, from, shared.now, time.Minute, flat(1000))
	h.Gauge("tollgate_budget_amount", `namespace="team-b",budget="huge"`, from, shared.now, time.Minute, flat(999999999999.9999))
	prom, err := promtest.Start(context.Background(), promtest.Options{History: h.String()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prom.Stop() })
	return prom
}

// The Budgets page draws each Budget's spend over its period from
// Prometheus: alice sees team-a's chart only, and no page shows a series
// of no Budget.
func TestSpendOverTime(t *testing.T) {
	prom := spendPrometheus(t)

	// Two days at a step of 15 minutes (48h/200, rounded up to a
	// minute): 193 points, the last the last sample.
	const points = 193
	checkChart := func(who, body, budget, last, aria string) {
		t.Helper()
		fig := between(body, `<figure data-trend="`+budget+`">`, "</figure>")
		poly := between(fig, "<polyline", "/>")
		if !strings.Contains(fig, "<polyline") || !strings.Contains(poly, fmt.Sprintf(`data-points="%d"`, points)) ||
			!strings.Contains(poly, `data-last="`+last+`"`) {
			t.Errorf("%s: %s's chart:\n%s", who, budget, fig)
			return
		}
		pts := strings.Fields(strings.TrimPrefix(between(poly, `points="`, `" `), `points="`))
		if len(pts) != points {
			t.Errorf("%s: %s's polyline has %d points, want %d", who, budget, len(pts), points)
		}
		if !strings.Contains(fig, `aria-label="`+aria) || !strings.Contains(fig, "<title>"+aria) {
			t.Errorf("%s: %s's chart lacks the text %q:\n%s", who, budget, aria, fig)
		}
	}

	_, body := get(t, serveWith(t, "alice", prom.URL())+"/budgets")
	checkChart("alice", body, "team-a/monthly", "850", "team-a/monthly: spend $400.00 on ")
	if !strings.Contains(body, "$850.00 on "+shared.now.UTC().Format("Jan 2 15:04")+"; budget $1,000.00") {
		t.Errorf("alice: team-a/monthly's numbers beside its chart: %s", between(body, `<figure data-trend="team-a/monthly">`, "</figure>"))
	}
	for _, never := range []string{"team-b", "<script>alert(1)", "alert(1)", "77777", "77,777", `data-trend="team-a/huge"`} {
		if strings.Contains(body, never) {
			t.Errorf("alice's budgets page shows %q", never)
		}
	}

	_, body = get(t, serveWith(t, "", prom.URL())+"/budgets")
	checkChart("admin", body, "team-a/monthly", "850", "team-a/monthly: spend $400.00 on ")
	checkChart("admin", body, "team-b/huge", "12", "team-b/huge: spend $12.00 on ")
	for _, never := range []string{"<script>alert(1)", "alert(1)", "77777", "77,777", `data-trend="team-a/huge"`} {
		if strings.Contains(body, never) {
			t.Errorf("the admin's budgets page shows %q", never)
		}
	}

	// Without Prometheus, and with a Prometheus that does not answer,
	// the page is served with a note.
	_, body = get(t, serve(t, "")+"/budgets")
	if !strings.Contains(body, "Give --prometheus to see the spend over time.") || strings.Contains(body, "<polyline") {
		t.Errorf("no note without Prometheus: %s", between(body, `<h2 id="spend-over-time">`, "</main>"))
	}
	// Of 23 Budgets, the first 20 get a chart, drawn or saying there is
	// no spend, and the page says the others have none.
	ctx := context.Background()
	if err := client.IgnoreAlreadyExists(shared.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-c"}})); err != nil {
		t.Fatal(err)
	}
	for i := range 21 {
		b := &v1alpha1.Budget{ObjectMeta: metav1.ObjectMeta{Namespace: "team-c", Name: fmt.Sprintf("b%02d", i)}, Spec: v1alpha1.BudgetSpec{Amount: "10", Action: "warn"}}
		if err := shared.c.Create(ctx, b); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = shared.c.Delete(ctx, b) })
	}
	_, body = get(t, serveWith(t, "", prom.URL())+"/budgets")
	if n, none := strings.Count(body, "<figure data-trend="), strings.Count(body, "No spend recorded in Prometheus this period."); n != 20 || none != 18 ||
		!strings.Contains(body, "Spend over time is drawn for the first 20 Budgets only.") || strings.Contains(body, `data-trend="team-c/b18"`) {
		t.Errorf("23 Budgets: %d charts, %d without spend: %s", n, none, between(body, `<h2 id="spend-over-time">`, "</main>"))
	}
	// The query now starts on the 1st of the month (team-c's periods), at
	// a longer step; team-b/huge's chart still draws its own two days.
	if fig := between(body, `<figure data-trend="team-b/huge">`, "</figure>"); !strings.Contains(fig, `data-last="12"`) || !strings.Contains(fig, "team-b/huge: spend $12.00 on ") {
		t.Errorf("team-b/huge among 23 Budgets: %s", fig)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	code, body := get(t, serveWith(t, "", down)+"/budgets")
	if code != http.StatusOK || !strings.Contains(body, `<p class="muted" id="spend-note">Prometheus did not answer: `) || !strings.Contains(body, "team-a/monthly") {
		t.Errorf("Prometheus down: %d %s", code, between(body, `<h2 id="spend-over-time">`, "</main>"))
	}
}

func between(s, from, to string) string {
	i := strings.Index(s, from)
	if i < 0 {
		return s[:min(len(s), 2000)]
	}
	j := strings.Index(s[i:], to)
	if j < 0 {
		return s[i:min(len(s), i+2000)]
	}
	return s[i : i+j]
}

// BenchmarkReportsPage is one page of the 10,003 results: read from the
// API server, filtered, sorted and rendered (the first 100 rows).
func BenchmarkReportsPage(b *testing.B) {
	base := serve(b, "")
	for b.Loop() {
		if code, body := get(b, base+"/reports"); code != http.StatusOK || !strings.Contains(body, "10003 results") {
			b.Fatalf("%d", code)
		}
	}
}

// BenchmarkBudgetsPage is the Budgets page.
func BenchmarkBudgetsPage(b *testing.B) {
	base := serve(b, "")
	for b.Loop() {
		if code, _ := get(b, base+"/budgets"); code != http.StatusOK {
			b.Fatalf("%d", code)
		}
	}
}
