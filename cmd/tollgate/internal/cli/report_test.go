package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/cosign/v2/pkg/cosign"

	"github.com/tollgate-dev/tollgate/compliance"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/webhook"
)

// reportJSON runs tollgate report with --format json and decodes it.
func reportJSON(t *testing.T, args ...string) (*compliance.Report, string) {
	t.Helper()
	code, out, stderr := run(t, "", append([]string{"report", "--format", "json"}, args...)...)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r compliance.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("not JSON (%v):\n%s", err, out)
	}
	return &r, stderr
}

func control(t *testing.T, r *compliance.Report, fw, id string) *compliance.ControlResult {
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
	t.Fatalf("no control %s:%s in the report", fw, id)
	return nil
}

func failingResources(c *compliance.ControlResult) []string {
	var out []string
	for _, r := range c.Failures {
		out = append(out, r.Resource.String())
	}
	return out
}

// TestReportFromManifests: tollgate report --from on test/manifests — the
// privileged node-agent fails the privileged-container controls of every
// framework, the hardened checkout fails none; versions and counts are
// stated.
func TestReportFromManifests(t *testing.T) {
	r, _ := reportJSON(t, "--from", manifests)
	if r.Objects != 4 || r.Checks == 0 || len(r.Manifests) != 1 {
		t.Errorf("objects %d checks %d manifests %v", r.Objects, r.Checks, r.Manifests)
	}
	if r.Versions.PolicyLibrary == "" || !strings.HasPrefix(r.Versions.PolicyDigest, "sha256:") || r.Versions.Tollgate == "" {
		t.Errorf("versions %+v", r.Versions)
	}
	for _, fc := range [][2]string{{"cis", "5.2.2"}, {"pss", "baseline/privileged-containers"}, {"nsa", "pod-security/privileged"}, {"soc2", "CC6.1"}} {
		c := control(t, r, fc[0], fc[1])
		if c.Verdict != compliance.VerdictFailed {
			t.Errorf("%s:%s is %s", fc[0], fc[1], c.Verdict)
		}
		res := strings.Join(failingResources(c), " ")
		if !strings.Contains(res, "shop/Deployment/node-agent") || strings.Contains(res, "checkout") {
			t.Errorf("%s:%s fails %s", fc[0], fc[1], res)
		}
	}
	if c := control(t, r, "cis", "5.1.1"); c.Verdict != compliance.VerdictManual {
		t.Errorf("5.1.1 is %s", c.Verdict)
	}
	f := control(t, r, "cis", "5.2.2").Failures[0]
	if f.Message == "" || f.Remediation == "" || !strings.HasPrefix(f.Properties[compliance.PropFile], filepath.Join(manifests, "privileged.yaml")+":") {
		t.Errorf("failure %+v", f)
	}

	// Only the frameworks asked for; --from with more paths after it.
	r, _ = reportJSON(t, "--framework", "pss", "--from", manifests+"hardened.yaml", manifests+"privileged.yaml")
	if len(r.Frameworks) != 1 || r.Frameworks[0].ID != "pss" || r.Objects != 4 {
		t.Errorf("frameworks %d objects %d", len(r.Frameworks), r.Objects)
	}
}

// TestReportFormatsAndOutput: the format follows --output's extension;
// each rendering carries the verdicts; the summary lines go to stdout.
func TestReportFormatsAndOutput(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ file, want string }{
		{"r.html", `id="fw-cis"`},
		{"r.md", "## CIS Kubernetes Benchmark"},
		{"r.json", `"verdict": "failed"`},
		{"r.csv", "framework,framework_version,control"},
	} {
		out := filepath.Join(dir, tc.file)
		code, stdout, stderr := run(t, "", "report", "--from", manifests, "--output", out)
		if code != ExitOK {
			t.Fatalf("%s: exit %d: %s", tc.file, code, stderr)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), tc.want) {
			t.Errorf("%s lacks %q", tc.file, tc.want)
		}
		if !strings.Contains(stdout, "report: "+out) || !strings.Contains(stdout, "cis   ") {
			t.Errorf("stdout: %s", stdout)
		}
	}
	// Markdown to standard output by default.
	code, out, _ := run(t, "", "report", "--from", manifests)
	if code != ExitOK || !strings.HasPrefix(out, "# Compliance report — manifests") {
		t.Errorf("exit %d:\n%.200s", code, out)
	}
}

