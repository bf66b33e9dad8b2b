package console

import (
	"cmp"
	"context"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/finops"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/policies/imagesig"
)

// pageSize is the rows of one page of results.
const pageSize = 100

// Bar is one bar of a chart: its label, value and length in pixels (of
// chartWidth), drawn from the numbers the table beside it shows.
type Bar struct {
	Label string
	Value float64
	Text  string
	Width int
	// Link, when set, is where the bar's label leads (a filtered table).
	Link string
}

// chartWidth is a chart's longest bar, in pixels.
const chartWidth = 360

// bars scales values to chartWidth against their largest (or against
// max when it is larger), keeping the order given.
func bars(in []Bar, atLeast float64) []Bar {
	top := atLeast
	for _, b := range in {
		top = max(top, b.Value)
	}
	for i := range in {
		if top > 0 && in[i].Value > 0 {
			in[i].Width = max(1, int(in[i].Value/top*chartWidth+0.5))
		}
	}
	return in
}

// counted turns counts into bars, largest first, the top n.
func counted(counts map[string]int, n int, link func(string) string) []Bar {
	out := make([]Bar, 0, len(counts))
	for k, v := range counts {
		out = append(out, Bar{Label: k, Value: float64(v), Text: strconv.Itoa(v), Link: link(k)})
	}
	slices.SortFunc(out, func(a, b Bar) int {
		if c := cmp.Compare(b.Value, a.Value); c != 0 {
			return c
		}
		return strings.Compare(a.Label, b.Label)
	})
	if len(out) > n {
		out = out[:n]
	}
	return bars(out, 0)
}

// objectLink is the console's page of an object's YAML.
func objectLink(apiVersion, kind, namespace, name string) string {
	q := url.Values{"apiVersion": {apiVersion}, "kind": {kind}, "name": {name}}
	if namespace != "" {
		q.Set("namespace", namespace)
	}
	return "/object?" + q.Encode()
}

func filterLink(path string, kv ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return path + "?" + q.Encode()
}

func (v *view) noteVisible(what string, vis visible) {
	if vis.Missing {
		v.Notes = append(v.Notes, what+": not installed in this cluster.")
	}
	if vis.Hidden > 0 {
		v.Notes = append(v.Notes, fmt.Sprintf("%s: %d namespace(s) you may not read are left out.", what, vis.Hidden))
	}
	if vis.Truncated {
		v.Notes = append(v.Notes, fmt.Sprintf("%s: only the first %d are shown.", what, maxItems))
	}
}

// result is one result of a policy report.
type result struct {
	Namespace, Kind, Name, APIVersion string
	Policy, Severity, Result          string
	Message, Remediation, Controls    string
	Source, Report                    string
	Link                              string
}

// results flattens the reports into results, in a stable order.
func results(reports []unstructured.Unstructured) []result {
	var out []result
	for _, rep := range reports {
		items, _, _ := unstructured.NestedSlice(rep.Object, "results")
		for _, it := range items {
			m, ok := it.(map[string]any)
			if !ok {
				continue
			}
			str := func(k string) string { s, _ := m[k].(string); return s }
			props, _ := m["properties"].(map[string]any)
			prop := func(k string) string { s, _ := props[k].(string); return s }
			r := result{Policy: str("policy"), Severity: str("severity"), Result: str("result"), Message: str("message"),
				Source: str("source"), Remediation: prop("remediation"), Controls: prop("controls"),
				Report: rep.GetNamespace() + "/" + rep.GetName(), Namespace: rep.GetNamespace()}
			if res, _ := m["resources"].([]any); len(res) > 0 {
				if o, ok := res[0].(map[string]any); ok {
					s := func(k string) string { v, _ := o[k].(string); return v }
					r.APIVersion, r.Kind, r.Name = s("apiVersion"), s("kind"), s("name")
					r.Namespace = cmp.Or(s("namespace"), r.Namespace)
				}
			} else if scope, ok := rep.Object["scope"].(map[string]any); ok {
				s := func(k string) string { v, _ := scope[k].(string); return v }
				r.APIVersion, r.Kind, r.Name = s("apiVersion"), s("kind"), s("name")
				r.Namespace = cmp.Or(s("namespace"), r.Namespace)
			}
			if r.Kind != "" && r.Name != "" {
				r.Link = objectLink(r.APIVersion, r.Kind, r.Namespace, r.Name)
			}
			out = append(out, r)
		}
	}
	sevRank := map[string]int{"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
	slices.SortStableFunc(out, func(a, b result) int {
		ra, oka := sevRank[a.Severity]
		rb, okb := sevRank[b.Severity]
		if !oka {
			ra = 5
		}
		if !okb {
			rb = 5
		}
		return cmp.Or(cmp.Compare(ra, rb), strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name), strings.Compare(a.Policy, b.Policy))
	})
	return out
}

