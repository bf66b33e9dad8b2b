package compliance

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/policies/vuln"
)

// TestScanPropertiesRoundTrip checks what the audit writes on a result
// reads back as the vulnerabilities it named, bounded in count and length.
func TestScanPropertiesRoundTrip(t *testing.T) {
	vs := []vuln.Vulnerability{
		{ID: "CVE-2024-5535", Severity: vuln.Critical, Package: "libssl3", Installed: "3.0.11-1~deb12u2", Fixed: "3.0.15-1~deb12u1"},
		{ID: "CVE-2023-45853", Severity: vuln.High, Package: "zlib1g", Installed: "1:1.2.13.dfsg-1"},
		{ID: "GHSA-1", Severity: "medium", Package: "golang.org/x/net", Installed: "v0.17.0", Fixed: "0.23.0, 0.24.1"},
	}
	props := ScanProperties("registry.example/app:1", vuln.Summarize(&vuln.Report{Digest: "sha256:abc", Vulnerabilities: vs}, false))
	want := map[string]string{
		PropImage: "registry.example/app:1", PropDigest: "sha256:abc", PropScanStatus: "scanned",
		"criticalCount": "1", "highCount": "1", "mediumCount": "1", "lowCount": "0", "unknownCount": "0", PropFixableCount: "2",
		PropVulnerabilities: "CVE-2024-5535 CRITICAL libssl3 3.0.11-1~deb12u2 -> 3.0.15-1~deb12u1; CVE-2023-45853 HIGH zlib1g 1:1.2.13.dfsg-1 (no fix); GHSA-1 MEDIUM golang.org/x/net v0.17.0 -> 0.23.0, 0.24.1",
	}
	if diff := cmp.Diff(want, props); diff != "" {
		t.Errorf("properties (-want +got):\n%s", diff)
	}
	back := ParseVulnerabilities(props[PropVulnerabilities])
	vs[2].Severity = vuln.Medium
	if diff := cmp.Diff(vs, back); diff != "" {
		t.Errorf("read back (-want +got):\n%s", diff)
	}
	if ScanProperties("x", nil) != nil {
		t.Error("no summary: want no properties")
	}

	// Thousands of vulnerabilities, with names full of separators.
	var many []vuln.Vulnerability
	for i := range 5000 {
		many = append(many, vuln.Vulnerability{ID: fmt.Sprintf("CVE-2024-%05d", i), Severity: vuln.Critical,
			Package: "pkg; with spaces " + strings.Repeat("x", 300), Installed: "1 0", Fixed: "2;3"})
	}
	props = ScanProperties("app", vuln.Summarize(&vuln.Report{Vulnerabilities: many}, false))
	if p := props[PropVulnerabilities]; len(p) > maxPropLength || strings.Count(p, "; ")+1 > maxPropVulnerabilities {
		t.Errorf("%d bytes, %d entries: want at most %d and %d", len(p), strings.Count(p, "; ")+1, maxPropLength, maxPropVulnerabilities)
	}
	got := ParseVulnerabilities(props[PropVulnerabilities])
	if len(got) == 0 || got[0].Package != "pkg,_with_spaces_"+strings.Repeat("x", 300) || got[0].Installed != "1_0" || got[0].Fixed != "2,3" {
		t.Errorf("read back %+v", got[:min(len(got), 1)])
	}
}

// TestParseVulnerabilitiesAdversarial reads what another writer (or a
// person editing a Report) may leave in the property: nothing it cannot
// read becomes a vulnerability, and nothing panics.
func TestParseVulnerabilitiesAdversarial(t *testing.T) {
	for _, s := range []string{"", ";", "; ; ", "CVE-1", "CVE-1 CRITICAL", "CVE-1 SEVERE pkg 1 -> 2", "CVE-1 HIGH pkg 1 ->", "CVE-1 HIGH pkg 1 maybe", strings.Repeat("a ", 100000)} {
		if got := ParseVulnerabilities(s); len(got) != 0 {
			t.Errorf("%.40q read as %+v", s, got)
		}
	}
	got := ParseVulnerabilities("junk; CVE-2 LOW p 1 (no fix); more junk")
	if len(got) != 1 || got[0].ID != "CVE-2" {
		t.Errorf("a good entry among bad ones: %+v", got)
	}
}

