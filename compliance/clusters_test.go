package compliance

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	setA = "sha256:aaaa000000000000000000000000000000000000000000000000000000000001"
	setB = "sha256:bbbb000000000000000000000000000000000000000000000000000000000002"
)

// twoClusters is the fixture cluster as "a" (a privileged workload,
// among others) and a clean copy of it as "b": the same objects examined,
// only its passes and the waived result kept.
func twoClusters(t *testing.T) (common Input, a, b Input) {
	t.Helper()
	a = fixtureInput(t)
	common = Input{GeneratedAt: a.GeneratedAt, Frameworks: a.Frameworks, Versions: Versions{Tollgate: "v0.9.0", PodSecurity: "latest"}, Denials: a.Denials}
	a.Denials, a.Frameworks = nil, nil
	a.Cluster = &Cluster{Name: "a", Server: "https://10.0.0.1:6443", KubernetesVersion: "v1.34.3", UID: "uid-a", PolicySets: []string{setA}}
	b = a
	b.Cluster = &Cluster{Name: "b", Server: "https://10.0.0.2:6443", KubernetesVersion: "v1.34.3", UID: "uid-b", PolicySets: []string{setA}}
	b.Results = slices.DeleteFunc(slices.Clone(a.Results), func(r Result) bool { return r.Result.Violation() })
	b.Counted = nil // counted from its results
	return common, a, b
}

func findControl(t *testing.T, r *Report, fw, id string) *ControlResult {
	t.Helper()
	for i := range r.Frameworks {
		if r.Frameworks[i].ID != fw {
			continue
		}
		for j := range r.Frameworks[i].Controls {
			if c := &r.Frameworks[i].Controls[j]; c.ID == id {
				return c
			}
		}
	}
	t.Fatalf("no control %s:%s", fw, id)
	return nil
}

func frameworkSummary(r *Report, fw string) FrameworkSummary {
	for _, f := range r.Frameworks {
		if f.ID == fw {
			return f.Summary
		}
	}
	return FrameworkSummary{}
}

// TestBuildClusters: a control failing in one cluster fails overall, its
// failures name the cluster, and each cluster's summary is the one a
// report on it alone gives.
func TestBuildClusters(t *testing.T) {
	common, a, b := twoClusters(t)
	r := BuildClusters(common, []Input{a, b})

	if r.Title != "Compliance report — a, b" || r.Cluster != nil {
		t.Errorf("title %q, cluster %+v", r.Title, r.Cluster)
	}
	if len(r.Clusters) != 2 || r.Clusters[0].Cluster.Name != "a" || r.Clusters[1].Cluster.Name != "b" {
		t.Fatalf("clusters %+v", r.Clusters)
	}
	// Both ran the same policy set: the cover names it.
	if r.Versions.PolicyDigest != setA {
		t.Errorf("policy digest %q, want %q", r.Versions.PolicyDigest, setA)
	}

	privileged := findControl(t, r, "pss", "baseline/privileged-containers")
	if privileged.Verdict != VerdictFailed {
		t.Errorf("privileged containers: %s, want failed (it fails in a)", privileged.Verdict)
	}
	want := []ClusterVerdict{{Cluster: "a", Verdict: VerdictFailed, Failures: 1}, {Cluster: "b", Verdict: VerdictPassed}}
	if diff := cmp.Diff(want, privileged.Clusters); diff != "" {
		t.Errorf("per-cluster verdicts (-want +got):\n%s", diff)
	}
	if got := privileged.FailingClusters(); !slices.Equal(got, []string{"a"}) {
		t.Errorf("failing clusters %v", got)
	}
	for _, f := range privileged.Failures {
		if f.Cluster != "a" {
			t.Errorf("failure %s/%s attributed to cluster %q", f.Resource, f.Policy, f.Cluster)
		}
	}

	// Each cluster's summary is that of a report on it alone.
	for i, part := range []Input{a, b} {
		part.GeneratedAt, part.Frameworks = common.GeneratedAt, common.Frameworks
		part.Versions.PodSecurity = common.Versions.PodSecurity
		alone := Build(part)
		for _, cf := range r.Clusters[i].Frameworks {
			if diff := cmp.Diff(frameworkSummary(alone, cf.ID), cf.Summary); diff != "" {
				t.Errorf("cluster %s, %s (-alone +breakdown):\n%s", part.Cluster.Name, cf.ID, diff)
			}
		}
		if r.Clusters[i].Checks != alone.Checks {
			t.Errorf("cluster %s: %d checks, alone %d", part.Cluster.Name, r.Clusters[i].Checks, alone.Checks)
		}
	}
	aPSS, bPSS := r.Clusters[0].Frameworks, r.Clusters[1].Frameworks
	if len(aPSS) != len(common.Frameworks) || len(bPSS) != len(common.Frameworks) {
		t.Fatalf("framework summaries: a %d, b %d, want %d", len(aPSS), len(bPSS), len(common.Frameworks))
	}
	for i := range bPSS {
		if bPSS[i].Summary.Failed != 0 {
			t.Errorf("clean cluster b fails %d %s controls", bPSS[i].Summary.Failed, bPSS[i].ID)
		}
		// Overall, a framework fails what fails in any cluster: here a's.
		if got, want := frameworkSummary(r, aPSS[i].ID).Failed, aPSS[i].Summary.Failed; got != want {
			t.Errorf("%s: %d failed overall, %d in a", aPSS[i].ID, got, want)
		}
	}

	// The same exception name in both clusters is two exceptions.
	var exc []string
	for _, x := range r.Exceptions {
		exc = append(exc, x.Cluster+":"+x.Namespace+"/"+x.Name)
	}
	if diff := cmp.Diff([]string{"a:platform-exceptions/legacy-billing", "b:platform-exceptions/legacy-billing"}, exc); diff != "" {
		t.Errorf("exceptions (-want +got):\n%s", diff)
	}
	for _, x := range r.Exceptions {
		if x.Waived != 1 || x.Reason == "" {
			t.Errorf("exception %s:%s waived %d, reason %q", x.Cluster, x.Name, x.Waived, x.Reason)
		}
	}
	// Counts: a counted from its Reports' summaries, b from its results.
	var tollgate Summary
	for _, s := range r.Sources {
		if s.Source == SourceTollgate {
			tollgate = s.Summary
		}
	}
	if tollgate.Fail != a.Counted[SourceTollgate].Fail || tollgate.Pass <= a.Counted[SourceTollgate].Pass {
		t.Errorf("tollgate counted %+v; a alone %+v", tollgate, a.Counted[SourceTollgate])
	}
}

