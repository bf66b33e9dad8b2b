package compliance

import (
	"bytes"
	"context"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/library"
	"github.com/tollgate-dev/tollgate/policies/vuln"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// fixtureNow is the fixed clock of the golden reports.
var fixtureNow = time.Date(2025, 7, 1, 9, 0, 0, 0, time.UTC)

var (
	libraryOnce sync.Once
	libraryMeta map[string]policies.Metadata
	libraryErr  error
)

// libraryPolicies loads the built-in library once and returns its policies'
// metadata by id.
func libraryPolicies(t *testing.T) map[string]policies.Metadata {
	t.Helper()
	libraryOnce.Do(func() {
		mods, err := policies.ReadFS(library.FS(), "library", false)
		if err != nil {
			libraryErr = err
			return
		}
		e, err := policies.New(context.Background(), policies.Options{Modules: mods})
		if err != nil {
			libraryErr = err
			return
		}
		libraryMeta = map[string]policies.Metadata{}
		for _, m := range e.Policies() {
			libraryMeta[m.ID] = m
		}
	})
	if libraryErr != nil {
		t.Fatal(libraryErr)
	}
	return libraryMeta
}

func builtin(t *testing.T) []Framework {
	t.Helper()
	fws, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	return fws
}

// readReport reads a PolicyReport fixture as the API server would return
// it: a JSON-shaped map.
func readReport(t *testing.T, name string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "reports", name))
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := yaml.Unmarshal(data, &obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

var legacyException = policies.Exception{
	Namespace: "platform-exceptions", Name: "legacy-billing",
	Policies: []string{"pss-restricted-run-as-non-root"},
	Match:    policies.ExceptionMatch{Namespaces: []string{"legacy"}, Names: []string{"billing-v1*"}},
	Reason:   "Vendor image runs as root; the replacement ships in Q3",
	Ticket:   "CHG-1042", Approver: "maria.schmidt (CISO)",
	Expires: time.Date(2025, 9, 30, 0, 0, 0, 0, time.UTC),
}

// fixtureInput is a cluster as the audit and another engine left it: a
// hardened and a privileged workload, a root workload under an exception,
// a Namespace without owners, an unsigned image, Kyverno's and Trivy's
// reports, and a decision log.
func fixtureInput(t *testing.T) Input {
	t.Helper()
	meta := libraryPolicies(t)
	scanned := fixtureNow.Add(-2 * time.Hour)
	finding := func(policy, msg, path string) *policies.Finding {
		m, ok := meta[policy]
		if !ok {
			m = policies.Metadata{ID: policy, Severity: policies.SeverityHigh,
				Remediation: "Use an image signed by an authority the TollgateImagePolicy corp-signed names."}
		}
		return &policies.Finding{Policy: policy, Title: m.Title, Message: msg, Severity: m.Severity,
			Action: policies.ActionEnforce, Path: path, Controls: m.Controls, Remediation: m.Remediation}
	}
	agent := Resource{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "node-agent", UID: "4c1f5a0e-2d0b-4a49-9d3e-5b1f8e2a7c11"}
	checkout := Resource{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "checkout", UID: "9e0d7c55-1b52-4f55-a1b6-0f3c2f0b8e21"}
	billing := Resource{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "legacy", Name: "billing-v1", UID: "1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5"}
	scratch := Resource{APIVersion: "v1", Kind: "Namespace", Name: "scratch", UID: "77aa88bb-99cc-4dde-8eff-001122334455"}

	var tollgate []Result
	tollgate = append(tollgate,
		FromFinding(finding("pss-baseline-privileged", `container "agent" is privileged`, "spec.template.spec.containers[0].securityContext.privileged"), agent, scanned),
		FromFinding(finding("pss-baseline-host-path", `volume "host-root" mounts the host path /`, "spec.template.spec.volumes[0].hostPath"), agent, scanned),
		FromFinding(finding("pss-restricted-run-as-non-root", `container "agent" may run as root: runAsNonRoot is not true`, "spec.template.spec.containers[0].securityContext.runAsNonRoot"), agent, scanned),
		FromFinding(finding("image-policy/corp-signed", `registry.corp.example/ops/node-agent:2.1: no signature verified by key corp-release`, "spec.template.spec.containers[0].image"), agent, scanned),
		FromFinding(finding("ownership-labels", `missing the labels team, owner and cost-center`, "metadata.labels"), scratch, scanned),
	)
	waived := finding("pss-restricted-run-as-non-root", `container "app" may run as root: runAsNonRoot is not true`, "spec.template.spec.containers[0].securityContext.runAsNonRoot")
	// The audit names the exception; the report completes it from the
	// exceptions in force.
	waived.Exception = &policies.ExceptionRef{Namespace: legacyException.Namespace, Name: legacyException.Name}
	tollgate = append(tollgate, FromFinding(waived, billing, scanned))
	for _, id := range []string{"pss-baseline-privileged", "pss-baseline-host-path", "pss-restricted-run-as-non-root", "images-allowed-registries", "images-no-latest"} {
		m := meta[id]
		tollgate = append(tollgate, PassResult(&m, checkout, scanned))
	}

	// Image scans: the audit adds the scan's properties to every finding
	// on a scanned image (checkout and node-agent run the same digest).
	api := vuln.Summarize(&vuln.Report{Digest: "sha256:" + strings.Repeat("1", 64), Vulnerabilities: []vuln.Vulnerability{
		{ID: "CVE-2024-5535", Package: "libssl3", Installed: "3.0.11-1~deb12u2", Fixed: "3.0.15-1~deb12u1", Severity: vuln.Critical},
		{ID: "CVE-2023-45853", Package: "zlib1g", Installed: "1:1.2.13.dfsg-1", Severity: vuln.High},
		{ID: "CVE-2024-2511", Package: "libssl3", Installed: "3.0.11-1~deb12u2", Fixed: "3.0.14-1~deb12u1", Severity: vuln.Low},
	}}, false)
	billingScan := vuln.Summarize(&vuln.Report{Digest: "sha256:" + strings.Repeat("2", 64), Vulnerabilities: []vuln.Vulnerability{
		{ID: "CVE-2023-45853", Package: "zlib1g", Installed: "1:1.2.13.dfsg-1", Severity: vuln.High},
		{ID: "GHSA-xxxx-2024-0001", Package: "golang.org/x/net", Installed: "v0.17.0", Fixed: "v0.23.0", Severity: vuln.Medium},
	}}, false)
	withScan := func(f *policies.Finding, res Resource, image string, s *vuln.Summary, team string) Result {
		r := FromFinding(f, res, scanned)
		r.Result = OutcomeWarn // the audit writes warn and audit findings as warn
		maps.Copy(r.Properties, ScanProperties(image, s))
		r.Properties[PropTeam] = team
		return r
	}
	vulnReport := func(image string) *policies.Finding {
		f := finding(VulnerabilityReportPolicy, "image "+strconv.Quote(image)+" has vulnerabilities", "spec.template.spec.containers[0].image")
		f.Action = policies.ActionAudit
		return f
	}
	warned := finding("images-vulnerabilities", `container "api" image "registry.corp.example/shop/api:1.4.2" has 1 fixable CRITICAL vulnerability: CVE-2024-5535 in libssl3 3.0.11-1~deb12u2 (fixed in 3.0.15-1~deb12u1)`, "spec.template.spec.containers[0].image")
	warned.Action = policies.ActionWarn
	pending := finding("images-unscanned", `container "billing" image "registry.corp.example/legacy/billing-job:7" has no scan result yet; it is queued for scanning`, "spec.template.spec.containers[1].image")
	pending.Action = policies.ActionWarn
	tollgate = append(tollgate,
		withScan(vulnReport("registry.corp.example/shop/api:1.4.2"), checkout, "registry.corp.example/shop/api:1.4.2", api, "payments"),
		withScan(vulnReport("registry.corp.example/shop/api@sha256:1111"), agent, "registry.corp.example/shop/api@sha256:"+strings.Repeat("1", 64), api, "payments"),
		withScan(warned, checkout, "registry.corp.example/shop/api:1.4.2", api, "payments"),
		withScan(vulnReport("registry.corp.example/legacy/billing:1.0"), billing, "registry.corp.example/legacy/billing:1.0", billingScan, "finance"),
		withScan(pending, billing, "registry.corp.example/legacy/billing-job:7", &vuln.Summary{Status: vuln.StatusPending}, "finance"),
	)

	// What the audit examined: the workloads of shop, and the cluster's
	// Namespaces. Nothing ran ownership-of-record, resources-caps or the
	// budgets, so the controls only they evidence are not evidenced.
	shopCounts := map[string]map[string]int{}
	for id := range meta {
		if strings.HasPrefix(id, "pss-") || strings.HasPrefix(id, "images-") || id == "resources-requests-limits" {
			shopCounts[id] = map[string]int{"apps/Deployment": 12, "batch/CronJob": 2}
		}
	}
	shopCounts["image-policy/corp-signed"] = map[string]int{"apps/Deployment": 12}
	shopExamined, err := ExaminedAnnotation(shopCounts)
	if err != nil {
		t.Fatal(err)
	}
	clusterExamined, err := ExaminedAnnotation(map[string]map[string]int{"ownership-labels": {"Namespace": 6}})
	if err != nil {
		t.Fatal(err)
	}

	// The audit writes them into a Report; the report reads them back.
	report := map[string]any{
		"apiVersion": "openreports.io/v1alpha1", "kind": "Report",
		"metadata": map[string]any{"name": "tollgate-shop", "namespace": "shop",
			"annotations": map[string]any{AnnotationScannerVersion: "v0.9.0", AnnotationLibraryVersion: "0.1.0", AnnotationExamined: shopExamined}},
		"source": SourceTollgate,
		// The audit lists its findings and counts the passes.
		"summary": Summary{Pass: 118, Fail: 5, Skip: 1}.Object(),
		"results": ReportResults(tollgate),
	}
	clusterReport := map[string]any{
		"apiVersion": "openreports.io/v1alpha1", "kind": "ClusterReport",
		"metadata": map[string]any{"name": "tollgate-cluster",
			"annotations": map[string]any{AnnotationScannerVersion: "v0.9.0", AnnotationLibraryVersion: "0.1.0", AnnotationExamined: clusterExamined}},
		"source":  SourceTollgate,
		"summary": Summary{Pass: 5}.Object(),
	}
	var results []Result
	var examined []Examined
	counted := map[string]Summary{}
	for _, obj := range []map[string]any{report, clusterReport, readReport(t, "kyverno-policyreport.yaml"), readReport(t, "trivy-clusterreport.yaml")} {
		rs, meta, err := FromReport(obj)
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, rs...)
		examined = append(examined, meta.Examined...)
		if meta.Summary != nil {
			s := counted[meta.Source]
			s.Pass += meta.Summary.Pass
			s.Fail += meta.Summary.Fail
			s.Warn += meta.Summary.Warn
			s.Error += meta.Summary.Error
			s.Skip += meta.Summary.Skip
			counted[meta.Source] = s
		}
	}

	denials := &Denials{}
	f, err := os.Open(filepath.Join("testdata", "decisionlog.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := denials.ReadDecisionLog(f, DecisionLogOptions{From: fixtureNow.Add(-30 * 24 * time.Hour), To: fixtureNow, Source: "decisions.jsonl"}); err != nil {
		t.Fatal(err)
	}
	return Input{
		GeneratedAt:   fixtureNow,
		Cluster:       &Cluster{Name: "prod-eu-1", Server: "https://10.20.0.1:6443", KubernetesVersion: "v1.34.3", UID: "6f1f2b7e-3c4d-4e5f-8a9b-0c1d2e3f4a5b"},
		Versions:      Versions{Tollgate: "v0.9.0", Scanner: "v0.9.0", PolicyLibrary: "0.1.0", PolicyDigest: "sha256:3b5d…", PodSecurity: "latest"},
		Frameworks:    builtin(t),
		Results:       results,
		Examined:      examined,
		EvidenceKnown: true,
		Counted:       counted,
		Exceptions:    []policies.Exception{legacyException},
		Denials:       denials,
		Notes:         []string{"wgpolicyk8s.io/v1alpha2 PolicyReports read beside openreports.io/v1alpha1 Reports."},
	}
}

// TestRenderGolden renders the fixture report in Markdown, JSON and CSV
// and compares each with its golden file (go test -update rewrites them).
func TestRenderGolden(t *testing.T) {
	r := Build(fixtureInput(t))
	for _, tc := range []struct {
		format Format
		file   string
	}{
		{FormatMarkdown, "report.md"},
		{FormatJSON, "report.json"},
		{FormatCSV, "report.csv"},
	} {
		t.Run(string(tc.format), func(t *testing.T) {
			var buf bytes.Buffer
			if err := Write(&buf, tc.format, r); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "golden", tc.file)
			if *update {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./compliance -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), buf.String()); diff != "" {
				t.Errorf("%s differs from the golden file (-want +got; go test ./compliance -update rewrites it):\n%s", tc.file, diff)
			}
		})
	}
}