// TestReportManifestExceptions: a TollgateException among the manifests
// waives its findings when the config designates its namespace; else it is
// noted as not honoured.
func TestReportManifestExceptions(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "in/app.yaml", `apiVersion: v1
kind: Pod
metadata: {name: legacy-app, namespace: legacy, labels: {team: a, owner: b, cost-center: CC-1}}
spec:
  containers:
    - name: c
      image: nginx:1.27
      securityContext: {privileged: true}
---
apiVersion: tollgate.dev/v1alpha1
kind: TollgateException
metadata: {name: legacy-priv, namespace: platform-exceptions}
spec:
  policies: [pss-baseline-privileged]
  match: {namespaces: [legacy], names: ["legacy-*"]}
  reason: The vendor agent needs the host devices
  ticket: SEC-77
  approver: ciso@corp.example
  expiry: "`+time.Now().Add(90*24*time.Hour).UTC().Format(time.RFC3339)+`"
`)
	cfg := write(t, dir, "config.yaml", "exceptions:\n  namespaces: [platform-exceptions]\n")

	r, _ := reportJSON(t, "--config", cfg, "--from", filepath.Join(dir, "in"))
	c := control(t, r, "cis", "5.2.2")
	if c.Verdict != compliance.VerdictPassedWithExceptions || len(c.Waived) != 1 || c.Waived[0].Exception.Approver != "ciso@corp.example" {
		t.Errorf("5.2.2: %s, waived %+v", c.Verdict, c.Waived)
	}
	if len(r.Exceptions) != 1 || r.Exceptions[0].Ticket != "SEC-77" || r.Exceptions[0].Waived != 1 {
		t.Errorf("exceptions %+v", r.Exceptions)
	}

	r, _ = reportJSON(t, "--from", filepath.Join(dir, "in"))
	if c := control(t, r, "cis", "5.2.2"); c.Verdict != compliance.VerdictFailed {
		t.Errorf("without the config: %s", c.Verdict)
	}
	if !strings.Contains(strings.Join(r.Notes, "\n"), "TollgateException platform-exceptions/legacy-priv") {
		t.Errorf("notes %v", r.Notes)
	}
}

// TestReportDecisionLog: denials of the period are counted, dry runs left
// out, malformed lines reported with their numbers without failing.
func TestReportDecisionLog(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC()
	entry := func(ago time.Duration, dryRun bool) string {
		return fmt.Sprintf(`{"time":%q,"uid":"u","user":"alice","operation":"CREATE","kind":"Pod","namespace":"shop","name":"p","dryRun":%t,"allowed":false,`+
			`"findings":[{"policy":"pss-baseline-privileged","message":"privileged","severity":"critical","action":"enforce"}],"generation":1,"authenticated":true}`,
			now.Add(-ago).Format(time.RFC3339), dryRun)
	}
	log := write(t, dir, "decisions.jsonl", strings.Join([]string{
		entry(time.Hour, false),
		entry(2*time.Hour, true),
		"{broken",
		entry(40*24*time.Hour, false),
		entry(3*time.Hour, false),
	}, "\n")+"\n")
	r, _ := reportJSON(t, "--from", manifests, "--decision-log", log, "--since", "30d")
	d := r.Denials
	if d == nil || d.Denied != 2 || d.DryRun != 1 || d.OutsidePeriod != 1 || d.Malformed != 1 || d.MalformedLines[0].Line != 3 {
		t.Fatalf("denials %+v", d)
	}
	if c := control(t, r, "cis", "5.2.2"); c.Denied != 2 {
		t.Errorf("5.2.2 denied %d", c.Denied)
	}
	r, _ = reportJSON(t, "--from", manifests, "--decision-log", log, "--since", "150m")
	if r.Denials.Denied != 1 {
		t.Errorf("--since 150m: %d denied", r.Denials.Denied)
	}
}