// TestBuildClustersPolicySets: clusters on different policy sets leave
// the cover's digest empty and name each in the breakdown.
func TestBuildClustersPolicySets(t *testing.T) {
	common, a, b := twoClusters(t)
	b.Cluster.PolicySets = []string{setB}
	r := BuildClusters(common, []Input{a, b})
	if r.Versions.PolicyDigest != "" {
		t.Errorf("cover names %q though the clusters ran different sets", r.Versions.PolicyDigest)
	}
	if got := [][]string{r.Clusters[0].Cluster.PolicySets, r.Clusters[1].Cluster.PolicySets}; !cmp.Equal(got, [][]string{{setA}, {setB}}) {
		t.Errorf("policy sets %v", got)
	}
}

// TestBuildClustersUnreachable: a cluster that could not be read is
// listed, named in a note, and adds nothing.
func TestBuildClustersUnreachable(t *testing.T) {
	common, a, _ := twoClusters(t)
	down := Input{Cluster: &Cluster{Name: "edge", Server: "https://10.9.9.9:6443", Unreachable: "dial tcp 10.9.9.9:6443: connect: connection refused"}}
	r := BuildClusters(common, []Input{a, down})
	alone := BuildClusters(common, []Input{a})
	if len(r.Clusters) != 2 || r.Clusters[1].Cluster.Unreachable == "" || len(r.Clusters[1].Frameworks) != 0 {
		t.Fatalf("breakdown %+v", r.Clusters)
	}
	if !slices.ContainsFunc(r.Notes, func(n string) bool {
		return strings.Contains(n, "Cluster edge (https://10.9.9.9:6443) could not be read") && strings.Contains(n, "connection refused")
	}) {
		t.Errorf("no note names the cluster:\n%s", strings.Join(r.Notes, "\n"))
	}
	for i := range r.Frameworks {
		if diff := cmp.Diff(alone.Frameworks[i].Summary, r.Frameworks[i].Summary); diff != "" {
			t.Errorf("%s changed by an unreachable cluster:\n%s", r.Frameworks[i].ID, diff)
		}
	}
}

// TestRenderClusters: every format shows the breakdown and the cluster
// of each failing resource.
func TestRenderClusters(t *testing.T) {
	common, a, b := twoClusters(t)
	r := BuildClusters(common, []Input{a, b})
	render := func(f Format) string {
		var buf bytes.Buffer
		if err := Write(&buf, f, r); err != nil {
			t.Fatal(err)
		}
		return buf.String()
	}

	mdText := render(FormatMarkdown)
	for _, want := range []string{
		"| Clusters | a, b (see Clusters) |",
		"## Clusters",
		"| a | https://10.0.0.1:6443 | v1.34.3 | `uid-a` | `" + setA + "` |",
		"| Pod Security Standards | b | ",
		"| Pod Security Standards | **all** | ",
		"By cluster: a FAILED (1 failing), b PASSED.",
		"| **a**: shop/Deployment/node-agent | `pss-baseline-privileged` |",
		"| **b**: `platform-exceptions/legacy-billing` |",
	} {
		if !strings.Contains(mdText, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}

	html := render(FormatHTML)
	for _, want := range []string{
		`<h3 id="clusters">Clusters</h3>`,
		"Kubernetes clusters <b>a</b>, <b>b</b>",
		"<b>By cluster:</b> a FAILED (1 failing), b PASSED.",
		"<b>a</b>: <span class=\"mono\">shop/Deployment/node-agent</span>",
		setA,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}

	rows, err := csv.NewReader(strings.NewReader(render(FormatCSV))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	found := false
	for _, row := range rows[1:] {
		if row[col["control"]] == "baseline/privileged-containers" && row[col["resource_name"]] == "node-agent" {
			found = true
			if row[col["cluster"]] != "a" || row[col["cluster_policy_set"]] != setA || row[col["cluster_verdicts"]] != "a=failed; b=passed" {
				t.Errorf("CSV row: cluster %q, policy set %q, verdicts %q", row[col["cluster"]], row[col["cluster_policy_set"]], row[col["cluster_verdicts"]])
			}
		}
	}
	if !found {
		t.Error("CSV has no row for node-agent under baseline/privileged-containers")
	}

	var back Report
	if err := json.Unmarshal([]byte(render(FormatJSON)), &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r.Clusters, back.Clusters); diff != "" {
		t.Errorf("JSON breakdown (-built +read):\n%s", diff)
	}
}