// TestReportContent checks the verdicts the fixture must produce, so the
// golden files cannot silently encode a wrong report.
func TestReportContent(t *testing.T) {
	r := Build(fixtureInput(t))
	verdict := func(fw, id string) *ControlResult {
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
	for _, tc := range []struct {
		fw, id           string
		want             Verdict
		failures, waived int
		denied, warned   int
	}{
		{"cis", "5.2.2", VerdictFailed, 1, 0, 1, 0},
		{"cis", "5.2.12", VerdictFailed, 1, 0, 0, 0},
		{"cis", "5.2.7", VerdictFailed, 1, 1, 0, 0},
		{"cis", "5.2.3", VerdictPassed, 0, 0, 1, 0},
		{"cis", "5.1.1", VerdictFailed, 1, 0, 0, 0},
		{"cis", "5.3.1", VerdictManual, 0, 0, 0, 0},
		{"cis", "5.5.1", VerdictFailed, 1, 0, 1, 0},
		{"pss", "restricted/running-as-non-root", VerdictFailed, 1, 1, 0, 0},
		{"pss", "baseline/seccomp", VerdictPassed, 0, 0, 0, 0},
		{"nsa", "supply-chain/image-provenance", VerdictFailed, 1, 0, 1, 1},
		{"soc2", "CC8.1", VerdictFailed, 2, 0, 1, 1},
		{"soc2", "CC6.6", VerdictManual, 0, 0, 0, 0},
	} {
		c := verdict(tc.fw, tc.id)
		if c.Verdict != tc.want || len(c.Failures) != tc.failures || len(c.Waived) != tc.waived || c.Denied != tc.denied || c.Warned != tc.warned {
			t.Errorf("%s:%s: got %s, %d failures, %d waived, %d/%d denied/warned; want %s, %d, %d, %d/%d",
				tc.fw, tc.id, c.Verdict, len(c.Failures), len(c.Waived), c.Denied, c.Warned, tc.want, tc.failures, tc.waived, tc.denied, tc.warned)
		}
	}
	// The trivy result names cis:5.1.1 in its properties: another
	// engine's result counts toward the control it names.
	if c := verdict("cis", "5.1.1"); c.Verdict != VerdictFailed || c.Failures[0].Policy != "KSV111" {
		t.Errorf("5.1.1: %+v", c)
	}
	if len(r.Exceptions) != 1 || r.Exceptions[0].Waived != 1 || r.Exceptions[0].Approver != "maria.schmidt (CISO)" {
		t.Errorf("exceptions: %+v", r.Exceptions)
	}
	var sources []string
	for _, s := range r.Sources {
		sources = append(sources, s.Source)
	}
	if diff := cmp.Diff([]string{"tollgate", "kyverno", "trivy-operator"}, sources); diff != "" {
		t.Errorf("sources (-want +got):\n%s", diff)
	}
	// The audit's summary counts the passes it does not list.
	if r.Checks != 129 || r.Sources[0].Summary.Pass != 123 {
		t.Errorf("checks %d, tollgate summary %+v", r.Checks, r.Sources[0].Summary)
	}
}

// TestHTMLSections renders the fixture as HTML and checks every section,
// the content auditors look for, and that nothing is loaded from outside
// the file.
func TestHTMLSections(t *testing.T) {
	r := Build(fixtureInput(t))
	var buf bytes.Buffer
	if err := Write(&buf, FormatHTML, r); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	for _, want := range []string{
		`<!DOCTYPE html>`, `<style>`, `@media print`, `break-before: page`,
		// Cover: identity, time and versions.
		`id="cover"`, `prod-eu-1`, `https://10.20.0.1:6443`, `v1.34.3`, `6f1f2b7e-3c4d-4e5f-8a9b-0c1d2e3f4a5b`, `2025-07-01 09:00 UTC`, `sha256:3b5d…`, `policy checks`,
		// Summary and one section per framework.
		`id="summary"`, `id="fw-cis"`, `id="fw-nsa"`, `id="fw-pss"`, `id="fw-soc2"`,
		`CIS Kubernetes Benchmark`, `NSA/CISA Kubernetes Hardening Guide`, `Pod Security Standards`, `SOC 2 Trust Services Criteria`,
		// A failing control with its resource, message and remediation.
		`id="c-cis-5-2-2"`, `shop/Deployment/node-agent`, `container &#34;agent&#34; is privileged`, `Remove securityContext.privileged`,
		`class="pill v-failed">FAILED`, `class="pill v-manual">MANUAL`, `class="pill v-passed">PASSED`, `class="pill v-passed-with-exceptions">PASSED WITH EXCEPTIONS`,
		// The image scans per namespace and team, and the controls that require them.
		`id="vulnerabilities"`, `<td class="mono">shop</td><td>payments</td><td class="num">2</td><td class="num">1</td><td class="num">1</td>`,
		`<b>CIS Kubernetes Benchmark</b>: none`, `<b>SOC 2 Trust Services Criteria</b>: CC7.1 Detection of configuration changes and new vulnerabilities`,
		`<td class="mono">CVE-2024-5535</td><td>CRITICAL</td><td class="mono">libssl3</td><td class="mono">3.0.11-1~deb12u2</td><td class="mono">3.0.15-1~deb12u1</td>`,
		// Appendices.
		`id="exceptions"`, `platform-exceptions/legacy-billing`, `maria.schmidt (CISO)`, `CHG-1042`, `2025-09-30`,
		`id="denials"`, `alice@corp.example`, `DENIED`, `WARNED`, `decisions.jsonl line 4`,
		`id="sources"`, `kyverno`, `disallow-latest-tag`, `trivy-operator`, `KSV111`,
		`id="method"`, `wgpolicyk8s.io/v1alpha2 PolicyReports read beside`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("the HTML report lacks %q", want)
		}
	}
	for _, external := range []string{"<script", "<link", "<img", "@import", "url(", "src=", "<iframe"} {
		if strings.Contains(html, external) {
			t.Errorf("the HTML report is not self-contained: it holds %q", external)
		}
	}
	// Every opened section is closed.
	if o, c := strings.Count(html, "<section"), strings.Count(html, "</section>"); o != c || o < 9 {
		t.Errorf("%d <section> and %d </section>", o, c)
	}
}