// violation reports whether a result is a violation (not a pass, a skip
// under an exception, or an error).
func violation(r result) bool { return r.Result == "fail" || r.Result == "warn" }

// policyRow is one policy on the overview.
type policyRow struct {
	ID, Title, Severity, Action, Source string
}

// overviewData is the overview page.
type overviewData struct {
	Policies                          []policyRow
	ByNamespace, ByTeam, ByPolicy     []Bar
	Denials                           []Bar
	DenialsNote                       string
	Violations, Failing, Warned, Pass int
}

func (s *Server) overview(ctx context.Context, _ *http.Request) (*view, error) {
	v := &view{Title: "Overview"}
	d := &overviewData{}
	v.Data = d
	d.Policies = s.policies(ctx, v)
	reps, vis, err := s.r.reports(ctx)
	if err != nil {
		return nil, err
	}
	v.noteVisible("Reports", vis)
	nsLabels := s.r.namespaceLabels(ctx)
	byNS, byTeam, byPolicy := map[string]int{}, map[string]int{}, map[string]int{}
	for _, r := range results(reps) {
		switch r.Result {
		case "pass":
			d.Pass++
		case "fail":
			d.Failing++
		case "warn":
			d.Warned++
		}
		if !violation(r) {
			continue
		}
		d.Violations++
		byNS[cmp.Or(r.Namespace, "(cluster)")]++
		byTeam[cmp.Or(nsLabels[r.Namespace]["team"], "(no team)")]++
		byPolicy[r.Policy]++
	}
	d.ByNamespace = counted(byNS, 15, func(k string) string {
		return filterLink("/reports", "namespace", strings.Trim(k, "()"), "result", "violations")
	})
	d.ByTeam = counted(byTeam, 15, func(string) string { return "" })
	d.ByPolicy = counted(byPolicy, 15, func(k string) string { return filterLink("/reports", "policy", k, "result", "violations") })
	d.Denials, d.DenialsNote = s.denials(ctx)
	v.CSV = [][]string{{"policy", "title", "severity", "action", "source"}}
	for _, p := range d.Policies {
		v.CSV = append(v.CSV, []string{p.ID, p.Title, p.Severity, p.Action, p.Source})
	}
	return v, nil
}