// TestReportBadInput: every usage or input error exits 2 and says what to
// fix, without writing a report.
func TestReportBadInput(t *testing.T) {
	dir := t.TempDir()
	badFW := write(t, dir, "fw/corp.yaml", "id: corp\nname: Corp\ncontrols:\n  - id: c1\n    title: One\n")
	unreachable := write(t, dir, "kubeconfig", `apiVersion: v1
kind: Config
clusters: [{name: gone, cluster: {server: "https://127.0.0.1:1"}}]
contexts: [{name: gone, context: {cluster: gone, user: u}}]
current-context: gone
users: [{name: u, user: {token: x}}]
`)
	key := keyFiles(t, dir, "pw")
	out := filepath.Join(dir, "never.html")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown framework", []string{"--framework", "hipaa"}, `unknown framework "hipaa" (want cis, nsa, pss, soc2 or all)`},
		{"unknown format", []string{"--format", "pdf"}, `--format: unknown format "pdf"`},
		{"extension names no format", []string{"--output", filepath.Join(dir, "r.txt")}, "give --format"},
		{"bad since", []string{"--since", "a month"}, `--since "a month"`},
		{"negative since", []string{"--since", "-5d"}, `--since "-5d"`},
		{"malformed framework file", []string{"--frameworks-dir", filepath.Dir(badFW)}, "corp.yaml: controls[0] (c1).policies: list the policies"},
		{"missing frameworks dir", []string{"--frameworks-dir", filepath.Join(dir, "nope")}, "--frameworks-dir"},
		{"sign without output", []string{"--sign-key", key.priv}, "--sign-key needs --output"},
		{"missing sign key", []string{"--sign-key", filepath.Join(dir, "nope.key"), "--output", out}, "--sign-key"},
		{"missing decision log", []string{"--from", manifests, "--decision-log", filepath.Join(dir, "nope.jsonl")}, "--decision-log"},
		{"decision log is a directory", []string{"--from", manifests, "--decision-log", dir}, "is a directory"},
		{"missing manifests", []string{"--from", filepath.Join(dir, "nope")}, "--from"},
		{"arguments without --from", []string{"deploy/"}, "report takes no arguments (deploy/)"},
		{"unreadable cluster", []string{"--kubeconfig", unreachable, "--timeout", "5s"}, "reading the cluster at https://127.0.0.1:1"},
		{"missing kubeconfig", []string{"--kubeconfig", filepath.Join(dir, "nope")}, "--kubeconfig"},
		{"cluster without =", []string{"--cluster", unreachable}, `--cluster "` + unreachable + `": want NAME=KUBECONFIG`},
		{"cluster without a name", []string{"--cluster", "=" + unreachable}, "the name before = is empty"},
		{"cluster without a kubeconfig", []string{"--cluster", "a="}, `--cluster "a=": the kubeconfig after = is empty`},
		{"cluster kubeconfig missing", []string{"--cluster", "a=" + filepath.Join(dir, "nope")}, `--cluster "a=` + filepath.Join(dir, "nope") + `": kubeconfig: stat`},
		{"cluster kubeconfig a directory", []string{"--cluster", "a=" + dir}, "is a directory"},
		{"cluster kubeconfig not one", []string{"--cluster", "a=" + badFW}, `--cluster "a=` + badFW + `": kubeconfig:`},
		{"cluster name twice", []string{"--cluster", "a=" + unreachable, "--cluster", "a=" + unreachable}, "the name a is given twice"},
		{"cluster name with a comma", []string{"--cluster", "a,b=" + unreachable}, "a comma or a semicolon"},
		{"cluster name too long", []string{"--cluster", strings.Repeat("n", 64) + "=" + unreachable}, "longer than 63 characters"},
		{"cluster with --kubeconfig", []string{"--cluster", "a=" + unreachable, "--kubeconfig", unreachable}, "--cluster and --kubeconfig exclude each other"},
		{"cluster with --from", []string{"--cluster", "a=" + unreachable, "--from", manifests}, "--cluster and --from exclude each other"},
		{"allow-missing alone", []string{"--allow-missing"}, "--allow-missing needs --cluster"},
		{"cluster secrets with --from", []string{"--clusters-from-secrets", "tollgate-system", "--from", manifests}, "--clusters-from-secrets and --from exclude each other"},
		{"cluster secrets of a central cluster out of reach", []string{"--clusters-from-secrets", "tollgate-system", "--kubeconfig", unreachable, "--timeout", "2s"},
			"--clusters-from-secrets: listing the Secrets labelled tollgate.dev/cluster in namespace tollgate-system of https://127.0.0.1:1"},
		{"unreachable among clusters", []string{"--cluster", "gone=" + unreachable, "--timeout", "5s", "--output", out},
			"--cluster gone=" + unreachable + ": reading the cluster at https://127.0.0.1:1"},
		{"every cluster unreachable", []string{"--cluster", "gone=" + unreachable, "--timeout", "5s", "--allow-missing", "--output", out},
			"--cluster: no cluster could be read (gone): no report written"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := run(t, "", append([]string{"report"}, tc.args...)...)
			if code != ExitUsage || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, tc.want)
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		t.Setenv("COSIGN_PASSWORD", "not it")
		code, _, stderr := run(t, "", "report", "--from", manifests, "--output", out, "--sign-key", key.priv)
		if code != ExitUsage || !strings.Contains(stderr, "COSIGN_PASSWORD") {
			t.Errorf("exit %d: %s", code, stderr)
		}
		if _, err := os.Stat(out); err == nil {
			t.Error("a report was written although it could not be signed")
		}
	})
}