// TestVulnerabilitySection checks the section's figures on the report
// fixture: an image counted once per group however many workloads run it,
// the unscanned images, the top vulnerabilities, and the controls per
// framework; and that a report without scans has no section.
func TestVulnerabilitySection(t *testing.T) {
	r := Build(fixtureInput(t))
	v := r.Vulnerabilities
	if v == nil {
		t.Fatal("no vulnerability section")
	}
	type row struct {
		ns, team                     string
		workloads, images, unscanned int
		critical, high, fixable      int
		top                          string
	}
	var got []row
	for _, g := range append(v.Groups, v.Totals) {
		var top []string
		for _, x := range g.Top {
			top = append(top, fmt.Sprintf("%s×%d", x.ID, x.Images))
		}
		got = append(got, row{g.Namespace, g.Team, g.Workloads, g.Images, g.Unscanned, g.Counts[vuln.Critical], g.Counts[vuln.High], g.Fixable, strings.Join(top, " ")})
	}
	want := []row{
		{"shop", "payments", 2, 1, 0, 1, 1, 2, "CVE-2024-5535×1 CVE-2023-45853×1 CVE-2024-2511×1"},
		{"legacy", "finance", 1, 1, 1, 0, 1, 1, "CVE-2023-45853×1 GHSA-xxxx-2024-0001×1"},
		{"", "", 3, 2, 1, 1, 2, 3, "CVE-2024-5535×1 CVE-2023-45853×2 GHSA-xxxx-2024-0001×1 CVE-2024-2511×1"},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(row{})); diff != "" {
		t.Errorf("groups (-want +got):\n%s", diff)
	}
	controls := map[string][]string{}
	for _, c := range v.Controls {
		controls[c.Framework] = c.Controls
	}
	wantControls := map[string][]string{
		"cis": {}, "pss": {},
		"nsa":  {"supply-chain/image-scanning Image scanning and signature verification", "upgrades/patching Upgrading and application security practices"},
		"soc2": {"CC7.1 Detection of configuration changes and new vulnerabilities"},
	}
	if diff := cmp.Diff(wantControls, controls); diff != "" {
		t.Errorf("controls (-want +got):\n%s", diff)
	}

	in := fixtureInput(t)
	var without []Result
	for _, res := range in.Results {
		if !strings.HasPrefix(res.Policy, "images-") {
			without = append(without, res)
		}
	}
	in.Results = without
	if r := Build(in); r.Vulnerabilities != nil {
		t.Errorf("a report without scans has a vulnerability section: %+v", r.Vulnerabilities)
	}
}

// TestVulnerabilitySectionMalformedProperties builds the section from
// Report results another writer (or a person) left odd: counts that are
// not numbers, negative or too large count as nothing; a result without
// an image or digest still counts once; other engines' results are not
// Tollgate's scans.
func TestVulnerabilitySectionMalformedProperties(t *testing.T) {
	res := func(name string, props map[string]string) Result {
		return Result{Source: SourceTollgate, Policy: VulnerabilityReportPolicy, Result: OutcomeWarn, Message: "m " + name,
			Resource: Resource{Kind: "Deployment", Namespace: "shop", Name: name}, Properties: props}
	}
	s := buildVulnerabilities([]Result{
		res("a", map[string]string{PropDigest: "sha256:a", "criticalCount": "abc", "highCount": "-3", "lowCount": "99999999999999999999999", PropFixableCount: "x", PropVulnerabilities: "garbage"}),
		res("b", map[string]string{PropDigest: "sha256:b", "criticalCount": "2", PropTeam: ""}),
		res("c", nil),
		{Source: "trivy-operator", Policy: VulnerabilityReportPolicy, Result: OutcomeFail, Resource: Resource{Namespace: "shop", Name: "d"}},
	}, nil)
	if s == nil || len(s.Groups) != 1 {
		t.Fatalf("section %+v: want one group", s)
	}
	g := s.Groups[0]
	if g.Images != 3 || g.Workloads != 3 || g.Counts[vuln.Critical] != 2 || g.Counts[vuln.High] != 0 || g.Counts[vuln.Low] != 0 || g.Fixable != 0 || len(g.Top) != 0 {
		t.Errorf("group %+v", g)
	}
}