// policies lists the built-in policies with the actions the cluster's
// config gives them, and the cluster's TollgatePolicies.
func (s *Server) policies(ctx context.Context, v *view) []policyRow {
	var cfgObj v1alpha1.TollgateConfig
	cfgErr := s.r.c.Get(ctx, client.ObjectKey{Name: s.opts.ConfigName}, &cfgObj)
	rv := "none"
	if cfgErr == nil {
		rv = cfgObj.ResourceVersion
	}
	s.mu.Lock()
	rows := s.policyTable
	cached := s.policiesRV == rv && rows != nil
	s.mu.Unlock()
	if !cached && len(s.opts.Modules) > 0 {
		var cfg *policies.Config
		if cfgErr == nil {
			if c, err := policies.ParseConfig(cfgObj.Spec.Raw); err == nil {
				cfg = c
			} else {
				v.Notes = append(v.Notes, "TollgateConfig "+s.opts.ConfigName+" does not parse; the default actions are shown: "+err.Error())
			}
		}
		eng, err := policies.New(ctx, policies.Options{Modules: s.opts.Modules, Config: cfg})
		if err != nil {
			v.Notes = append(v.Notes, "the policy library does not load: "+err.Error())
		} else {
			rows = rows[:0:0]
			for _, m := range eng.Policies() {
				rows = append(rows, policyRow{ID: m.ID, Title: m.Title, Severity: string(m.Severity), Action: string(eng.Action(&m)), Source: "library"})
			}
			s.mu.Lock()
			s.policiesRV, s.policyTable = rv, rows
			s.mu.Unlock()
		}
	}
	rows = slices.Clone(rows)
	var tps v1alpha1.TollgatePolicyList
	vis, err := s.r.list(ctx, &tps, false)
	if err == nil {
		v.noteVisible("TollgatePolicies", vis)
		for _, p := range tps.Items {
			rows = append(rows, policyRow{ID: p.Name, Title: "TollgatePolicy " + p.Name, Action: "(its policies' own)", Source: "cluster"})
		}
	}
	return rows
}

// denials are the requests denied per hour over the last day, from the
// admission metrics in Prometheus.
func (s *Server) denials(ctx context.Context) ([]Bar, string) {
	if s.prom == nil {
		return nil, "Give --prometheus to see the denials over time."
	}
	end := s.opts.Now().Truncate(time.Hour)
	val, _, _, err := s.prom.QueryRange(ctx, `sum(increase(tollgate_admission_requests_total{webhook="validate",decision="denied"}[1h]))`,
		promv1.Range{Start: end.Add(-23 * time.Hour), End: end, Step: time.Hour})
	if err != nil {
		return nil, "Prometheus did not answer: " + err.Error()
	}
	m, ok := val.(model.Matrix)
	if !ok || len(m) == 0 {
		return nil, "No denials recorded in the last 24 hours."
	}
	var out []Bar
	for _, p := range m[0].Values {
		n := float64(p.Value)
		out = append(out, Bar{Label: p.Timestamp.Time().UTC().Format("15:04"), Value: n, Text: strconv.FormatFloat(n, 'f', 0, 64)})
	}
	return bars(out, 0), ""
}

// budgetRow is one Budget.
type budgetRow struct {
	Namespace, Name, Scope, Period, Action           string
	Team, CostCenter, Clusters                       string
	Amount, Spend, Forecast                          float64
	AmountText, SpendText, ForecastText, Utilization string
	Alerted                                          []v1alpha1.BudgetAlert
	Stale, Over                                      bool
	SpendWidth, ForecastWidth, AmountX, ChartW       int
	Link, LastScan, LastError                        string
	ForecastOver                                     bool
	// Trend is the spend over the period, from Prometheus.
	Trend *Trend

	periodStart time.Time
	currency    string
}

// budgetsData is the Budgets page.
type budgetsData struct {
	Budgets          []budgetRow
	ByTeam, ByCenter []Bar
	Currency         string
	// Trends are the Budgets given a spend chart (the first maxTrends),
	// a Trend each when Prometheus holds their spend; TrendsNote says why
	// there are none, or that there are more Budgets.
	Trends     []budgetRow
	TrendsNote string
}

// budgetChart is the width of a Budget's bar, for the largest of its
// amount and forecast.
const budgetChart = 320