// TestHTMLEscapes: names and messages from the cluster cannot inject
// markup into the report.
func TestHTMLEscapes(t *testing.T) {
	in := Input{GeneratedAt: fixtureNow, Frameworks: builtin(t), Results: []Result{{
		Source: SourceTollgate, Policy: "pss-baseline-privileged", Result: OutcomeFail,
		Resource: Resource{Kind: "Pod", Namespace: "x", Name: "evil"},
		Message:  `<script>alert(1)</script>`,
	}}}
	var buf bytes.Buffer
	if err := Write(&buf, FormatHTML, Build(in)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "<script>alert") {
		t.Error("a message was rendered as markup")
	}
}

// TestPodSecurityVersion: the pss framework's version names the version of
// the standard the policies judged by; other frameworks keep theirs.
func TestPodSecurityVersion(t *testing.T) {
	for _, tc := range []struct{ judged, want string }{
		{"", "Kubernetes v1.36 (Baseline and Restricted)"},
		{"latest", "Kubernetes " + policies.PodSecurityLatest + " (latest; Baseline and Restricted)"},
		{"v1.30", "Kubernetes v1.30 (Baseline and Restricted)"},
	} {
		r := Build(Input{Frameworks: builtin(t), Versions: Versions{PodSecurity: tc.judged}})
		got := map[string]string{}
		for _, f := range r.Frameworks {
			got[f.ID] = f.Version
		}
		want := map[string]string{
			"cis": "v1.10.0 (section 5)", "nsa": "v1.2 (August 2022)",
			"soc2": "2017 TSC (revised points of focus, 2022) — CC6, CC7, CC8", "pss": tc.want,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("podSecurity %q: versions (-want +got):\n%s", tc.judged, diff)
		}
	}
}
