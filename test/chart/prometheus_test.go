package chart

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sigsyaml "sigs.k8s.io/yaml"
)

func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is missing: make debs installs Debian's prometheus package, which has it")
	}
	return p
}

// dashboardExprs are the dashboard's queries with Grafana's variables
// replaced by what Grafana would put there.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chartDir(t), "files", "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatal(err)
	}
	r := strings.NewReplacer("$__rate_interval", "5m", "$__range", "1h", "$job", "tollgate-metrics")
	var out []string
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			out = append(out, r.Replace(tg.Expr))
		}
	}
	return out
}

// TestPrometheusRules checks the rendered PrometheusRule and the dashboard's
// queries with promtool, and unit-tests the alerts: each fires on the
// series it is about, with its labels and messages.
func TestPrometheusRules(t *testing.T) {
	bin := promtool(t)
	objs := objects(t, render(t, fullRelease))
	rule := find(t, objs, "PrometheusRule", "gate")
	dir := t.TempDir()
	rules, err := sigsyaml.Marshal(rule["spec"])
	if err != nil {
		t.Fatal(err)
	}
	rulesFile := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rulesFile, rules, 0o644); err != nil {
		t.Fatal(err)
	}

	// The dashboard's queries, as recording rules promtool parses.
	var rec []map[string]any
	for i, e := range dashboardExprs(t) {
		rec = append(rec, map[string]any{"record": fmt.Sprintf("dashboard:query_%d", i), "expr": e})
	}
	dashRules, err := sigsyaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rec}}})
	if err != nil {
		t.Fatal(err)
	}
	dashFile := filepath.Join(dir, "dashboard-rules.yaml")
	if err := os.WriteFile(dashFile, dashRules, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, _, err := run(ctx, dir, nil, "", bin, "check", "rules", rulesFile, dashFile); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}

	testFile := filepath.Join(dir, "rules_test.yaml")
	if err := os.WriteFile(testFile, []byte(alertTests), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, _, err := run(ctx, dir, nil, "", bin, "test", "rules", testFile); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// alertTests feed series to the full release's rules (job gate-metrics,
// budget scans every 2m, audits every 15m) and say which alerts fire, with
// what.
const alertTests = `
rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'up{job="gate-metrics", pod="gate-a"}'
        values: '0x20'
      - series: 'tollgate_admission_requests_total{job="gate-metrics", webhook="validate", decision="error", dry_run="false"}'
        values: '0+30x30'
      - series: 'tollgate_admission_requests_total{job="gate-metrics", webhook="validate", decision="allowed", dry_run="false"}'
        values: '0+30x30'
      - series: 'tollgate_admission_requests_total{job="gate-metrics", webhook="mutate", decision="patched", dry_run="false"}'
        values: '0+30x30'
      - series: 'tollgate_admission_duration_seconds_bucket{job="gate-metrics", webhook="validate", dry_run="false", le="1"}'
        values: '0x30'
      - series: 'tollgate_admission_duration_seconds_bucket{job="gate-metrics", webhook="validate", dry_run="false", le="2.5"}'
        values: '0+60x30'
      - series: 'tollgate_admission_duration_seconds_bucket{job="gate-metrics", webhook="validate", dry_run="false", le="+Inf"}'
        values: '0+60x30'
      - series: 'tollgate_budget_utilization_ratio{job="gate-metrics", pod="gate-a", namespace="ml", budget="monthly"}'
        values: '1.2x30'
      - series: 'tollgate_budget_utilization_ratio{job="gate-metrics", pod="gate-a", namespace="shop", budget="monthly"}'
        values: '0.85x30'
      - series: 'tollgate_budget_utilization_ratio{job="gate-metrics", pod="gate-a", namespace="web", budget="monthly"}'
        values: '0.5x30'
      - series: 'tollgate_finops_usage_stale{job="gate-metrics", pod="gate-a"}'
        values: '1x30'
      - series: 'tollgate_image_scan_database_stale{job="gate-metrics", pod="gate-a"}'
        values: '0x4 1x30'
      - series: 'tollgate_finops_usage_stale{job="gate-metrics", pod="gate-b"}'
        values: '0x30'
      # The leader scanned at 1m, then never again; the other replica's gauge stays 0.
      - series: 'tollgate_finops_last_scan_timestamp_seconds{job="gate-metrics", pod="gate-a"}'
        values: '0 60x30'
      - series: 'tollgate_finops_last_scan_timestamp_seconds{job="gate-metrics", pod="gate-b"}'
        values: '0x30'
      # The leader audited at 1m, then never again.
      - series: 'tollgate_audit_last_scan_timestamp_seconds{job="gate-metrics", pod="gate-a"}'
        values: '0 60x60'
      - series: 'tollgate_audit_scan_errors{job="gate-metrics", pod="gate-a"}'
        values: '2x60'
    alert_rule_test:
      - eval_time: 4m
        alertname: TollgateDown
        exp_alerts: []
      - eval_time: 6m
        alertname: TollgateDown
        exp_alerts:
          - exp_labels: {severity: critical}
            exp_annotations:
              summary: No Tollgate replica answers.
              description: 'No replica of gate in platform-tollgate has been scraped for 5 minutes. The validating webhook fails closed: changes in intercepted namespaces are refused. If Tollgate cannot be brought back, the emergency exit is kubectl delete validatingwebhookconfiguration gate.'
      - eval_time: 20m
        alertname: TollgateAdmissionErrors
        exp_alerts:
          - exp_labels: {severity: critical, webhook: validate}
            exp_annotations:
              summary: Tollgate's validate webhook answers with errors.
              description: '50% of validate admission requests ended in an error over 10 minutes. The validating webhook fails closed on errors; see the server log.'
      - eval_time: 20m
        alertname: TollgateAdmissionLatencyHigh
        exp_alerts:
          - exp_labels: {severity: warning, webhook: validate}
            exp_annotations:
              summary: Tollgate's validate webhook is slow.
              description: The 99th percentile of validate admission requests took 2.485s over 10 minutes (alert above 1s; the API server gives up at the webhook timeout).
      - eval_time: 5m
        alertname: TollgateBudgetExceeded
        exp_alerts:
          - exp_labels: {severity: critical, namespace: ml, budget: monthly}
            exp_annotations:
              summary: Budget ml/monthly is spent.
              description: Spend to date in Budget ml/monthly is 120% of its amount for the period.
      - eval_time: 5m
        alertname: TollgateBudgetThreshold
        exp_alerts:
          - exp_labels: {severity: warning, namespace: shop, budget: monthly}
            exp_annotations:
              summary: Budget shop/monthly is at 85%.
              description: Spend to date in Budget shop/monthly is 85% of its amount for the period.
      - eval_time: 14m
        alertname: TollgateFinOpsUsageStale
        exp_alerts: []
      - eval_time: 16m
        alertname: TollgateFinOpsUsageStale
        exp_alerts:
          - exp_labels: {severity: warning}
            exp_annotations:
              summary: Tollgate cannot read usage from Prometheus.
              description: 'Budget scans have counted requests only for 15 minutes: usage could not be read from http://prometheus-operated.monitoring.svc:9090. No alert fires on the missing data.'
      - eval_time: 10m
        alertname: TollgateBudgetScanStale
        exp_alerts: []
      - eval_time: 14m
        alertname: TollgateBudgetScanStale
        exp_alerts:
          - exp_labels: {severity: warning}
            exp_annotations:
              summary: No budget scan has finished for 13m 0s.
              description: The leader runs the budget scanner every 2m; none has finished in 3 intervals. Spend and alerts are behind; see the leader's log.
      - eval_time: 18m
        alertname: TollgateImageScanDatabaseStale
        exp_alerts: []
      - eval_time: 20m
        alertname: TollgateImageScanDatabaseStale
        exp_alerts:
          - exp_labels: {severity: warning}
            exp_annotations:
              summary: Image scan results come from a stale vulnerability database.
              description: 'The vulnerability database is older than 48h or cannot be read: every ImageScan is marked Stale and policies see its result as stale. Check that the leader can reach http://trivy.security.svc:4954.'
      - eval_time: 50m
        alertname: TollgateAuditStale
        exp_alerts: []
      - eval_time: 53m
        alertname: TollgateAuditStale
        exp_alerts:
          - exp_labels: {severity: warning}
            exp_annotations:
              summary: No audit scan has finished for 52m 0s.
              description: The leader audits every 15m; none has finished in 3 intervals. The Reports are behind; see the leader's log.
      - eval_time: 29m
        alertname: TollgateAuditErrors
        exp_alerts: []
      - eval_time: 31m
        alertname: TollgateAuditErrors
        exp_alerts:
          - exp_labels: {severity: warning}
            exp_annotations:
              summary: The audit cannot judge everything.
              description: 'The last audit scans could not list 2 kinds or ran into failing policies. A kind a policy names needs read access: rbac.extraReadRules.'
`
