package compliance_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/compliance"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/webhook"
)

// deployAt is a Tuesday of ISO week 2026-W46; a week later is W47.
var deployAt = time.Date(2026, 11, 10, 9, 0, 0, 0, time.UTC)

func lead(s float64) *float64 { return &s }

// deployment is an authenticated entry of an admitted deployment.
func deployment(uid string, at time.Time, ns, team, profile string, golden bool, leadTime *float64) *webhook.DecisionEntry {
	e := &webhook.DecisionEntry{Time: at, UID: uid, Webhook: "validate", User: "ci-bot", Operation: "UPDATE", Kind: "apps/v1/Deployment",
		Resource: "deployments", Namespace: ns, Name: "web", Allowed: true, Authenticated: true, Client: "kube-apiserver",
		Deployment: &webhook.Deployment{Team: team, Profile: profile, Golden: golden, LeadTimeSeconds: leadTime}}
	if leadTime != nil {
		c := at.Add(-time.Duration(*leadTime) * time.Second)
		e.Deployment.CommitTime, e.Deployment.CommitTimeAnnotation = &c, policies.CommitTimeAnnotation
	}
	return e
}

// profileChange is an authenticated entry of the namespace-profile gate.
func profileChange(uid string, at time.Time, user, ns string, allowed bool, f policies.Finding) *webhook.DecisionEntry {
	f.Policy = compliance.PolicyNamespaceProfile
	return &webhook.DecisionEntry{Time: at, UID: uid, Webhook: "validate", User: user, Operation: "UPDATE", Kind: "v1/Namespace",
		Resource: "namespaces", Name: ns, Allowed: allowed, Authenticated: true, Client: "kube-apiserver", Findings: []policies.Finding{f}}
}

// deploymentLog is a chained decision log with deployments of two teams
// over two weeks, profile changes, and entries that are no evidence: a
// dry run, an unauthenticated caller, an edited line.
func deploymentLog(t *testing.T) string {
	t.Helper()
	week2 := deployAt.Add(7 * 24 * time.Hour)
	dry := deployment("dry", deployAt, "shop", "payments", "golden", true, lead(60))
	dry.DryRun = true
	forged := deployment("forged", deployAt, "shop", "payments", "golden", true, lead(60))
	forged.Authenticated, forged.Client = false, ""
	entries := []*webhook.DecisionEntry{
		deployment("d1", deployAt, "shop", "payments", "golden", true, lead(3600)),
		deployment("d2", deployAt.Add(2*time.Hour), "shop", "payments", "golden", true, lead(1800)),
		deployment("d3", week2, "shop", "payments", "golden", true, nil),
		deployment("d4", week2.Add(time.Hour), "lab", "research", "innovation", false, lead(86400)),
		deployment("d5", week2.Add(2*time.Hour), "lab", "research", "innovation", false, nil),
		deployment("edited", week2, "lab", "research", "innovation", false, nil),
		dry, forged,
		profileChange("p1", deployAt.Add(time.Hour), "bob", "lab", true, policies.Finding{Action: policies.ActionAudit,
			Message: `namespace lab moved from profile "golden" to "innovation" by bob`,
			Details: map[string]string{"namespace": "lab", "from": "golden", "to": "innovation"}}),
		profileChange("p2", week2, "mallory", "shop", false, policies.Finding{Action: policies.ActionEnforce,
			Message: `namespace shop moved from profile "golden" to "innovation" by mallory: mallory may not change profiles`}),
		profileChange("p3", week2.Add(time.Minute), "mallory", "shop", false, policies.Finding{Action: policies.ActionEnforce,
			Message: "profile changes are reserved to the platform team"}),
	}
	var buf bytes.Buffer
	l := webhook.NewChainedDecisionLog(&buf, webhook.DecisionLogOptions{Writer: "test", Now: func() time.Time { return week2.Add(3 * time.Hour) }})
	for _, e := range entries {
		if err := l.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	text := buf.String()
	lines := strings.Split(text, "\n")
	for i, line := range lines {
		if strings.Contains(line, `"uid":"edited"`) {
			lines[i] = strings.Replace(line, `"team":"research"`, `"team":"payments"`, 1)
		}
	}
	return strings.Join(lines, "\n")
}

func deploymentReport(t *testing.T) *compliance.Report {
	t.Helper()
	var d compliance.Denials
	if err := d.ReadDecisionLog(strings.NewReader(deploymentLog(t)), compliance.DecisionLogOptions{Source: "decisions.jsonl"}); err != nil {
		t.Fatal(err)
	}
	return compliance.Build(compliance.Input{GeneratedAt: deployAt.Add(14 * 24 * time.Hour), Cluster: &compliance.Cluster{Name: "prod-eu-1"},
		Versions: compliance.Versions{Tollgate: "v0.9.0", PolicyLibrary: "0.1.0"}, Denials: &d})
}

// TestDeploymentSection: deployment frequency per team and ISO week, the
// golden share and the median lead times, from evidence only.
func TestDeploymentSection(t *testing.T) {
	r := deploymentReport(t)
	if r.Denials.Tampered != 1 || r.Denials.Unauthenticated != 1 || r.Denials.DryRun != 1 {
		t.Fatalf("tampered %d, unauthenticated %d, dry runs %d; want one each", r.Denials.Tampered, r.Denials.Unauthenticated, r.Denials.DryRun)
	}
	d := r.Deployments
	if d == nil {
		t.Fatal("no deployment section")
	}
	want := &compliance.DeploymentSection{
		Deployments: 5, Golden: 3, GoldenShare: lead(0.6), LeadTimes: 3, MedianLeadTimeSeconds: lead(3600),
		Teams: []compliance.TeamDeployments{
			{Team: "payments", DeploymentCounts: compliance.DeploymentCounts{Deployments: 3, Golden: 3, GoldenShare: lead(1), LeadTimes: 2, MedianLeadTimeSeconds: lead(2700)},
				Weeks: []compliance.WeekDeployments{
					{Week: "2026-W46", DeploymentCounts: compliance.DeploymentCounts{Deployments: 2, Golden: 2, GoldenShare: lead(1), LeadTimes: 2, MedianLeadTimeSeconds: lead(2700)}},
					{Week: "2026-W47", DeploymentCounts: compliance.DeploymentCounts{Deployments: 1, Golden: 1, GoldenShare: lead(1)}},
				}},
			{Team: "research", DeploymentCounts: compliance.DeploymentCounts{Deployments: 2, GoldenShare: lead(0), LeadTimes: 1, MedianLeadTimeSeconds: lead(86400)},
				Weeks: []compliance.WeekDeployments{
					{Week: "2026-W47", DeploymentCounts: compliance.DeploymentCounts{Deployments: 2, GoldenShare: lead(0), LeadTimes: 1, MedianLeadTimeSeconds: lead(86400)}},
				}},
		},
		Profiles: []compliance.ProfileDeployments{{Profile: "golden", Golden: true, Deployments: 3}, {Profile: "innovation", Deployments: 2}},
	}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Errorf("deployments (-want +got):\n%s", diff)
	}
}

