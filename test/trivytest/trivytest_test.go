package trivytest

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tollgate-dev/tollgate/policies/vuln"
	"github.com/tollgate-dev/tollgate/test/registry"
)

func TestBuildDBRejectsMalformedAdvisories(t *testing.T) {
	ctx := context.Background()
	for name, tc := range map[string]struct {
		adv  Advisory
		want string
	}{
		"unknown ecosystem": {Advisory{Ecosystem: "cobol", Package: "p", ID: "CVE-1", Severity: "HIGH"}, `advisories[0]: ecosystem "cobol"`},
		"no package":        {Advisory{Ecosystem: "debian", Release: "12", ID: "CVE-1", Severity: "HIGH"}, "advisories[0]: package is required"},
		"no release":        {Advisory{Ecosystem: "alpine", Package: "p", ID: "CVE-1", Severity: "HIGH"}, "advisories[0]: release is required for alpine"},
		"bad severity":      {Advisory{Ecosystem: "debian", Release: "12", Package: "p", ID: "CVE-1", Severity: "SEVERE"}, `advisories[0]: severity "SEVERE"`},
		"no range":          {Advisory{Ecosystem: "go", Package: "p", ID: "GHSA-1", Severity: "LOW"}, "advisories[0]: vulnerable is required for go"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := BuildDB(ctx, t.TempDir(), []Advisory{tc.adv})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("BuildDB: got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestTestDBRejectsMalformedFiles(t *testing.T) {
	bin, err := TestDBBinary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, tc := range map[string]struct{ in, want string }{
		"not json":      {"{not json", "invalid character"},
		"unknown field": {`{"advisories": [], "extra": 1}`, `unknown field "extra"`},
		"bad date":      {`{"updatedAt": "yesterday", "advisories": []}`, "parsing time"},
		"wrong type":    {`{"advisories": {}}`, "cannot unmarshal object"},
	} {
		t.Run(name, func(t *testing.T) {
			src := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".json")
			if err := os.WriteFile(src, []byte(tc.in), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(bin, src, filepath.Join(dir, "db.tar.gz")).CombinedOutput()
			if err == nil || !strings.Contains(string(out), src+": ") || !strings.Contains(string(out), tc.want) {
				t.Errorf("trivy-testdb: %v, %s; want an error naming %s and %q", err, out, src, tc.want)
			}
		})
	}
	if out, err := exec.Command(bin, "only-one-arg").CombinedOutput(); err == nil || !strings.Contains(string(out), "usage: trivy-testdb") {
		t.Errorf("one argument: %v, %s", err, out)
	}
}

// trivyResult is what this test reads of Trivy's JSON report.
type trivyResult struct {
	Results []struct {
		Target          string `json:"Target"`
		Class           string `json:"Class"`
		Type            string `json:"Type"`
		Vulnerabilities []struct {
			VulnerabilityID  string `json:"VulnerabilityID"`
			PkgName          string `json:"PkgName"`
			InstalledVersion string `json:"InstalledVersion"`
			FixedVersion     string `json:"FixedVersion"`
			Severity         string `json:"Severity"`
			Title            string `json:"Title"`
		} `json:"Vulnerabilities"`
	} `json:"Results"`
}

func scan(t *testing.T, trivy, cacheDir string, args ...string) []vuln.Vulnerability {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := []string{"image", "--quiet", "--format", "json", "--scanners", "vuln", "--pkg-types", "os,library",
		"--cache-dir", cacheDir, "--insecure", "--skip-java-db-update", "--skip-check-update", "--disable-telemetry", "--skip-version-check"}
	cmd := exec.CommandContext(ctx, trivy, append(base, args...)...)
	cmd.Env = OfflineEnv(cacheDir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("trivy %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var res trivyResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("trivy's report: %v", err)
	}
	var got []vuln.Vulnerability
	for _, r := range res.Results {
		for _, v := range r.Vulnerabilities {
			got = append(got, vuln.Vulnerability{
				ID: v.VulnerabilityID, Package: v.PkgName, Installed: v.InstalledVersion, Fixed: v.FixedVersion,
				Severity: v.Severity, Title: v.Title, Class: r.Class, Type: r.Type,
			})
		}
	}
	rep := vuln.Report{Vulnerabilities: got}
	rep.Sort()
	return rep.Vulnerabilities
}

// TestFixtures scans the test images with Trivy against the planted
// database, directly and through Trivy's server: each finds exactly the
// planted vulnerabilities.
func TestFixtures(t *testing.T) {
	trivy, err := TrivyBinary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	reg, err := registry.Start(ctx, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Stop() })
	dir := t.TempDir()
	dbPath, err := BuildDB(ctx, dir, Advisories())
	if err != nil {
		t.Fatal(err)
	}
	dbRef, err := PushDB(ctx, reg.Host(), "trivy-db", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	debian, err := PushDebianImage(ctx, reg.Host(), "team/debian", dir)
	if err != nil {
		t.Fatal(err)
	}
	alpine, err := PushAlpineImage(ctx, reg.Host(), "team/alpine")
	if err != nil {
		t.Fatal(err)
	}
	clean, err := PushCleanImage(ctx, reg.Host(), "team/clean")
	if err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(dir, "cache")
	if err := os.MkdirAll(cache, 0o700); err != nil {
		t.Fatal(err)
	}
	opt := cmpopts.IgnoreFields(vuln.Vulnerability{}, "Target", "URL")
	got := scan(t, trivy, cache, "--db-repository", dbRef, debian)
	if d := cmp.Diff(WantDebian(), got, opt); d != "" {
		t.Errorf("debian image (-want +got):\n%s", d)
	}
	got = scan(t, trivy, cache, "--skip-db-update", alpine)
	if d := cmp.Diff(WantAlpine(), got, opt); d != "" {
		t.Errorf("alpine image (-want +got):\n%s", d)
	}
	if got := scan(t, trivy, cache, "--skip-db-update", clean); len(got) != 0 {
		t.Errorf("clean image: got %v, want no vulnerabilities", got)
	}

	srv, stop, err := StartServer(ctx, trivy, filepath.Join(dir, "server-cache"), dbRef)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stop() }()
	got = scan(t, trivy, filepath.Join(dir, "client-cache"), "--server", srv.URL, debian)
	if d := cmp.Diff(WantDebian(), got, opt); d != "" {
		t.Errorf("debian image through trivy server (-want +got):\n%s\nserver:\n%s", d, srv.Output())
	}
}