type keyPaths struct{ priv, pub string }

// keyFiles writes a cosign key pair (cosign.key, cosign.pub) into dir.
func keyFiles(t *testing.T, dir, password string) keyPaths {
	t.Helper()
	keys, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return []byte(password), nil })
	if err != nil {
		t.Fatal(err)
	}
	sub, err := os.MkdirTemp(dir, "keys-")
	if err != nil {
		t.Fatal(err)
	}
	return keyPaths{
		priv: write(t, sub, "cosign.key", string(keys.PrivateBytes)),
		pub:  write(t, sub, "cosign.pub", string(keys.PublicBytes)),
	}
}

// TestReportSignVerify: --sign-key writes REPORT.sig; report verify
// accepts it (0), rejects a one-byte edit or another key (1), and usage
// errors exit 2.
func TestReportSignVerify(t *testing.T) {
	dir := t.TempDir()
	key := keyFiles(t, dir, "s3cret")
	other := keyFiles(t, dir, "")
	t.Setenv("COSIGN_PASSWORD", "s3cret")
	out := filepath.Join(dir, "report.html")
	code, stdout, stderr := run(t, "", "report", "--from", manifests, "--output", out, "--sign-key", key.priv)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "signature: "+out+".sig") {
		t.Errorf("stdout lacks the signature path:\n%s", stdout)
	}

	code, stdout, stderr = run(t, "", "report", "verify", "--key", key.pub, out)
	if code != ExitOK || !strings.Contains(stdout, "Verified OK") {
		t.Fatalf("verify: exit %d: %s %s", code, stdout, stderr)
	}
	moved := filepath.Join(dir, "elsewhere.sig")
	if err := os.Rename(out+".sig", moved); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := run(t, "", "report", "verify", "--key", key.pub, "--signature", moved, out); code != ExitOK {
		t.Errorf("--signature: exit %d: %s", code, stderr)
	}
	if code, _, stderr := run(t, "", "report", "verify", "--key", other.pub, "--signature", moved, out); code != ExitFindings || !strings.Contains(stderr, "does not match") {
		t.Errorf("another key: exit %d: %s", code, stderr)
	}

	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(data), "FAILED")
	data[i] = 'P' // FAILED → PAILED: one byte
	if err := os.WriteFile(out, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := run(t, "", "report", "verify", "--key", key.pub, "--signature", moved, out); code != ExitFindings || !strings.Contains(stderr, "does not match") {
		t.Errorf("one-byte edit: exit %d: %s", code, stderr)
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no key", []string{out}, "--key is required"},
		{"no report", []string{"--key", key.pub}, "exactly one REPORT"},
		{"two reports", []string{"--key", key.pub, out, out}, "exactly one REPORT"},
		{"missing signature", []string{"--key", key.pub, out}, "--signature"},
		{"missing report", []string{"--key", key.pub, "--signature", moved, filepath.Join(dir, "nope.html")}, "nope.html"},
		{"not a key", []string{"--key", moved, "--signature", moved, out}, "--key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := run(t, "", append([]string{"report", "verify"}, tc.args...)...)
			if code != ExitUsage || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, tc.want)
			}
		})
	}
}

