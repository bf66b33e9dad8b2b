package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/compliance"
	"github.com/tollgate-dev/tollgate/test/cluster"
	"github.com/tollgate-dev/tollgate/webhook"
)

// deliveryDeployment is a Deployment of team delivery-e2e with an image,
// a replica count and the commit time CI would set.
func deliveryDeployment(image string, replicas int, commit time.Time) string {
	return fmt.Sprintf(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"delivery",
	 "annotations":{"tollgate.dev/commit-time":%q}},
	 "spec":{"replicas":%d,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},
	  "spec":{"containers":[{"name":"app","image":%q}]}}}}`, commit.UTC().Format(time.RFC3339), replicas, image)
}

// deploymentsCounted reads tollgate_deployments_total for the delivery
// namespace from the server's /metrics.
func deploymentsCounted(t *testing.T) float64 {
	t.Helper()
	metrics := scrape(t, apiServerClient(t), fmt.Sprintf("https://127.0.0.1:%d", env.port))
	for line := range strings.Lines(metrics) {
		if strings.HasPrefix(line, `tollgate_deployments_total{namespace="delivery",profile="golden",team="delivery-e2e"}`) {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	return 0
}

// TestDeploymentFrequency: on the real API server, creating a Deployment
// and changing its image are deployments; re-applying it unchanged,
// scaling it (by apply and by the scale subresource) and a server dry run
// are not. The server's counter and its decision log say so, and tollgate
// report, run on that log, shows them in its Deployments section.
func TestDeploymentFrequency(t *testing.T) {
	ctx := context.Background()
	ns := `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"delivery","labels":{"team":"delivery-e2e","owner":"dora","cost-center":"CC-4242"}}}`
	if _, stderr, err := apply(t, ns); err != nil {
		t.Fatal(stderr)
	}
	firstCommit := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	secondCommit := time.Now().Add(-3 * time.Minute).Truncate(time.Second)
	v1 := deliveryDeployment("registry.example/delivery/web:1.0", 2, firstCommit)

	steps := []struct {
		name     string
		run      func() (string, string, error)
		deployed bool
	}{
		{"create", func() (string, string, error) { return apply(t, v1) }, true},
		{"re-apply unchanged", func() (string, string, error) { return apply(t, v1) }, false},
		{"scale by apply", func() (string, string, error) {
			return apply(t, deliveryDeployment("registry.example/delivery/web:1.0", 3, firstCommit))
		}, false},
		{"scale subresource", func() (string, string, error) {
			return env.cluster.Kubectl(ctx, "scale", "deployment", "web", "-n", "delivery", "--replicas=4")
		}, false},
		{"new image, dry run", func() (string, string, error) {
			return apply(t, deliveryDeployment("registry.example/delivery/web:2.0", 4, secondCommit), "--dry-run=server")
		}, false},
		{"new image", func() (string, string, error) {
			return apply(t, deliveryDeployment("registry.example/delivery/web:2.0", 4, secondCommit))
		}, true},
	}
	for _, s := range steps {
		before := deploymentsCounted(t)
		if out, stderr, err := s.run(); err != nil {
			t.Fatalf("%s: %v\n%s%s", s.name, err, out, stderr)
		}
		want := before
		if s.deployed {
			want++
		}
		// The counter moves in the webhook call, before kubectl returns.
		if got := deploymentsCounted(t); got != want {
			t.Errorf("%s: tollgate_deployments_total went from %v to %v, want %v", s.name, before, got, want)
		}
	}

	// The decision log holds the two deployments, authenticated, with
	// their commit times and lead times.
	var logged []webhook.DecisionEntry
	sc := bufio.NewScanner(strings.NewReader(env.decision.String()))
	sc.Buffer(nil, 8<<20)
	for sc.Scan() {
		var e webhook.DecisionEntry
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Namespace == "delivery" && e.Deployment != nil {
			logged = append(logged, e)
		}
	}
	if len(logged) != 2 {
		t.Fatalf("decision log holds %d deployments in delivery, want 2:\n%+v", len(logged), logged)
	}
	for i, commit := range []time.Time{firstCommit, secondCommit} {
		e, d := logged[i], logged[i].Deployment
		if !e.Authenticated || e.DryRun || !e.Allowed || d.Team != "delivery-e2e" || d.Profile != "golden" || !d.Golden {
			t.Errorf("deployment %d: %+v %+v", i, e, d)
		}
		if d.CommitTime == nil || !d.CommitTime.Equal(commit) || d.LeadTimeSeconds == nil || *d.LeadTimeSeconds <= 0 {
			t.Errorf("deployment %d: commit time %v, lead time %v; want %v and a positive lead time", i, d.CommitTime, d.LeadTimeSeconds, commit)
		}
	}
	metrics := scrape(t, apiServerClient(t), fmt.Sprintf("https://127.0.0.1:%d", env.port))
	if !strings.Contains(metrics, `tollgate_deployment_lead_time_seconds_count{profile="golden"}`) {
		t.Error("/metrics lacks the lead time histogram")
	}
	var series []string
	for line := range strings.Lines(metrics) {
		if strings.HasPrefix(line, "tollgate_deployment") {
			series = append(series, strings.TrimSpace(line))
		}
	}
	entry, _ := json.Marshal(logged[1])
	t.Logf("/metrics:\n%s\ndecision log entry:\n%s", strings.Join(series, "\n"), entry)

	// tollgate report on that log.
	dir := t.TempDir()
	logFile := filepath.Join(dir, "decisions.jsonl")
	if err := os.WriteFile(logFile, []byte(env.decision.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := tollgateBinary(t)
	report := func(format string) string {
		cmd := exec.CommandContext(ctx, bin, "report", "--kubeconfig", env.cluster.KubeconfigPath(), "--cluster-name", "e2e",
			"--framework", "pss", "--decision-log", logFile, "--since", "1d", "--format", format)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tollgate report: %v\n%s", err, errText(err))
		}
		return string(out)
	}
	var r compliance.Report
	if err := json.Unmarshal([]byte(report("json")), &r); err != nil {
		t.Fatal(err)
	}
	if r.Deployments == nil {
		t.Fatal("the report has no Deployments section")
	}
	var team *compliance.TeamDeployments
	for i := range r.Deployments.Teams {
		if r.Deployments.Teams[i].Team == "delivery-e2e" {
			team = &r.Deployments.Teams[i]
		}
	}
	if team == nil || team.Deployments != 2 || team.LeadTimes != 2 || team.Golden != 2 || team.MedianLeadTimeSeconds == nil {
		t.Fatalf("the report's delivery-e2e team: %+v", team)
	}
	md := report("markdown")
	_, section, found := strings.Cut(md, "## Deployments")
	section, _, found2 := strings.Cut(section, "## Namespace profile changes")
	if !found || !found2 {
		t.Fatalf("the Markdown report lacks its Deployments or Namespace profile changes section:\n%s", md)
	}
	if !strings.Contains(section, "| delivery-e2e | **all weeks** | 2 | 2 (100.0 %) |") {
		t.Errorf("the Markdown report's Deployments section lacks delivery-e2e:\n%s", section)
	}
	t.Logf("tollgate report, Deployments section:\n%s", section)
}

// tollgateBinary builds the tollgate command once per test run.
func tollgateBinary(t *testing.T) string {
	t.Helper()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "tollgate")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/tollgate")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building tollgate: %v\n%s", err, out)
	}
	return bin
}

func errText(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}