func (s *Server) budgets(ctx context.Context, r *http.Request) (*view, error) {
	v := &view{Title: "Budgets"}
	var list v1alpha1.BudgetList
	vis, err := s.r.list(ctx, &list, true)
	if err != nil {
		return nil, err
	}
	v.noteVisible("Budgets", vis)
	nsLabels := s.r.namespaceLabels(ctx)
	d := &budgetsData{Currency: "USD"}
	team := r.URL.Query().Get("team")
	byTeam, byCenter := map[string]float64{}, map[string]float64{}
	for _, b := range list.Items {
		row := budgetRow{Namespace: b.Namespace, Name: b.Name, Scope: cmp.Or(b.Status.Scope, "namespace "+b.Namespace),
			Period: cmp.Or(b.Spec.Period, v1alpha1.PeriodMonthly), Action: b.Spec.Action, Alerted: b.Status.Alerted, Stale: b.Status.Stale,
			Utilization: b.Status.Utilization, LastError: b.Status.LastError,
			Link: objectLink("tollgate.dev/v1alpha1", "Budget", b.Namespace, b.Name), Clusters: strings.Join(b.Spec.Scope.Clusters, ", ")}
		if b.Status.LastScanTime != nil {
			row.LastScan = b.Status.LastScanTime.UTC().Format(time.RFC3339)
		}
		row.Amount = parseMoney(b.Spec.Amount)
		row.Spend = parseMoney(b.Status.Spend)
		row.Forecast = parseMoney(b.Status.Forecast)
		cur := cmp.Or(b.Spec.Currency, "USD")
		d.Currency = cur
		row.currency = cur
		row.periodStart = periodStart(&b, s.opts.Now())
		row.AmountText = finops.Money(row.Amount, cur, finops.Cents)
		row.SpendText = finops.Money(row.Spend, cur, finops.Cents)
		row.ForecastText = finops.Money(row.Forecast, cur, finops.Cents)
		row.Over = row.Amount > 0 && row.Spend > row.Amount
		row.ForecastOver = row.Amount > 0 && row.Forecast > row.Amount
		if sel := b.Spec.Scope.Selector; sel != nil {
			row.Team, row.CostCenter = sel.MatchLabels["team"], sel.MatchLabels["cost-center"]
		} else {
			ns := cmp.Or(b.Spec.Scope.Namespace, b.Namespace)
			row.Team, row.CostCenter = nsLabels[ns]["team"], nsLabels[ns]["cost-center"]
		}
		if team != "" && row.Team != team {
			continue
		}
		top := max(row.Amount, row.Forecast, row.Spend)
		row.ChartW = budgetChart
		if top > 0 {
			row.SpendWidth = int(row.Spend / top * budgetChart)
			row.ForecastWidth = int(row.Forecast / top * budgetChart)
			row.AmountX = int(row.Amount / top * budgetChart)
		}
		byTeam[cmp.Or(row.Team, "(no team)")] += row.Forecast
		byCenter[cmp.Or(row.CostCenter, "(no cost-center)")] += row.Forecast
		d.Budgets = append(d.Budgets, row)
	}
	slices.SortFunc(d.Budgets, func(a, b budgetRow) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	d.TrendsNote = s.budgetTrends(ctx, d)
	toBars := func(m map[string]float64, key string) []Bar {
		out := make([]Bar, 0, len(m))
		for k, val := range m {
			out = append(out, Bar{Label: k, Value: val, Text: finops.Money(val, d.Currency, finops.Cents), Link: filterLink("/budgets", key, k)})
		}
		slices.SortFunc(out, func(a, b Bar) int { return cmp.Or(cmp.Compare(b.Value, a.Value), strings.Compare(a.Label, b.Label)) })
		return bars(out, 0)
	}
	d.ByTeam, d.ByCenter = toBars(byTeam, "team"), toBars(byCenter, "costCenter")
	v.Data = d
	v.CSV = [][]string{{"namespace", "name", "scope", "team", "cost_center", "period", "amount", "spend", "forecast", "utilization", "action", "alerted", "clusters", "last_scan"}}
	for _, b := range d.Budgets {
		var alerted []string
		for _, a := range b.Alerted {
			alerted = append(alerted, strconv.Itoa(int(a.Threshold))+"%")
		}
		v.CSV = append(v.CSV, []string{b.Namespace, b.Name, b.Scope, b.Team, b.CostCenter, b.Period,
			strconv.FormatFloat(b.Amount, 'f', 2, 64), strconv.FormatFloat(b.Spend, 'f', 2, 64), strconv.FormatFloat(b.Forecast, 'f', 2, 64),
			b.Utilization, b.Action, strings.Join(alerted, " "), b.Clusters, b.LastScan})
	}
	return v, nil
}

// budgetTrends gives the first maxTrends Budgets of the page their spend
// over time, and returns the note to show instead when there is none.
func (s *Server) budgetTrends(ctx context.Context, d *budgetsData) string {
	shown := d.Budgets[:min(len(d.Budgets), maxTrends)]
	want := make([]trendQuery, 0, len(shown))
	for _, b := range shown {
		want = append(want, trendQuery{key: budgetKey{b.Namespace, b.Name}, start: b.periodStart, amount: b.Amount, currency: b.currency})
	}
	got, note := s.trends(ctx, want)
	if got == nil {
		return note
	}
	for i := range shown {
		shown[i].Trend = got[budgetKey{shown[i].Namespace, shown[i].Name}]
	}
	d.Trends = shown
	if len(d.Budgets) > maxTrends {
		note = fmt.Sprintf("Spend over time is drawn for the first %d Budgets only.", maxTrends)
	}
	return note
}

// parseMoney reads a decimal amount; anything else is 0 (a Budget's
// amount is validated by its CRD; status is the scanner's).
func parseMoney(s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f > 1e15 {
		return 0
	}
	return f
}

// reportsData is the Reports page.
type reportsData struct {
	Results                                    []result
	Total, Shown, Page, Pages                  int
	Namespaces, Policies, Severities, Controls []string
	Prev, Next                                 string
}

func (s *Server) reports(ctx context.Context, r *http.Request) (*view, error) {
	q := r.URL.Query()
	page := 1
	if p := q.Get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 1_000_000 {
			return nil, &badRequest{fmt.Sprintf("page %q: want a page number from 1", p)}
		}
		page = n
	}
	v := &view{Title: "Reports"}
	reps, vis, err := s.r.reports(ctx)
	if err != nil {
		return nil, err
	}
	v.noteVisible("Reports", vis)
	all := results(reps)
	ns, pol, sev, ctl, res, text := q.Get("namespace"), q.Get("policy"), q.Get("severity"), q.Get("control"), q.Get("result"), strings.ToLower(q.Get("q"))
	d := &reportsData{}
	seen := map[string]map[string]bool{"ns": {}, "policy": {}, "severity": {}, "control": {}}
	var kept []result
	for _, x := range all {
		seen["ns"][x.Namespace] = true
		seen["policy"][x.Policy] = true
		seen["severity"][x.Severity] = true
		for c := range strings.SplitSeq(x.Controls, ",") {
			seen["control"][c] = true
		}
		switch {
		case ns != "" && x.Namespace != ns,
			pol != "" && x.Policy != pol,
			sev != "" && x.Severity != sev,
			ctl != "" && !slices.Contains(strings.Split(x.Controls, ","), ctl),
			res == "violations" && !violation(x),
			res != "" && res != "violations" && x.Result != res,
			text != "" && !strings.Contains(strings.ToLower(x.Message+" "+x.Name+" "+x.Policy+" "+x.Remediation), text):
			continue
		}
		kept = append(kept, x)
	}
	for k, dst := range map[string]*[]string{"ns": &d.Namespaces, "policy": &d.Policies, "severity": &d.Severities, "control": &d.Controls} {
		for val := range seen[k] {
			if val != "" {
				*dst = append(*dst, val)
			}
		}
		slices.Sort(*dst)
	}
	d.Total = len(kept)
	d.Pages = max(1, (d.Total+pageSize-1)/pageSize)
	if page > d.Pages {
		page = d.Pages
	}
	d.Page = page
	lo, hi := (page-1)*pageSize, min(page*pageSize, d.Total)
	d.Results = kept[lo:hi]
	d.Shown = len(d.Results)
	link := func(p int) string {
		c := url.Values{}
		for k, vals := range q {
			c[k] = vals
		}
		c.Set("page", strconv.Itoa(p))
		return "/reports?" + c.Encode()
	}
	if page > 1 {
		d.Prev = link(page - 1)
	}
	if page < d.Pages {
		d.Next = link(page + 1)
	}
	v.Data = d
	// The CSV holds every result the filters keep, not one page.
	v.CSV = [][]string{{"namespace", "kind", "name", "policy", "severity", "result", "message", "controls", "remediation", "source", "report"}}
	for _, x := range kept {
		v.CSV = append(v.CSV, []string{x.Namespace, x.Kind, x.Name, x.Policy, x.Severity, x.Result, x.Message, x.Controls, x.Remediation, x.Source, x.Report})
	}
	return v, nil
}

