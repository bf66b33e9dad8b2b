package trivy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/tollgate-dev/tollgate/policies/vuln"
)

func TestParse(t *testing.T) {
	const report = `{"SchemaVersion": 2, "ArtifactName": "r.example/app:1", "CreatedAt": "2026-12-05T00:00:00Z",
	  "SomethingNew": {"x": 1},
	  "Metadata": {"OS": {"Family": "alpine", "Name": "3.20.3"}, "RepoDigests": ["r.example/app@sha256:aa"]},
	  "Results": [
	    {"Target": "r.example/app:1 (alpine 3.20.3)", "Class": "os-pkgs", "Type": "alpine",
	     "Packages": [{"Name": "musl"}, {"Name": "busybox"}],
	     "Vulnerabilities": [
	       {"VulnerabilityID": "CVE-1", "PkgName": "musl", "InstalledVersion": "1", "FixedVersion": "2", "Severity": "LOW", "Title": "t1", "Extra": true},
	       {"VulnerabilityID": "CVE-2", "PkgName": "busybox", "InstalledVersion": "1", "Severity": "CRITICAL"}]},
	    {"Target": "app", "Class": "lang-pkgs", "Type": "gobinary", "Packages": [{"Name": "m"}]}]}`
	got, err := Parse([]byte(report))
	if err != nil {
		t.Fatal(err)
	}
	want := &vuln.Report{
		Image: "r.example/app:1", Digest: "sha256:aa", OS: "alpine 3.20.3", Packages: 3,
		Vulnerabilities: []vuln.Vulnerability{
			{ID: "CVE-2", Package: "busybox", Installed: "1", Severity: "CRITICAL", Target: "r.example/app:1 (alpine 3.20.3)", Class: "os-pkgs", Type: "alpine"},
			{ID: "CVE-1", Package: "musl", Installed: "1", Fixed: "2", Severity: "LOW", Title: "t1", Target: "r.example/app:1 (alpine 3.20.3)", Class: "os-pkgs", Type: "alpine"},
		},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Parse (-want +got):\n%s", d)
	}
}

func TestParseRejectsMalformedReports(t *testing.T) {
	for name, tc := range map[string]struct {
		in, want string
	}{
		"empty":          {"", "empty (trivy wrote nothing)"},
		"not json":       {"FATAL something broke", "not JSON at byte 1"},
		"truncated":      {`{"SchemaVersion": 2, "Results": [`, "not JSON"},
		"two documents":  {`{"SchemaVersion": 2} {"SchemaVersion": 2}`, "more than one JSON document"},
		"no schema":      {`{"Results": []}`, "field SchemaVersion is missing"},
		"old schema":     {`{"SchemaVersion": 1}`, "field SchemaVersion 1: Tollgate reads schema 2"},
		"results object": {`{"SchemaVersion": 2, "Results": {}}`, "field Results: object where"},
		"id a number":    {`{"SchemaVersion": 2, "Results": [{"Vulnerabilities": [{"VulnerabilityID": 7}]}]}`, "field Results.Vulnerabilities.VulnerabilityID: number"},
		"no id":          {`{"SchemaVersion": 2, "Results": [{}, {"Vulnerabilities": [{"PkgName": "a", "Severity": "LOW"}]}]}`, "field Results[1].Vulnerabilities[0].VulnerabilityID is empty"},
		"no package":     {`{"SchemaVersion": 2, "Results": [{"Vulnerabilities": [{"VulnerabilityID": "CVE-1", "Severity": "LOW"}]}]}`, "field Results[0].Vulnerabilities[0].PkgName is empty (CVE-1)"},
		"bad severity":   {`{"SchemaVersion": 2, "Results": [{"Vulnerabilities": [{"VulnerabilityID": "CVE-1", "PkgName": "a", "Severity": "DIRE"}]}]}`, `field Results[0].Vulnerabilities[0].Severity "DIRE" (CVE-1): want one of CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN`},
		"bad digest":     {`{"SchemaVersion": 2, "Metadata": {"RepoDigests": ["r.example/app:1"]}}`, `field Metadata.RepoDigests[0] "r.example/app:1": want REPOSITORY@sha256:`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse: %v, want %q", err, tc.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"SchemaVersion": 2, "Results": [{"Vulnerabilities": [{"VulnerabilityID": "CVE-1", "PkgName": "a", "Severity": "LOW"}]}]}`))
	f.Add([]byte(`{"SchemaVersion": 2, "Metadata": {"RepoDigests": ["a@sha256:1"]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := Parse(data)
		if err != nil {
			return
		}
		for _, v := range rep.Vulnerabilities {
			if v.ID == "" || v.Package == "" || vuln.SeverityRank(v.Severity) < 0 {
				t.Fatalf("Parse accepted %+v", v)
			}
		}
	})
}

func TestTailQuotesTheLastLines(t *testing.T) {
	tb := &tailBuffer{max: 64}
	_, _ = tb.Write([]byte(strings.Repeat("noise\n", 50)))
	_, _ = tb.Write([]byte("2026-12-05T09:58:43Z\tFATAL\tFatal error\trun error: boom\n"))
	got := tb.quote()
	if !strings.HasSuffix(got, "| FATAL Fatal error run error: boom") || len(tb.buf) > 64 {
		t.Errorf("quote %q (kept %d bytes)", got, len(tb.buf))
	}
}

func TestWriteDockerConfig(t *testing.T) {
	ctx := context.Background()
	for name, tc := range map[string]struct {
		image string
		kc    authn.Keychain
		want  string // config.json, "" for none
	}{
		"basic":     {"r.example:5000/team/app:1", keychain{&authn.Basic{Username: "ci", Password: "pw"}}, `{"auths":{"r.example:5000":{"auth":"Y2k6cHc="}}}`},
		"docker.io": {"team/app:1", keychain{&authn.Basic{Username: "ci", Password: "pw"}}, `{"auths":{"https://index.docker.io/v1/":{"auth":"Y2k6cHc="}}}`},
		"token":     {"r.example/app:1", keychain{&authn.Bearer{Token: "tok"}}, `{"auths":{"r.example":{"registrytoken":"tok"}}}`},
		"anonymous": {"r.example/app:1", keychain{authn.Anonymous}, ""},
		"none":      {"r.example/app:1", nil, ""},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			ref, err := parseRef(tc.image)
			if err != nil {
				t.Fatal(err)
			}
			if err := writeDockerConfig(ctx, dir, ref, tc.kc); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(filepath.Join(dir, "config.json"))
			if tc.want == "" {
				if err == nil {
					t.Errorf("config written: %s", data)
				}
				return
			}
			if err != nil || string(data) != tc.want {
				t.Errorf("config %s, %v; want %s", data, err, tc.want)
			}
			if st, err := os.Stat(filepath.Join(dir, "config.json")); err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("config mode: %v, %v", st.Mode(), err)
			}
		})
	}
}

// TestAdvisoryURL keeps only absolute http(s) links: the page is written
// into SARIF, which code hosts render as a link.
func TestAdvisoryURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://avd.aquasec.com/nvd/cve-2026-1":         "https://avd.aquasec.com/nvd/cve-2026-1",
		"http://advisories.example/1":                    "http://advisories.example/1",
		"javascript:alert(1)":                            "",
		"data:text/html,<script>":                        "",
		"/relative/page":                                 "",
		"https://":                                       "",
		"https://x.example/" + strings.Repeat("a", 3000): "",
		"": "",
	} {
		if got := advisoryURL(in); got != want {
			t.Errorf("advisoryURL(%.40q) = %q, want %q", in, got, want)
		}
	}
}