// TestReportDecisionLogChain: a keyed chain verifies with its key, an
// edited line is flagged with its number in the summary and the report,
// and bad key files are refused with what is wrong.
func TestReportDecisionLogChain(t *testing.T) {
	dir := t.TempDir()
	keyFile := write(t, dir, "key", "0123456789abcdef0123456789abcdef\n")
	path := filepath.Join(dir, "decisions.jsonl")
	l, f, err := webhook.OpenDecisionLog(path, webhook.DecisionLogOptions{Key: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		e := &webhook.DecisionEntry{Time: time.Now().UTC(), UID: fmt.Sprint(i), Operation: "CREATE", Kind: "v1/Pod", Namespace: "shop", Name: "p",
			Authenticated: i > 0, Client: "kube-apiserver",
			Findings: []policies.Finding{{Policy: "pss-baseline-privileged", Message: "privileged", Action: policies.ActionEnforce}}}
		if err := l.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	r, _ := reportJSON(t, "--from", manifests, "--decision-log", path, "--decision-log-key-file", keyFile)
	if d := r.Denials; d.Denied != 2 || d.Unauthenticated != 1 || d.Integrity[0].Status != compliance.IntegrityVerified {
		t.Fatalf("denials %+v", d)
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	edited := write(t, dir, "edited.jsonl", strings.Replace(string(data), `"uid":"2"`, `"uid":"9"`, 1))
	out := filepath.Join(dir, "report.md")
	code, stdout, stderr := run(t, "", "report", "--from", manifests, "--decision-log", edited, "--decision-log-key-file", keyFile, "--output", out)
	if code != 0 || !strings.Contains(stdout, "edited.jsonl: broken (1 problems)") || !strings.Contains(stdout, "1 unauthenticated, 1 edited left out") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	md, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "line 4 was edited: its hash does not match its content") {
		t.Errorf("the report does not flag line 4:\n%s", md)
	}

	for _, tt := range []struct{ name, key, want string }{
		{"short key", write(t, dir, "short", "abc\n"), "the key is 3 bytes, want at least 16"},
		{"missing key", filepath.Join(dir, "nope"), "--decision-log-key-file"},
	} {
		code, _, stderr := run(t, "", "report", "--from", manifests, "--decision-log", path, "--decision-log-key-file", tt.key)
		if code == 0 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%s: exit %d, stderr %q; want %q", tt.name, code, stderr, tt.want)
		}
	}
}