// exceptionRow is one TollgateException.
type exceptionRow struct {
	Namespace, Name, Policies, Match, Reason, Ticket, Approver string
	Expiry, Expires, Ready                                     string
	ThisWeek, Expired                                          bool
	Link                                                       string
}

func (s *Server) exceptions(ctx context.Context, r *http.Request) (*view, error) {
	v := &view{Title: "Exceptions"}
	var list v1alpha1.TollgateExceptionList
	vis, err := s.r.list(ctx, &list, true)
	if err != nil {
		return nil, err
	}
	v.noteVisible("TollgateExceptions", vis)
	now := s.opts.Now()
	week := r.URL.Query().Get("expiring") == "week"
	var rows []exceptionRow
	for _, e := range list.Items {
		left := e.Spec.Expiry.Sub(now)
		row := exceptionRow{Namespace: e.Namespace, Name: e.Name, Policies: strings.Join(e.Spec.Policies, ", "),
			Match: policies.ExceptionMatch(e.Spec.Match).String(), Reason: e.Spec.Reason, Ticket: e.Spec.Ticket, Approver: e.Spec.Approver,
			Expiry: e.Spec.Expiry.UTC().Format(time.RFC3339), ThisWeek: left > 0 && left <= 7*24*time.Hour, Expired: left <= 0,
			Link: objectLink("tollgate.dev/v1alpha1", "TollgateException", e.Namespace, e.Name)}
		switch {
		case row.Expired:
			row.Expires = "expired"
		case left < 48*time.Hour:
			row.Expires = "in " + left.Round(time.Hour).String()
		default:
			row.Expires = fmt.Sprintf("in %d days", int(left.Hours()/24))
		}
		for _, c := range e.Status.Conditions {
			if c.Type == v1alpha1.ConditionReady {
				row.Ready = string(c.Status)
			}
		}
		if week && !row.ThisWeek {
			continue
		}
		rows = append(rows, row)
	}
	slices.SortFunc(rows, func(a, b exceptionRow) int {
		return cmp.Or(strings.Compare(a.Expiry, b.Expiry), strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	v.Data = rows
	v.CSV = [][]string{{"namespace", "name", "policies", "match", "reason", "ticket", "approver", "expiry", "ready"}}
	for _, x := range rows {
		v.CSV = append(v.CSV, []string{x.Namespace, x.Name, x.Policies, x.Match, x.Reason, x.Ticket, x.Approver, x.Expiry, x.Ready})
	}
	return v, nil
}

// imageRow is one scanned image.
type imageRow struct {
	Image, Digest, Phase, Namespace      string
	Critical, High, Medium, Low, Fixable int32
	Link                                 string
	CriticalWidth, HighWidth             int
}

// imagesData is the Images page: vulnerability counts per image, and the
// signature verdicts the audit reported.
type imagesData struct {
	Images     []imageRow
	Signatures []result
}

func (s *Server) images(ctx context.Context, _ *http.Request) (*view, error) {
	v := &view{Title: "Images"}
	var list v1alpha1.ImageScanList
	vis, err := s.r.list(ctx, &list, false)
	if err != nil {
		return nil, err
	}
	v.noteVisible("ImageScans", vis)
	d := &imagesData{}
	var top int32
	for _, sc := range list.Items {
		c := sc.Status.Counts
		row := imageRow{Image: sc.Spec.Image, Digest: sc.Status.Digest, Phase: sc.Status.Phase, Namespace: sc.Spec.Namespace,
			Critical: c["CRITICAL"], High: c["HIGH"], Medium: c["MEDIUM"], Low: c["LOW"],
			Link: objectLink("tollgate.dev/v1alpha1", "ImageScan", "", sc.Name)}
		for _, n := range sc.Status.Fixable {
			row.Fixable += n
		}
		top = max(top, row.Critical+row.High)
		d.Images = append(d.Images, row)
	}
	for i := range d.Images {
		if top > 0 {
			d.Images[i].CriticalWidth = int(float64(d.Images[i].Critical) / float64(top) * 200)
			d.Images[i].HighWidth = int(float64(d.Images[i].High) / float64(top) * 200)
		}
	}
	slices.SortFunc(d.Images, func(a, b imageRow) int {
		return cmp.Or(cmp.Compare(b.Critical, a.Critical), cmp.Compare(b.High, a.High), strings.Compare(a.Image, b.Image))
	})
	reps, _, err := s.r.reports(ctx)
	if err == nil {
		for _, x := range results(reps) {
			if strings.HasPrefix(x.Policy, imagesig.FindingPrefix) {
				d.Signatures = append(d.Signatures, x)
			}
		}
	}
	v.Data = d
	v.CSV = [][]string{{"image", "digest", "phase", "namespace", "critical", "high", "medium", "low", "fixable"}}
	for _, x := range d.Images {
		v.CSV = append(v.CSV, []string{x.Image, x.Digest, x.Phase, x.Namespace,
			strconv.Itoa(int(x.Critical)), strconv.Itoa(int(x.High)), strconv.Itoa(int(x.Medium)), strconv.Itoa(int(x.Low)), strconv.Itoa(int(x.Fixable))})
	}
	return v, nil
}

// objectData is one object's YAML.
type objectData struct {
	Kind, Namespace, Name, YAML string
}

func (s *Server) object(ctx context.Context, r *http.Request) (*view, error) {
	q := r.URL.Query()
	gv, err := schema.ParseGroupVersion(q.Get("apiVersion"))
	kind, name := q.Get("kind"), q.Get("name")
	if err != nil || kind == "" || name == "" || len(kind) > 253 || len(name) > 253 {
		return nil, &badRequest{"want apiVersion, kind and name (and namespace) of an object"}
	}
	var u unstructured.Unstructured
	u.SetGroupVersionKind(gv.WithKind(kind))
	if err := s.r.c.Get(ctx, client.ObjectKey{Namespace: q.Get("namespace"), Name: name}, &u); err != nil {
		return nil, &badRequest{"reading " + kind + " " + name + ": " + err.Error()}
	}
	unstructured.RemoveNestedField(u.Object, "metadata", "managedFields")
	out, err := yaml.Marshal(u.Object)
	if err != nil {
		return nil, err
	}
	v := &view{Title: kind + " " + name, Data: objectData{Kind: kind, Namespace: u.GetNamespace(), Name: name, YAML: string(out)}}
	v.CSV = [][]string{{"yaml"}, {string(out)}}
	return v, nil
}

var funcs = template.FuncMap{
	"q": func(m map[string][]string, k string) string {
		if v := m[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	},
	"csvLink": func(page string, m map[string][]string) string {
		c := url.Values{}
		for k, v := range m {
			if k != "page" {
				c[k] = v
			}
		}
		c.Set("format", "csv")
		path := "/" + page
		if page == "overview" {
			path = "/"
		}
		return path + "?" + c.Encode()
	},
	"add":  func(a, b int) int { return a + b },
	"mul":  func(a, b int) int { return a * b },
	"list": func(s ...string) []string { return s },
	// short cuts a chart label to what fits beside its bar; the whole
	// label is in the bar's title and data-label.
	"short": func(s string) string {
		if r := []rune(s); len(r) > 28 {
			return string(r[:27]) + "…"
		}
		return s
	},
	"chart": func(caption string, b []Bar) chartData {
		return chartData{Caption: caption, Bars: b, Height: max(22, len(b)*22+6)}
	},
}

// chartData is what the bars template draws.
type chartData struct {
	Caption string
	Bars    []Bar
	Height  int
}
