package chart

import (
	"bufio"
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/library"
)

// The releases the tests render: the defaults; every optional part on
// (cert-manager, CRDs off, monitoring, a Warn rollout limited to labelled
// namespaces, custom exclusions); every optional part off.
var (
	defaultRelease = release{name: "tollgate", namespace: "tollgate-system"}
	fullRelease    = release{name: "tg", namespace: "platform-tollgate", values: []string{"full.yaml"}}
	offRelease     = release{name: "lean", namespace: "tollgate-lean", values: []string{"off.yaml"}}
)

var releases = map[string]release{"default": defaultRelease, "full": fullRelease, "off": offRelease}

// TestLint runs helm lint --strict with each set of values.
func TestLint(t *testing.T) {
	for _, caseName := range slices.Sorted(maps.Keys(releases)) {
		r := releases[caseName]
		t.Run(caseName, func(t *testing.T) {
			args := []string{"lint", "--strict", chartDir(t), "--namespace", r.namespace}
			for _, v := range r.values {
				args = append(args, "--values", filepath.Join(repoRoot(t), "test", "chart", "testdata", "values", v))
			}
			out, _, err := helm(t, args...)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if !strings.Contains(out, "1 chart(s) linted, 0 chart(s) failed") {
				t.Fatalf("helm lint:\n%s", out)
			}
		})
	}
}

// TestTemplateGolden compares helm template's output with
// testdata/golden/<case>.yaml (-update rewrites them). The CRDs are left
// out of the golden files: TestRenderedCRDs checks them against the
// generated ones.
func TestTemplateGolden(t *testing.T) {
	for _, caseName := range slices.Sorted(maps.Keys(releases)) {
		r := releases[caseName]
		t.Run(caseName, func(t *testing.T) {
			got := withoutCRDs(render(t, r))
			path := filepath.Join(repoRoot(t), "test", "chart", "testdata", "golden", caseName+".yaml")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./test/chart -update)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("helm template %s differs from %s (-want +got); if the change is intended, go test ./test/chart -update:\n%s", caseName, path, diff)
			}
		})
	}
}

// withoutCRDs drops the documents rendered from templates/crds.
func withoutCRDs(stream string) string {
	var b strings.Builder
	for doc := range strings.SplitSeq(stream, "\n---\n") {
		if strings.Contains(doc, "# Source: tollgate/templates/crds/") {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\n---\n")
		}
		b.WriteString(strings.TrimPrefix(doc, "---\n"))
	}
	s := b.String()
	if !strings.HasPrefix(s, "---\n") {
		s = "---\n" + s
	}
	return s
}

