package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/cmd/tollgate/internal/output"
	"github.com/tollgate-dev/tollgate/test/docexample"
)

// run runs the CLI in-process and returns its exit code and output.
func run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), args, IO{In: strings.NewReader(stdin), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

// terminal runs the CLI in-process as a terminal would and returns its exit
// code, the transcript the docs quote ("$ tollgate ARGS", then standard
// error and output interleaved in the order they were written), and the two
// streams apart.
func terminal(t *testing.T, stdin string, args ...string) (code int, transcript, stdout, stderr string) {
	t.Helper()
	var (
		mu             sync.Mutex
		all, out, errb bytes.Buffer
	)
	code = Run(context.Background(), args, IO{
		In:  strings.NewReader(stdin),
		Out: teeWriter{&mu, &all, &out},
		Err: teeWriter{&mu, &all, &errb},
	})
	return code, "$ tollgate " + docexample.ShellWords(args) + "\n" + all.String(), out.String(), errb.String()
}

// teeWriter writes to a stream of its own and to the transcript both
// streams share.
type teeWriter struct {
	mu       *sync.Mutex
	all, own *bytes.Buffer
}

func (w teeWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all.Write(p)
	return w.own.Write(p)
}

func write(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type jsonReport struct {
	Results []jsonResult `json:"results"`
	Summary struct {
		Objects, Files, Findings int
		Passed                   bool
		ByAction                 struct{ Enforce, Warn, Audit int }
	} `json:"summary"`
	Mutations []output.Mutation `json:"mutations"`
}

type jsonResult struct {
	File, APIVersion, Kind, Namespace, Name, Policy, Severity, Action, Message, Path string
	Line                                                                             int
}

func checkJSON(t *testing.T, stdin string, args ...string) (int, jsonReport, string) {
	t.Helper()
	code, out, errs := run(t, stdin, append([]string{"check", "--format", "json"}, args...)...)
	var r jsonReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("output is not JSON (%v):\n%s\nstderr: %s", err, out, errs)
	}
	return code, r, errs
}

const manifests = "../../../../test/manifests/"

func TestCheckHardenedDeploymentPasses(t *testing.T) {
	code, out, errs := run(t, "", "check", manifests+"hardened.yaml")
	if code != ExitOK {
		t.Fatalf("exit %d, want 0\n%s%s", code, out, errs)
	}
	if !strings.Contains(out, "3 objects checked in 1 file: 0 enforce, 0 warn, 0 audit findings — PASSED") {
		t.Errorf("summary missing:\n%s", out)
	}
}

// The acceptance case: a privileged Deployment running as root with a
// hostPath volume fails with one finding per violated control, each with
// file, line and field path (as written: --no-mutate).
func TestCheckPrivilegedDeploymentFails(t *testing.T) {
	file := manifests + "privileged.yaml"
	code, r, errs := checkJSON(t, "", "--no-mutate", file)
	if code != ExitFindings {
		t.Fatalf("exit %d, want 1; stderr %s", code, errs)
	}
	type row struct {
		Policy, Path string
		Line         int
	}
	var got []row
	for _, res := range r.Results {
		if res.Action == "audit" {
			continue // the audit's evidence (a writable root filesystem), not the acceptance case
		}
		if res.File != file || res.Kind != "Deployment" || res.Name != "node-agent" || res.Namespace != "shop" || res.Action != "enforce" {
			t.Errorf("result not located: %+v", res)
		}
		got = append(got, row{res.Policy, res.Path, res.Line})
	}
	sort.Slice(got, func(i, j int) bool { return got[i].Policy < got[j].Policy })
	c := "spec.template.spec.containers[0].securityContext."
	want := []row{
		{"pss-baseline-host-path", "spec.template.spec.volumes[0].hostPath", 36},
		{"pss-baseline-privileged", c + "privileged", 26},
		{"pss-restricted-capabilities", c + "capabilities.drop", 25},
		{"pss-restricted-privilege-escalation", c + "allowPrivilegeEscalation", 25},
		{"pss-restricted-run-as-non-root", c + "runAsNonRoot", 25},
		{"pss-restricted-run-as-user", c + "runAsUser", 27},
		{"pss-restricted-seccomp", c + "seccompProfile.type", 25},
		{"pss-restricted-volume-types", "spec.template.spec.volumes[0].hostPath", 36},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	if r.Summary.Passed || r.Summary.ByAction.Enforce != len(want) {
		t.Errorf("summary: %+v", r.Summary)
	}
}

func TestCheckFormats(t *testing.T) {
	file := manifests + "privileged.yaml"
	t.Run("sarif", func(t *testing.T) {
		code, out, _ := run(t, "", "check", "--format", "sarif", file)
		var doc struct {
			Version string `json:"version"`
			Runs    []struct {
				Results []struct {
					RuleID    string `json:"ruleId"`
					Locations []struct {
						PhysicalLocation struct {
							ArtifactLocation struct{ URI string }    `json:"artifactLocation"`
							Region           struct{ StartLine int } `json:"region"`
						} `json:"physicalLocation"`
					} `json:"locations"`
				} `json:"results"`
			} `json:"runs"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil || code != ExitFindings {
			t.Fatalf("exit %d, %v", code, err)
		}
		// What the cluster would store: the hardening admission injects
		// (seccomp, runAsNonRoot, dropped capabilities) no longer fails.
		if doc.Version != "2.1.0" || len(doc.Runs) != 1 || len(doc.Runs[0].Results) != 6 {
			t.Fatalf("sarif: %+v", doc)
		}
		loc := doc.Runs[0].Results[0].Locations[0].PhysicalLocation
		if !strings.HasSuffix(loc.ArtifactLocation.URI, "test/manifests/privileged.yaml") || loc.Region.StartLine == 0 {
			t.Errorf("location: %+v", loc)
		}
	})
	t.Run("junit", func(t *testing.T) {
		code, out, _ := run(t, "", "check", "--format", "junit", file)
		var suites struct {
			Failures int `xml:"failures,attr"`
		}
		if err := xml.Unmarshal([]byte(out), &suites); err != nil || code != ExitFindings {
			t.Fatalf("exit %d, junit does not parse: %v\n%s", code, err, out)
		}
		if suites.Failures != 1 {
			t.Errorf("failures = %d, want 1 (one failing object)", suites.Failures)
		}
	})
	t.Run("github", func(t *testing.T) {
		_, out, _ := run(t, "", "check", "--format", "github", file)
		if !strings.Contains(out, "::error file=../../../../test/manifests/privileged.yaml,line=26,title=pss-baseline-privileged::") {
			t.Errorf("annotations:\n%s", out)
		}
	})
	t.Run("output file", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "out.json")
		code, out, errs := run(t, "", "check", "--format", "json", "--output", p, file)
		b, err := os.ReadFile(p)
		if err != nil || code != ExitFindings || out != "" || !json.Valid(b) {
			t.Fatalf("exit %d, stdout %q, file %v", code, out, err)
		}
		if !strings.Contains(errs, "5 enforce") {
			t.Errorf("stderr summary: %q", errs)
		}
	})
}

func TestCheckInputErrors(t *testing.T) {
	dir := t.TempDir()
	good := write(t, dir, "ok/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\n")
	tests := []struct {
		name     string
		args     []string
		stdin    string
		wantCode int
		wantErr  string
	}{
		{"malformed yaml", []string{write(t, dir, "bad.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: [unclosed\n")}, "", ExitUsage, "bad.yaml:4"},
		{"malformed json", []string{write(t, dir, "bad.json", "{\"apiVersion\": \"v1\",\n \"kind\": }")}, "", ExitUsage, "bad.json:2"},
		{"no kind", []string{write(t, dir, "nokind.yaml", "---\napiVersion: v1\nmetadata: {name: x}\n")}, "", ExitUsage, "nokind.yaml:2"},
		{"nested too deep", []string{write(t, dir, "deep.json", strings.Repeat("[", 10000)+strings.Repeat("]", 10000))}, "", ExitUsage, "deep.json:1"},
		{"missing path", []string{filepath.Join(dir, "nope.yaml")}, "", ExitUsage, "nope.yaml"},
		{"no path", nil, "", ExitUsage, "needs at least one PATH"},
		{"unknown format", []string{"--format", "xml", good}, "", ExitUsage, `unknown output format "xml"`},
		{"unknown flag", []string{"--frmat", "json", good}, "", ExitUsage, "unknown flag: --frmat"},
		{"bad config", []string{"--config", write(t, dir, "cfg.yaml", "labels: {team: {kee: x}}\n"), good}, "", ExitUsage, "labels.team: additional properties 'kee' not allowed"},
		{"bundle not a tarball", []string{"--policy", write(t, dir, "b.tar.gz", "nope"), good}, "", ExitUsage, "not a gzipped tarball"},
		{"policy does not compile", []string{"--policy", write(t, dir, "p/broken.rego", "package x\nviolation contains m if {\n"), good}, "", ExitUsage, "broken.rego:"},
		{"bad timeout", []string{"--policy-timeout", "-1s", good}, "", ExitUsage, "--policy-timeout must be positive"},
		{"unknown crd", []string{write(t, dir, "crd.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 3}\n")}, "", ExitOK, ""},
		{"empty file", []string{write(t, dir, "empty.yaml", "")}, "", ExitOK, "no Kubernetes objects found"},
		{"stdin", []string{"-"}, "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\nspec:\n  containers:\n  - {name: a, image: nginx:1, securityContext: {privileged: true}}\n", ExitFindings, ""},
		{"stdin malformed", []string{"-"}, "kind: Pod\n  bad: indent\n", ExitUsage, "<stdin>:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := run(t, tt.stdin, append([]string{"check"}, tt.args...)...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, out, errs)
			}
			if !strings.Contains(out+errs, tt.wantErr) {
				t.Errorf("output does not mention %q:\nstdout: %s\nstderr: %s", tt.wantErr, out, errs)
			}
		})
	}
}

// Input errors do not hide the findings of the documents that did parse.
func TestCheckReportsEverythingAtOnce(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a-bad.yaml", "kind: [\n")
	write(t, dir, "b-priv.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop, labels: {team: a, owner: b, cost-center: c}}\nspec:\n  containers:\n  - name: a\n    image: nginx:1\n    securityContext: {privileged: true}\n")
	code, r, errs := checkJSON(t, "", dir)
	if code != ExitUsage {
		t.Errorf("exit %d, want 2 (input error)", code)
	}
	found := false
	for _, res := range r.Results {
		if res.Policy == "pss-baseline-privileged" && res.Line == 8 {
			found = true
		}
	}
	if !found {
		t.Errorf("the valid file's findings are missing: %+v (stderr %s)", r.Results, errs)
	}
}

func deployment(ns string, labels string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: %s
%s
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      automountServiceAccountToken: false
      securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: web
        image: registry.corp.example/web:1.0
        securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
        resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {memory: 64Mi}}
`, ns, labels)
}

const shopNamespace = `apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels: {team: payments, owner: jdoe, cost-center: CC-1}
`

func TestCheckNamespaceContext(t *testing.T) {
	dir := t.TempDir()
	unlabelled := write(t, dir, "deploy.yaml", deployment("shop", ""))
	nsFile := write(t, dir, "ns/namespaces.yaml", shopNamespace)

	// Alone, the workload lacks its ownership labels.
	code, r, _ := checkJSON(t, "", unlabelled)
	if code != ExitFindings || len(r.Results) != 3 {
		t.Fatalf("exit %d, results %+v; want the three missing ownership labels", code, r.Results)
	}
	for _, res := range r.Results {
		if res.Policy != "ownership-labels" || res.Path != "metadata.labels" || res.Line != 3 {
			t.Errorf("unexpected %+v", res)
		}
	}
	// The namespace's labels are inherited (the webhook copies them), from
	// --namespaces or from a Namespace among the inputs.
	if code, r, errs := checkJSON(t, "", "--namespaces", nsFile, unlabelled); code != ExitOK {
		t.Errorf("with --namespaces: exit %d %+v %s", code, r.Results, errs)
	}
	both := write(t, dir, "both.yaml", shopNamespace+"---\n"+deployment("shop", ""))
	if code, r, errs := checkJSON(t, "", both); code != ExitOK || r.Summary.Objects != 2 {
		t.Errorf("namespace in the inputs: exit %d %+v %s", code, r, errs)
	}
	// -n places objects that name no namespace.
	noNS := write(t, dir, "nons.yaml", strings.Replace(deployment("shop", ""), "  namespace: shop\n", "", 1))
	if code, r, errs := checkJSON(t, "", "-n", "shop", "--namespaces", nsFile, noNS); code != ExitOK || r.Summary.Objects != 1 {
		t.Errorf("-n shop: exit %d %+v %s", code, r, errs)
	}
}

func TestCheckImageReferencesOfEveryShape(t *testing.T) {
	dir := t.TempDir()
	cfg := write(t, dir, "cfg.yaml", "parameters:\n  images:\n    allowedRegistries: [corp.io, localhost:5000, docker.io/library]\n")
	images := []string{
		"nginx:1.27",                                    // docker.io/library: allowed
		"docker.io/library/nginx:1.27",                  // allowed
		"bitnami/redis:7",                               // docker.io/bitnami: denied
		"reg:5000/ns/img:tag",                           // denied
		"localhost:5000/i:1",                            // allowed
		"corp.io/app@sha256:" + strings.Repeat("a", 64), // allowed, digest
		"corp.io.evil.net/x:1",                          // denied: not a segment match
		"Corp.io/App:1",                                 // invalid: uppercase repository
		"corp.io/app:latest",                            // latest
		"corp.io/app",                                   // no tag
		"corp.io/" + strings.Repeat("a", 300) + ":1",    // invalid: too long
	}
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop, labels: {team: a, owner: b, cost-center: c}}\nspec:\n  containers:\n")
	for i, img := range images {
		fmt.Fprintf(&b, "  - {name: c%d, image: %q}\n", i, img)
	}
	pod := write(t, dir, "pod.yaml", b.String())
	_, r, errs := checkJSON(t, "", "--config", cfg, pod)
	got := map[string][]string{}
	for _, res := range r.Results {
		if strings.HasPrefix(res.Policy, "images-") {
			got[res.Policy] = append(got[res.Policy], res.Path)
		}
	}
	for k := range got {
		sort.Strings(got[k])
	}
	want := map[string][]string{
		"images-allowed-registries": {
			"spec.containers[10].image", "spec.containers[2].image", "spec.containers[3].image",
			"spec.containers[6].image", "spec.containers[7].image",
		},
		"images-no-latest": {"spec.containers[10].image", "spec.containers[7].image", "spec.containers[8].image", "spec.containers[9].image"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("image findings (-want +got):\n%s\nstderr: %s", diff, errs)
	}
}

func TestCheckLargeInputs(t *testing.T) {
	dir := t.TempDir()
	// 5,000 containers in one pod, every one privileged.
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: Pod\nmetadata: {name: big, namespace: shop, labels: {team: a, owner: b, cost-center: c}}\nspec:\n  containers:\n")
	for i := range 5000 {
		fmt.Fprintf(&b, "  - {name: c%d, image: corp.io/app:1, securityContext: {privileged: true}}\n", i)
	}
	big := write(t, dir, "big.yaml", b.String())
	// 40,000 findings take seconds under the race detector; this test is
	// about handling the size, not about time.
	code, r, errs := checkJSON(t, "", "--policy-timeout", "5m", big)
	n := 0
	for _, res := range r.Results {
		if res.Policy == "pss-baseline-privileged" {
			n++
		}
	}
	if code != ExitFindings || n != 5000 {
		t.Errorf("5,000 containers: exit %d, %d privileged findings; stderr %s", code, n, errs)
	}
	// A 3 MiB ConfigMap is judged like any other object.
	huge := write(t, dir, "huge.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: huge, namespace: shop}\ndata:\n  blob: "+strings.Repeat("x", 3<<20)+"\n")
	if code, r, errs := checkJSON(t, "", huge); code != ExitOK || r.Summary.Objects != 1 {
		t.Errorf("3 MiB document: exit %d %+v %s", code, r.Summary, errs)
	}
	// Unicode in labels: reported, not crashed on.
	uni := write(t, dir, "uni.yaml", deployment("shop", "  labels: {team: équipe, owner: jdoe, cost-center: CC-1}"))
	code, r, _ = checkJSON(t, "", uni)
	if code != ExitFindings || len(r.Results) != 1 || r.Results[0].Path != "metadata.labels.team" {
		t.Errorf("unicode label: exit %d %+v", code, r.Results)
	}
}

func TestCheckContainsBadPolicies(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "p/loop.rego", `# METADATA
# custom:
#   id: user-loop
package user.loop

violation contains "never" if {
	some i in numbers.range(1, 20000)
	some j in numbers.range(1, 20000)
	i + j < 0
}
`)
	code, r, errs := checkJSON(t, "", "--policy", filepath.Join(dir, "p"), "--policy-timeout", "100ms", manifests+"privileged.yaml")
	if code != ExitUsage {
		t.Errorf("exit %d, want 2: a policy that did not finish leaves the check incomplete", code)
	}
	if len(r.Results) != 6 {
		t.Errorf("the other policies must still report: %d results", len(r.Results))
	}
	if !strings.Contains(errs, "user-loop") && !strings.Contains(fmt.Sprint(r), "user-loop") {
		// problems are in the JSON document
		code, out, _ := run(t, "", "check", "--policy", filepath.Join(dir, "p"), "--policy-timeout", "100ms", manifests+"privileged.yaml")
		if !strings.Contains(out, "user-loop") || !strings.Contains(out, "evaluation stopped after 100ms") {
			t.Errorf("exit %d; the looping policy is not named:\n%s", code, out)
		}
	}
}

func TestTestCommand(t *testing.T) {
	policy := `# METADATA
# title: No default namespace
# custom:
#   id: no-default-ns
#   action: warn
package user.nodefault

violation contains {"msg": "do not use the default namespace", "path": ["metadata", "namespace"]} if {
	input.object.metadata.namespace == "default"
}
`
	regoTest := `package user.nodefault_test

import data.user.nodefault

test_default_denied if {
	count(nodefault.violation) == 1 with input as {"object": {"metadata": {"namespace": "default"}}}
}

test_other_allowed if {
	count(nodefault.violation) == 0 with input as {"object": {"metadata": {"namespace": "shop"}}}
}
`
	suite := func(expectPath string) string {
		return fmt.Sprintf(`policies: [no-default-ns]
cases:
  - fixture: denied/default.yaml
    expect:
      - {policy: no-default-ns, path: %s, message: default namespace}
`, expectPath)
	}
	setup := func(t *testing.T, expectPath string) string {
		dir := t.TempDir()
		write(t, dir, "nodefault.rego", policy)
		write(t, dir, "nodefault_test.rego", regoTest)
		write(t, dir, "fixtures/suite.yaml", suite(expectPath))
		write(t, dir, "fixtures/allowed/shop.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\n")
		write(t, dir, "fixtures/denied/default.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: default}\n")
		return dir
	}
	t.Run("passes", func(t *testing.T) {
		code, out, errs := run(t, "", "test", "-v", setup(t, "metadata.namespace"))
		if code != ExitOK || !strings.Contains(out, "4 passed, 0 failed") {
			t.Errorf("exit %d\n%s%s", code, out, errs)
		}
	})
	t.Run("wrong expectation fails", func(t *testing.T) {
		code, out, _ := run(t, "", "test", setup(t, "metadata.name"))
		if code != ExitFindings || !strings.Contains(out, `expected finding not produced: policy="no-default-ns" path="metadata.name"`) {
			t.Errorf("exit %d\n%s", code, out)
		}
	})
	t.Run("failing rego test", func(t *testing.T) {
		dir := setup(t, "metadata.namespace")
		write(t, dir, "extra_test.rego", "package user.nodefault_test\n\ntest_wrong if {\n\t1 == 2\n}\n")
		code, out, _ := run(t, "", "test", dir)
		if code != ExitFindings || !strings.Contains(out, "--- FAIL: user.nodefault_test.test_wrong") {
			t.Errorf("exit %d\n%s", code, out)
		}
	})
	t.Run("policy that does not compile", func(t *testing.T) {
		dir := setup(t, "metadata.namespace")
		write(t, dir, "broken.rego", "package user.broken\n\nviolation contains x if {\n")
		code, _, errs := run(t, "", "test", dir)
		if code != ExitUsage || !strings.Contains(errs, "broken.rego:") {
			t.Errorf("exit %d\n%s", code, errs)
		}
	})
	t.Run("malformed suite", func(t *testing.T) {
		dir := setup(t, "metadata.namespace")
		write(t, dir, "fixtures/suite.yaml", "policies: [no-default-ns]\ncasess: []\n")
		code, _, errs := run(t, "", "test", dir)
		if code != ExitUsage || !strings.Contains(errs, "suite.yaml") || !strings.Contains(errs, "casess") {
			t.Errorf("exit %d\n%s", code, errs)
		}
	})
	t.Run("nothing to test", func(t *testing.T) {
		code, _, errs := run(t, "", "test", t.TempDir())
		if code != ExitUsage || !strings.Contains(errs, "no _test.rego files") {
			t.Errorf("exit %d\n%s", code, errs)
		}
	})
}

func TestPoliciesAndVersion(t *testing.T) {
	code, out, _ := run(t, "", "policies")
	if code != ExitOK || !strings.Contains(out, "pss-baseline-privileged") || !strings.Contains(out, "cis:5.2.2") {
		t.Errorf("exit %d\n%s", code, out)
	}
	code, out, _ = run(t, "", "version")
	if code != ExitOK || !strings.Contains(out, "policy library") {
		t.Errorf("exit %d\n%s", code, out)
	}
}

// check judges what the cluster would store: the hardening, resources and
// namespace labels admission injects are shown as mutations, not asked of
// the author; --no-mutate gives the manifests as written.
func TestCheckJudgesWhatTheClusterStores(t *testing.T) {
	demo := "../../../../test/demo/manifests/"
	web, ns := demo+"web.yaml", demo+"namespace.yaml"

	code, raw, errs := checkJSON(t, "", "--no-mutate", web)
	if code != ExitFindings || raw.Summary.ByAction.Enforce != 10 || len(raw.Mutations) != 0 {
		t.Fatalf("--no-mutate: exit %d, %d enforce, %d mutations; %s", code, raw.Summary.ByAction.Enforce, len(raw.Mutations), errs)
	}

	// Without the namespace only the labels it would supply are missing.
	code, r, _ := checkJSON(t, "", web)
	var policiesLeft []string
	for _, res := range r.Results {
		if res.Action != "audit" { // the audit's evidence, which passes
			policiesLeft = append(policiesLeft, res.Policy)
		}
	}
	if code != ExitFindings || len(policiesLeft) != 3 || slices.ContainsFunc(policiesLeft, func(p string) bool { return p != "ownership-labels" }) {
		t.Fatalf("exit %d, want 3 ownership-labels findings, got %v", code, policiesLeft)
	}
	if len(r.Mutations) != 1 || r.Mutations[0].Name != "web" || r.Mutations[0].Line != 2 {
		t.Fatalf("mutations: %+v", r.Mutations)
	}
	paths := map[string]any{}
	for _, op := range r.Mutations[0].Patch {
		if op.Op != "add" {
			t.Errorf("op %s %s: admission only adds", op.Op, op.Path)
		}
		paths[op.Path] = op.Value
	}
	for _, p := range []string{
		"/spec/template/spec/securityContext",
		"/spec/template/spec/containers/0/securityContext/capabilities",
		"/spec/template/spec/containers/0/resources",
	} {
		if _, ok := paths[p]; !ok {
			t.Errorf("no %s in the patch: %v", p, paths)
		}
	}

	// With its namespace the Deployment passes, and the text shows the
	// labels copied from it.
	code, out, _ := run(t, "", "check", ns, web)
	if code != ExitOK {
		t.Fatalf("with the namespace: exit %d\n%s", code, out)
	}
	for _, want := range []string{
		"admission would inject",
		`+ spec.template.spec.containers[0].securityContext.capabilities: {"drop":["ALL"]}`,
		`+ spec.template.metadata.labels.cost-center: "CC-1234"`,
		"2 objects checked in 2 files: 0 enforce",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// SARIF carries the patch in the run's properties.
	_, sarif, _ := run(t, "", "check", "--format", "sarif", web)
	var doc struct {
		Runs []struct {
			Properties struct {
				Mutations []output.Mutation `json:"mutations"`
			} `json:"properties"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(sarif), &doc); err != nil || len(doc.Runs) != 1 || len(doc.Runs[0].Properties.Mutations) != 1 {
		t.Errorf("sarif mutations: %v %+v", err, doc)
	}

	// The cost of what would run: the defaulted requests are charged.
	_, priced, _ := run(t, "", "cost", "estimate", "-f", "json", web)
	_, unpriced, _ := run(t, "", "cost", "estimate", "--no-mutate", "-f", "json", web)
	if !strings.Contains(priced, `"cpu": 0.2`) || strings.Contains(unpriced, `"cpu": 0.2`) {
		t.Errorf("cost estimate does not charge the defaulted requests:\n%s\n--no-mutate:\n%s", priced, unpriced)
	}
}
