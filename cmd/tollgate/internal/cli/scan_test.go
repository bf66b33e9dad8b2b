package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/test/cluster"
	"github.com/tollgate-dev/tollgate/test/docexample"
	"github.com/tollgate-dev/tollgate/test/registry"
	"github.com/tollgate-dev/tollgate/test/trivytest"
)

// scanFixture is a registry holding the planted database and the test
// images, and a cache holding that database.
type scanFixture struct {
	trivy, dbRef, cache   string
	debian, alpine, clean string
	host                  string
}

func newScanFixture(t *testing.T) *scanFixture {
	t.Helper()
	trivy, err := trivytest.TrivyBinary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reg, err := registry.Start(ctx, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Stop() })
	dir := t.TempDir()
	db, err := trivytest.BuildDB(ctx, dir, trivytest.Advisories())
	if err != nil {
		t.Fatal(err)
	}
	f := &scanFixture{trivy: trivy, cache: filepath.Join(dir, "cache"), host: reg.Host()}
	if f.dbRef, err = trivytest.PushDB(ctx, reg.Host(), "trivy-db", db); err != nil {
		t.Fatal(err)
	}
	if f.debian, err = trivytest.PushDebianImage(ctx, reg.Host(), "team/debian", dir); err != nil {
		t.Fatal(err)
	}
	if f.alpine, err = trivytest.PushAlpineImage(ctx, reg.Host(), "team/alpine"); err != nil {
		t.Fatal(err)
	}
	if f.clean, err = trivytest.PushCleanImage(ctx, reg.Host(), "team/clean"); err != nil {
		t.Fatal(err)
	}
	// As a user runs it: trivy in PATH, and the cache a directory of the
	// working directory, so that the commands the docs quote are short.
	t.Setenv("PATH", filepath.Dir(trivy)+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Chdir(dir)
	f.cache = "cache"
	return f
}

func (f *scanFixture) args(extra ...string) []string {
	return append([]string{"scan", "image", "--db-repository", f.dbRef, "--cache-dir", f.cache, "--insecure-registry"}, extra...)
}

// exitStatus is what a shell's "echo $?" adds to a transcript.
func exitStatus(code int) string {
	return fmt.Sprintf("$ echo $?\n%d\n", code)
}