// TestRenderedCRDs: with crds.enabled the chart renders exactly the CRDs
// make generate wrote (plus the release's labels and the keep policy);
// without it, none; with gatekeeper.installCRDs=false, all but Gatekeeper's
// ConstraintTemplate.
func TestRenderedCRDs(t *testing.T) {
	want := crdObjects(t)
	var have []string
	for _, o := range objects(t, render(t, defaultRelease)) {
		if kind(o) != "CustomResourceDefinition" {
			continue
		}
		have = append(have, name(o))
		md := o["metadata"].(map[string]any)
		if got := dig(md, "annotations", "helm.sh/resource-policy"); got != "keep" {
			t.Errorf("CRD %s: helm.sh/resource-policy is %v, want keep", name(o), got)
		}
		if got := dig(md, "labels", "app.kubernetes.io/instance"); got != defaultRelease.name {
			t.Errorf("CRD %s: instance label %v", name(o), got)
		}
		delete(md, "labels")
		delete(md["annotations"].(map[string]any), "helm.sh/resource-policy")
		if diff := cmp.Diff(want[name(o)], o); diff != "" {
			t.Errorf("CRD %s differs from charts/tollgate/crds (-generated +rendered):\n%s", name(o), diff)
		}
	}
	if diff := cmp.Diff(slices.Sorted(maps.Keys(want)), slices.Sorted(slices.Values(have))); diff != "" {
		t.Errorf("rendered CRDs (-generated +rendered):\n%s", diff)
	}
	for _, o := range objects(t, render(t, fullRelease)) {
		if kind(o) == "CustomResourceDefinition" {
			t.Errorf("crds.enabled=false still renders CRD %s", name(o))
		}
	}
	// Beside Gatekeeper (gatekeeper.installCRDs=false): Tollgate's own
	// CRDs, not Gatekeeper's ConstraintTemplate.
	have = nil
	for _, o := range objects(t, render(t, offRelease)) {
		if kind(o) == "CustomResourceDefinition" {
			have = append(have, name(o))
		}
	}
	wantOwn := slices.DeleteFunc(slices.Sorted(maps.Keys(want)), func(n string) bool { return n == "constrainttemplates.templates.gatekeeper.sh" })
	if diff := cmp.Diff(wantOwn, slices.Sorted(slices.Values(have))); diff != "" {
		t.Errorf("CRDs rendered with gatekeeper.installCRDs=false (-want +rendered):\n%s", diff)
	}
	// Without Kyverno (kyverno.installCRDs=true): Kyverno's CRDs of the
	// kinds Tollgate loads as well.
	have = nil
	for _, o := range objects(t, render(t, release{name: "ky", namespace: "tollgate", values: []string{"kyverno-crds.yaml"}})) {
		if kind(o) == "CustomResourceDefinition" && strings.Contains(name(o), "kyverno.io") {
			have = append(have, name(o))
		}
	}
	wantKyverno := []string{"clusterpolicies.kyverno.io", "mutatingpolicies.policies.kyverno.io", "policies.kyverno.io",
		"policyexceptions.kyverno.io", "policyexceptions.policies.kyverno.io", "validatingpolicies.policies.kyverno.io"}
	if diff := cmp.Diff(wantKyverno, slices.Sorted(slices.Values(have))); diff != "" {
		t.Errorf("Kyverno CRDs rendered with kyverno.installCRDs=true (-want +rendered):\n%s", diff)
	}
}

// TestLibraryPolicyList keeps files/library-policies.txt, the ids
// rollout.mode sets to warn or audit, equal to the built-in library's: an
// id the library lacks would stop the server (a misspelled policy id in the
// config is an error), and a missing one would stay in enforce.
func TestLibraryPolicyList(t *testing.T) {
	want := libraryPolicyIDs(t)

	path := filepath.Join(chartDir(t), "files", "library-policies.txt")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var have []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			have = append(have, line)
		}
	}
	if diff := cmp.Diff(want, have); diff != "" {
		t.Errorf("%s differs from the library's policy ids, each followed by \" audit\" when it audits by default (-library +file):\n%s", path, diff)
	}
}