// TestProfileChangeSection: who moved which namespace, read from the
// finding's details, else from its message, else left blank with the
// message shown.
func TestProfileChangeSection(t *testing.T) {
	c := deploymentReport(t).ProfileChanges
	week2 := deployAt.Add(7 * 24 * time.Hour)
	want := &compliance.ProfileChangeSection{Allowed: 1, Denied: 2, Changes: []compliance.ProfileChange{
		{Time: week2.Add(time.Minute), User: "mallory", Operation: "UPDATE", Namespace: "shop", Action: policies.ActionEnforce,
			Message: "profile changes are reserved to the platform team"},
		{Time: week2, User: "mallory", Operation: "UPDATE", Namespace: "shop", From: "golden", To: "innovation", Action: policies.ActionEnforce,
			Message: `namespace shop moved from profile "golden" to "innovation" by mallory: mallory may not change profiles`},
		{Time: deployAt.Add(time.Hour), User: "bob", Operation: "UPDATE", Namespace: "lab", From: "golden", To: "innovation", Allowed: true, Action: policies.ActionAudit,
			Message: `namespace lab moved from profile "golden" to "innovation" by bob`},
	}}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("profile changes (-want +got):\n%s", diff)
	}
}

// TestDeploymentSectionsRender compares the Markdown and JSON renderings
// with their golden files (go test -update rewrites them) and checks the
// HTML holds the same figures.
func TestDeploymentSectionsRender(t *testing.T) {
	r := deploymentReport(t)
	for _, tc := range []struct {
		format compliance.Format
		file   string
	}{{compliance.FormatMarkdown, "deployments.md"}, {compliance.FormatJSON, "deployments.json"}} {
		var buf bytes.Buffer
		if err := compliance.Write(&buf, tc.format, r); err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", "golden", tc.file)
		if updating() {
			if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test ./compliance -update to create it)", err)
		}
		if diff := cmp.Diff(string(want), buf.String()); diff != "" {
			t.Errorf("%s differs from the golden file (-want +got):\n%s", tc.file, diff)
		}
	}
	var html bytes.Buffer
	if err := compliance.Write(&html, compliance.FormatHTML, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`<h2>Deployments</h2>`, `<b>5 deployments</b> in the period, <b>3 (60.0 %)</b> on the golden path`,
		`<td>payments</td><td class="mono">2026-W46</td><td class="num">2</td><td class="num">2 (100.0 %)</td><td class="num">45m</td>`,
		`<h2>Namespace profile changes</h2>`, `<td class="small">bob</td><td class="mono">lab</td><td class="mono">golden</td><td class="mono">innovation</td>`,
	} {
		if !strings.Contains(html.String(), want) {
			t.Errorf("HTML lacks %s", want)
		}
	}
}

// updating reads the package's -update flag (defined in report_test.go).
func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}