func TestScanImage(t *testing.T) {
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	f := newScanFixture(t)
	// The transcript docs/scanning-trivy.md quotes.
	var doc strings.Builder

	t.Run("table, default threshold CRITICAL", func(t *testing.T) {
		code, transcript, out, errOut := terminal(t, "", f.args(f.debian)...)
		doc.WriteString(transcript + exitStatus(code))
		if code != ExitFindings {
			t.Fatalf("exit %d, want 1 (a CRITICAL)\n%s", code, transcript)
		}
		for _, want := range []string{
			f.debian, "OS: debian 12.5", "Vulnerability database: built ",
			"SEVERITY  ID", "CRITICAL  CVE-2026-10002", "zlib1g", "(no fix)",
			"HIGH      CVE-2026-10001", "3.0.15-1~deb12u1",
			"GHSA-tg00-0001-0001", "usr/local/bin/app (gobinary)",
			"GHSA-tg00-0002-0001", "left-pad", "1.3.0",
			"1 CRITICAL (0 fixable), 1 HIGH (1 fixable), 1 MEDIUM (1 fixable), 1 LOW (1 fixable) — FAIL: 1 at or above CRITICAL",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("table lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "CVE-2026-10003") {
			t.Errorf("the advisory fixed before the installed bash is listed:\n%s", out)
		}
		if !strings.Contains(errOut, "downloading the vulnerability database from "+f.dbRef) {
			t.Errorf("stderr %q: want the first download said", errOut)
		}
	})
	t.Run("the docs' transcripts", func(t *testing.T) {
		// Once the database is there, a scan prints the report alone, as
		// docs/images.md quotes it.
		code, transcript, _, _ := terminal(t, "", f.args(f.debian)...)
		if code != ExitFindings {
			t.Errorf("exit %d, want 1\n%s", code, transcript)
		}
		docexample.Check(t, root, "scan-image-debian", transcript)

		code, transcript, _, _ = terminal(t, "", f.args("--severity", "HIGH", "--ignore-unfixed", f.alpine)...)
		if code != ExitFindings || !strings.Contains(transcript, "CVE-2026-10101") {
			t.Errorf("alpine at HIGH, unfixed ignored: exit %d, want 1 and CVE-2026-10101\n%s", code, transcript)
		}
		doc.WriteString("\n" + transcript)
		code, transcript, _, _ = terminal(t, "", f.args("--severity", "LOW", f.clean)...)
		if code != ExitOK {
			t.Errorf("clean at LOW: exit %d, want 0\n%s", code, transcript)
		}
		doc.WriteString("\n" + transcript + exitStatus(code))
	})
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"ignore unfixed passes at CRITICAL", []string{"--ignore-unfixed", f.debian}, ExitOK},
		{"ignore unfixed fails at HIGH", []string{"--ignore-unfixed", "--severity", "high", f.debian}, ExitFindings},
		{"alpine fails at CRITICAL", []string{f.alpine}, ExitFindings},
		{"clean passes at LOW", []string{"--severity", "LOW", f.clean}, ExitOK},
		{"by tag", []string{strings.Split(f.clean, "@")[0] + ":latest"}, ExitOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(t, "", f.args(tc.args...)...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\n%s%s", code, tc.code, out, errOut)
			}
		})
	}

	t.Run("json", func(t *testing.T) {
		code, out, _ := run(t, "", f.args("--format", "json", "--severity", "MEDIUM", "--ignore-unfixed", f.debian)...)
		var got struct {
			Digest          string         `json:"digest"`
			Threshold       string         `json:"threshold"`
			Failing         int            `json:"failing"`
			Passed          bool           `json:"passed"`
			Counts          map[string]int `json:"counts"`
			Vulnerabilities []struct {
				ID, Fixed string
			} `json:"vulnerabilities"`
			DB struct {
				UpdatedAt time.Time `json:"updatedAt"`
			} `json:"db"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if code != ExitFindings || got.Threshold != "MEDIUM" || got.Failing != 2 || got.Passed || len(got.Vulnerabilities) != 3 ||
			got.Counts["HIGH"] != 1 || got.DB.UpdatedAt.IsZero() || got.Digest != f.debian[strings.Index(f.debian, "@")+1:] {
			t.Errorf("exit %d, report %+v", code, got)
		}
	})

	t.Run("sarif to a file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "scan.sarif")
		code, _, errOut := run(t, "", f.args("--format", "sarif", "--output", path, "--severity", "HIGH", f.debian)...)
		if code != ExitFindings || !strings.Contains(errOut, "FAIL: 2 at or above HIGH") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var log struct {
			Version string `json:"version"`
			Runs    []struct {
				Tool struct {
					Driver struct {
						Rules []struct {
							ID      string `json:"id"`
							HelpURI string `json:"helpUri"`
						} `json:"rules"`
					} `json:"driver"`
				} `json:"tool"`
				Results []struct {
					RuleID string `json:"ruleId"`
					Level  string `json:"level"`
				} `json:"results"`
			} `json:"runs"`
		}
		if err := json.Unmarshal(data, &log); err != nil || log.Version != "2.1.0" || len(log.Runs) != 1 {
			t.Fatalf("SARIF: %v\n%s", err, data)
		}
		levels := map[string]string{}
		for _, r := range log.Runs[0].Results {
			levels[r.RuleID] = r.Level
		}
		// A rule links to its advisory's page (Trivy's primary URL), not
		// to a Tollgate policy page.
		for _, rule := range log.Runs[0].Tool.Driver.Rules {
			if strings.Contains(rule.HelpURI, "tollgate") || !strings.Contains(strings.ToLower(rule.HelpURI), strings.ToLower(rule.ID)) {
				t.Errorf("rule %s links to %q, want its advisory's page", rule.ID, rule.HelpURI)
			}
		}
		want := map[string]string{"CVE-2026-10001": "error", "CVE-2026-10002": "error", "GHSA-tg00-0001-0001": "warning", "GHSA-tg00-0002-0001": "warning"}
		if len(levels) != len(want) {
			t.Errorf("SARIF results %v, want %v", levels, want)
		}
		for id, l := range want {
			if levels[id] != l {
				t.Errorf("SARIF %s level %q, want %q", id, levels[id], l)
			}
		}
	})

	t.Run("cyclonedx", func(t *testing.T) {
		code, out, errOut := run(t, "", f.args("--format", "cyclonedx", "--severity", "LOW", f.clean)...)
		var bom struct {
			BOMFormat string `json:"bomFormat"`
		}
		if err := json.Unmarshal([]byte(out), &bom); err != nil || bom.BOMFormat != "CycloneDX" || code != ExitOK {
			t.Errorf("exit %d, %v: %s%s", code, err, out, errOut)
		}
	})

	t.Run("server", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		srv, stop, err := trivytest.StartServer(ctx, f.trivy, t.TempDir(), f.dbRef)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = stop() }()
		code, transcript, out, _ := terminal(t, "", "scan", "image", "--trivy-server", srv.URL, "--cache-dir", "client-cache", "--insecure-registry", f.alpine)
		if code != ExitFindings || !strings.Contains(out, "CVE-2026-10101") || !strings.Contains(out, srv.URL) {
			t.Errorf("exit %d\n%s", code, transcript)
		}
		doc.WriteString("\n" + transcript)
	})
	docexample.Check(t, root, "scan-image", doc.String())
}

func TestScanImageErrors(t *testing.T) {
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	f := newScanFixture(t)
	gone := strings.Replace(f.alpine, "team/alpine", "team/nothing", 1)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no reference", f.args(), "scan image needs exactly one image reference, got 0"},
		{"two references", f.args(f.alpine, f.clean), "got 2"},
		{"bad format", f.args("--format", "xml", f.alpine), `--format "xml": want table, json, sarif or cyclonedx`},
		{"bad severity", f.args("--severity", "dire", f.alpine), `--severity "dire": want one of CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN`},
		{"bad reference", f.args("Team/App:1"), `image reference "Team/App:1"`},
		{"image not in the registry", f.args(gone), "scanning " + gone + ": trivy image: exit status 1: "},
		{"no database and no update", []string{"scan", "image", "--trivy", f.trivy, "--cache-dir", t.TempDir(), "--skip-db-update", f.alpine}, "--skip-db-update: no vulnerability database in"},
		{"database repository down", []string{"scan", "image", "--trivy", f.trivy, "--cache-dir", t.TempDir(), "--db-repository", f.host + "/nothing:2", "--insecure-registry", f.alpine}, "updating the vulnerability database from " + f.host + "/nothing:2"},
		{"no trivy", f.args("--trivy", "/nonexistent/trivy", f.alpine), "(build it with `make trivy`)"},
		{"unwritable output", f.args("--output", "/nonexistent/dir/out.json", f.alpine), "--output: open /nonexistent/dir/out.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, transcript, out, errOut := terminal(t, "", tc.args...)
			if code != ExitUsage || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q\n%s", code, errOut, tc.want, out)
			}
			if tc.name == "image not in the registry" {
				docexample.Check(t, root, "scan-image-error", transcript+exitStatus(code))
			}
		})
	}
}

// scanPolicy is a policy of the test's own that reads input.imageScans:
// it enforces on a fixable HIGH or CRITICAL vulnerability and on a scan
// that is not a fresh result.
const scanPolicy = `# METADATA
# title: No fixable HIGH or CRITICAL vulnerability
# custom:
#   id: test-image-vulnerabilities
#   severity: high
#   action: enforce
package test.imagevulns

violation contains {"msg": msg, "path": ["spec", "containers", i, "image"]} if {
	some i, c in input.object.spec.containers
	scan := input.imageScans[c.image]
	scan.status == "scanned"
	n := scan.fixable.HIGH + scan.fixable.CRITICAL
	n > 0
	ids := [v.id | some v in scan.vulnerabilities; v.fixed != ""]
	msg := sprintf("%s: %d fixable HIGH or CRITICAL (%s)", [c.image, n, concat(", ", ids)])
}

violation contains {"msg": msg, "path": ["spec", "containers", i, "image"]} if {
	some i, c in input.object.spec.containers
	scan := input.imageScans[c.image]
	scan.status != "scanned"
	msg := sprintf("%s: scan %s", [c.image, scan.status])
}
`

func TestCheckScanImages(t *testing.T) {
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	f := newScanFixture(t)
	dir := t.TempDir()
	policy := write(t, dir, "policy/imagevulns.rego", scanPolicy)
	pod := func(name string, images ...string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "apiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: shop}\nspec:\n  containers:\n", name)
		for i, img := range images {
			fmt.Fprintf(&b, "  - {name: c%d, image: %q}\n", i, img)
		}
		return b.String()
	}
	gone := strings.Replace(f.alpine, "team/alpine", "team/nothing", 1)
	manifests := write(t, dir, "m/pods.yaml", strings.Join([]string{
		pod("web", f.debian, f.clean),
		pod("worker", f.debian),
		pod("edge", f.alpine),
		pod("tidy", f.clean),
	}, "---\n"))
	base := []string{"check", "--no-builtin", "--policy", policy, "--format", "json", "--scan-images",
		"--trivy", f.trivy, "--db-repository", f.dbRef, "--cache-dir", f.cache, "--insecure-registry"}

	code, out, errOut := run(t, "", append(base, manifests)...)
	var rep struct {
		Results  []struct{ Name, Message string } `json:"results"`
		Problems []struct {
			File, Message string
			Line          int
		} `json:"problems"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s\n%s", err, out, errOut)
	}
	if code != ExitFindings {
		t.Errorf("exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	got := map[string]string{}
	for _, r := range rep.Results {
		got[r.Name] = r.Message
	}
	want := map[string]string{
		"web":    f.debian + ": 1 fixable HIGH or CRITICAL (CVE-2026-10001, GHSA-tg00-0001-0001, GHSA-tg00-0002-0001)",
		"worker": f.debian + ": 1 fixable HIGH or CRITICAL (CVE-2026-10001, GHSA-tg00-0001-0001, GHSA-tg00-0002-0001)",
		"edge":   f.alpine + ": 1 fixable HIGH or CRITICAL (CVE-2026-10101)",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("findings (-want +got):\n%s", d)
	}
	// Each distinct image is scanned once.
	for _, img := range []string{f.debian, f.alpine, f.clean} {
		if n := strings.Count(errOut, "scanning "+img+"\n"); n != 1 {
			t.Errorf("%s scanned %d times, want once:\n%s", img, n, errOut)
		}
	}

	// A scan that fails is a problem of the check (exit 2), and the
	// policy sees it failed; the other images are still judged.
	bad := write(t, dir, "m/bad.yaml", pod("lost", gone)+"---\n"+pod("edge", f.alpine))
	code, out, errOut = run(t, "", append(base, bad)...)
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s\n%s", err, out, errOut)
	}
	if code != ExitUsage || len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0].Message, "scanning "+gone) || rep.Problems[0].Line != 1 {
		t.Errorf("exit %d, problems %+v; want 2 and the failed scan at bad.yaml:1", code, rep.Problems)
	}
	if len(rep.Results) != 2 || !strings.Contains(out, gone+": scan failed") {
		t.Errorf("results %+v: want the failed scan and the alpine finding", rep.Results)
	}

	// Without --scan-images the policy sees no scans.
	code, out, _ = run(t, "", "check", "--no-builtin", "--policy", policy, manifests)
	if code != ExitOK {
		t.Errorf("without --scan-images: exit %d\n%s", code, out)
	}
	// The check docs/scanning-trivy.md quotes: the library beside the
	// policy, in text, from the directory holding both files.
	write(t, ".", "imagevulns.rego", scanPolicy)
	write(t, ".", "pods.yaml", pod("web", f.debian, f.clean))
	code, transcript, _, _ := terminal(t, "", "check", "--policy", "imagevulns.rego", "--scan-images",
		"--db-repository", f.dbRef, "--cache-dir", f.cache, "--insecure-registry", "pods.yaml")
	if code != ExitFindings || !strings.Contains(transcript, "test-image-vulnerabilities") {
		t.Errorf("check --scan-images with the library: exit %d\n%s", code, transcript)
	}
	docexample.Check(t, root, "scan-images-check", transcript)

	// A scanner that cannot start is a usage error.
	code, _, errOut = run(t, "", "check", "--no-builtin", "--policy", policy, "--scan-images", "--trivy", "/nonexistent/trivy", manifests)
	if code != ExitUsage || !strings.Contains(errOut, "--scan-images: ") {
		t.Errorf("no trivy: exit %d, %s", code, errOut)
	}
}