// libraryPolicyIDs are the built-in library's policy ids, sorted, each
// followed by " audit" when the policy audits by default.
func libraryPolicyIDs(t *testing.T) []string {
	t.Helper()
	mods, err := policies.ReadFS(library.FS(), "library", false)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := policies.New(context.Background(), policies.Options{Modules: mods})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range eng.Policies() {
		if m.Action == policies.ActionAudit {
			ids = append(ids, m.ID+" audit")
		} else {
			ids = append(ids, m.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// TestRolloutModes: warn and audit turn every library policy to that
// action, keep an action the config sets, and open the validating webhook;
// enforce leaves the config alone and fails closed.
func TestRolloutModes(t *testing.T) {
	for _, tc := range []struct {
		mode, failurePolicy string
	}{
		{"enforce", "Fail"},
		{"warn", "Ignore"},
		{"audit", "Ignore"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			out, _, err := helm(t, "template", "tollgate", chartDir(t), "--namespace", "tollgate-system",
				"--set", "rollout.mode="+tc.mode, "--set", "config.policies.images-no-latest.action=enforce")
			if err != nil {
				t.Fatal(err)
			}
			objs := objects(t, out)
			vwc := find(t, objs, "ValidatingWebhookConfiguration", "tollgate")
			if got := dig(vwc, "webhooks", 0, "failurePolicy"); got != tc.failurePolicy {
				t.Errorf("validating failurePolicy %v, want %s", got, tc.failurePolicy)
			}
			cm := find(t, objs, "ConfigMap", "tollgate")
			cfg, err := policies.ParseConfig([]byte(dig(cm, "data", "config.yaml").(string)))
			if err != nil {
				t.Fatalf("the rendered config does not parse: %v", err)
			}
			for id, o := range cfg.Policies {
				want := tc.mode
				if tc.mode == "enforce" || id == "images-no-latest" {
					want = "enforce"
					if tc.mode == "enforce" && id != "images-no-latest" {
						t.Errorf("enforce mode sets policy %s", id)
					}
				}
				if string(o.Action) != want {
					t.Errorf("policy %s: action %q, want %q", id, o.Action, want)
				}
			}
			audits := 0 // policies that audit by default: never raised to warn
			for _, id := range libraryPolicyIDs(t) {
				if strings.HasSuffix(id, " audit") {
					audits++
					if _, ok := cfg.Policies[strings.TrimSuffix(id, " audit")]; ok {
						t.Errorf("rollout mode %s sets %s, which audits by default", tc.mode, id)
					}
				}
			}
			if n := len(libraryPolicyIDs(t)) - audits; tc.mode != "enforce" && len(cfg.Policies) != n {
				t.Errorf("%d policies in the config, want the library's %d that do not audit by default", len(cfg.Policies), n)
			}
		})
	}
}

// TestDashboardJSON: the dashboard is JSON with a panel per query, and
// every query parses as PromQL (TestPrometheusRules feeds them to promtool).
func TestDashboardJSON(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(chartDir(t), "files", "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	if dash.UID == "" {
		t.Error("dashboard.json has no uid")
	}
	exprs := dashboardExprs(t)
	if len(exprs) < 20 {
		t.Errorf("only %d queries in the dashboard", len(exprs))
	}
	for _, p := range dash.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
	}
}

// TestImageScanning: scanning on passes its flags and mounts Trivy's cache
// volume; off (the default), neither appears.
func TestImageScanning(t *testing.T) {
	full := find(t, objects(t, render(t, fullRelease)), "Deployment", "gate")
	c := dig(full, "spec", "template", "spec", "containers", 0).(map[string]any)
	args := map[string]bool{}
	for _, a := range c["args"].([]any) {
		args[a.(string)] = true
	}
	for _, want := range []string{"--scan-images", "--trivy=/usr/local/bin/trivy", "--trivy-cache-dir=/var/cache/tollgate/trivy",
		"--trivy-server=http://trivy.security.svc:4954", "--scan-concurrency=4", "--db-max-age=48h", "--scan-retention=168h"} {
		if !args[want] {
			t.Errorf("full release: no %s in %v", want, c["args"])
		}
	}
	if !strings.Contains(toYAML(t, full), "mountPath: /var/cache/tollgate/trivy") || !strings.Contains(toYAML(t, full), "sizeLimit: 2Gi") {
		t.Errorf("full release: no trivy-cache volume mounted at /var/cache/tollgate/trivy:\n%s", toYAML(t, full))
	}
	if np := toYAML(t, find(t, objects(t, render(t, fullRelease)), "NetworkPolicy", "gate")); !strings.Contains(np, "port: 4954") {
		t.Errorf("full release: no egress to the trivy server's port 4954:\n%s", np)
	}
	def := toYAML(t, find(t, objects(t, render(t, defaultRelease)), "Deployment", "tollgate"))
	if strings.Contains(def, "scan-images") || strings.Contains(def, "trivy") {
		t.Errorf("default release mentions scanning:\n%s", def)
	}
}
