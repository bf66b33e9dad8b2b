package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/ast"
	corev1 "k8s.io/api/core/v1"
)

func TestParseEngines(t *testing.T) {
	cases := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{in: "kyverno,tollgate", want: []string{"tollgate", "kyverno"}},
		{in: " gatekeeper , none ,gatekeeper", want: []string{"none", "gatekeeper"}},
		{in: "kyverno,opa", wantErr: `unknown engine "opa"`},
		{in: "", wantErr: "want at least one engine"},
		{in: "tollgate,", wantErr: `unknown engine ""`},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseEngines(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseEngines(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("parseEngines(%q) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestRunRejectsBadPeersFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-peers", "-repeat", "0"}, "-repeat 0: want 1 to 20"},
		{[]string{"-peers", "-flood"}, "-peers and -flood: choose one"},
		{[]string{"-peers", "-engines", "kyverno,istio"}, `unknown engine "istio"`},
		{[]string{"-peers", "-peers-bin", ""}, "-peers-bin: want the directory"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(t.Context(), append([]string{"bench"}, tc.args...), &stdout, &stderr); code != 2 {
				t.Fatalf("exit %d, want 2; stderr:\n%s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.want)
			}
		})
	}
}

// readDocs reads a policy file of test/bench/peers.
func readDocs(t *testing.T, rel string) []yamlDoc {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("peers", rel))
	if err != nil {
		t.Fatal(err)
	}
	docs, err := splitDocs(data)
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return docs
}

// TestGatekeeperPolicySet checks the templates and constraints fit
// together: one constraint per template, named after one of pssCheckIDs,
// every Rego module parses as Rego v1 and defines violation.
func TestGatekeeperPolicySet(t *testing.T) {
	templates := readDocs(t, "gatekeeper/templates.yaml")
	constraints := readDocs(t, "gatekeeper/constraints.yaml")
	kinds := map[string]string{} // constraint kind → template
	for _, d := range templates {
		if d.Kind != "ConstraintTemplate" || d.APIVersion != "templates.gatekeeper.sh/v1" {
			t.Fatalf("%s: %s %s, want a templates.gatekeeper.sh/v1 ConstraintTemplate", d.Metadata.Name, d.APIVersion, d.Kind)
		}
		kind := dig[string](d.Spec, "crd", "spec", "names", "kind")
		if strings.ToLower(kind) != d.Metadata.Name {
			t.Errorf("template %s: constraint kind %q must be its name in CamelCase", d.Metadata.Name, kind)
		}
		kinds[kind] = d.Metadata.Name
		targets := dig[[]any](d.Spec, "targets")
		if len(targets) != 1 {
			t.Fatalf("template %s: %d targets, want 1", d.Metadata.Name, len(targets))
		}
		code := dig[[]any](targets[0].(map[string]any), "code")
		if len(code) != 1 {
			t.Fatalf("template %s: %d code entries, want 1", d.Metadata.Name, len(code))
		}
		src := code[0].(map[string]any)
		rego := dig[string](src, "source", "rego")
		if v := dig[string](src, "source", "version"); v != "v1" {
			t.Errorf("template %s: Rego version %q, want v1", d.Metadata.Name, v)
		}
		mod, err := ast.ParseModuleWithOpts(d.Metadata.Name+".rego", rego, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Errorf("template %s: %v", d.Metadata.Name, err)
			continue
		}
		if got := mod.Package.Path.String(); got != "data."+d.Metadata.Name {
			t.Errorf("template %s: package %s, want its name", d.Metadata.Name, got)
		}
		if !slices.ContainsFunc(mod.Rules, func(r *ast.Rule) bool {
			return r.Head.Name.String() == "violation" || r.Head.Ref().String() == "violation"
		}) {
			t.Errorf("template %s: no violation rule", d.Metadata.Name)
		}
	}
	var names []string
	for _, d := range constraints {
		if _, ok := kinds[d.Kind]; !ok {
			t.Errorf("constraint %s: kind %s has no template", d.Metadata.Name, d.Kind)
		}
		delete(kinds, d.Kind)
		if a := dig[string](d.Spec, "enforcementAction"); a != "deny" {
			t.Errorf("constraint %s: enforcementAction %q, want deny", d.Metadata.Name, a)
		}
		names = append(names, d.Metadata.Name)
	}
	for kind, tmpl := range kinds {
		t.Errorf("template %s: no constraint of kind %s", tmpl, kind)
	}
	slices.Sort(names)
	if diff := cmp.Diff(pssCheckIDs, names); diff != "" {
		t.Errorf("constraint names are not the PSS check ids (-want +got):\n%s", diff)
	}
}

// TestKyvernoPolicySet checks every ValidatingPolicy is one of
// pssCheckIDs, denies, matches Pod creates and has validations.
func TestKyvernoPolicySet(t *testing.T) {
	var names []string
	for _, d := range readDocs(t, "kyverno/policies.yaml") {
		if d.Kind != "ValidatingPolicy" || d.APIVersion != "policies.kyverno.io/v1" {
			t.Fatalf("%s: %s %s, want a policies.kyverno.io/v1 ValidatingPolicy", d.Metadata.Name, d.APIVersion, d.Kind)
		}
		names = append(names, d.Metadata.Name)
		if got := dig[[]any](d.Spec, "validationActions"); len(got) != 1 || got[0] != "Deny" {
			t.Errorf("%s: validationActions %v, want [Deny]", d.Metadata.Name, got)
		}
		if dig[bool](d.Spec, "evaluation", "background", "enabled") {
			t.Errorf("%s: background evaluation is on", d.Metadata.Name)
		}
		rules := dig[[]any](d.Spec, "matchConstraints", "resourceRules")
		if len(rules) != 1 || !slices.Contains(dig[[]any](rules[0].(map[string]any), "resources"), any("pods")) {
			t.Errorf("%s: resourceRules %v, want pods", d.Metadata.Name, rules)
		}
		for i, v := range dig[[]any](d.Spec, "validations") {
			m := v.(map[string]any)
			if dig[string](m, "expression") == "" || dig[string](m, "message") == "" {
				t.Errorf("%s: validations[%d] lacks an expression or a message", d.Metadata.Name, i)
			}
		}
		if len(dig[[]any](d.Spec, "validations")) == 0 {
			t.Errorf("%s: no validations", d.Metadata.Name)
		}
	}
	slices.Sort(names)
	if diff := cmp.Diff(pssCheckIDs, names); diff != "" {
		t.Errorf("policy names are not the PSS check ids (-want +got):\n%s", diff)
	}
}

// dig follows keys through nested maps; the zero value when a step is
// missing or of another type.
func dig[T any](m map[string]any, keys ...string) T {
	var zero T
	var cur any = m
	for _, k := range keys {
		mm, ok := cur.(map[string]any)
		if !ok {
			return zero
		}
		cur = mm[k]
	}
	v, _ := cur.(T)
	return v
}

func TestSplitDocsNamesTheBadDocument(t *testing.T) {
	_, err := splitDocs([]byte("kind: A\n---\nkind: [unclosed\n"))
	if err == nil || !strings.Contains(err.Error(), "document 2") {
		t.Fatalf("err = %v, want one naming document 2", err)
	}
	docs, err := splitDocs([]byte("# comment only\n---\nkind: A\nmetadata: {name: a}\n---\n"))
	if err != nil || len(docs) != 1 || docs[0].Metadata.Name != "a" {
		t.Fatalf("docs = %+v, %v; want the one document a", docs, err)
	}
}

func TestPSSOnlyConfig(t *testing.T) {
	cfg, on := pssOnlyConfig([]string{"images-no-latest", "pss-baseline-privileged", "ownership-labels", "pss-restricted-seccomp"})
	want := `apiVersion: tollgate.dev/v1alpha1
kind: Config
policies:
  images-no-latest:
    action: disabled
  ownership-labels:
    action: disabled
mutations:
  ownership:
    enabled: false
  securityContext:
    enabled: false
  resources:
    enabled: false
`
	if diff := cmp.Diff(want, string(cfg)); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if on != 2 {
		t.Errorf("%d policies on, want 2", on)
	}
}

func TestAsAPIServerSends(t *testing.T) {
	p := peerPod("shop", "web")
	if added := asAPIServerSends(p); len(added) != 3 {
		t.Errorf("added %q, want the service account, its token volume and tolerations", added)
	}
	if added := asAPIServerSends(p); len(added) != 0 {
		t.Errorf("a second pass added %q, want nothing", added)
	}
	if p.Spec.ServiceAccountName != "default" {
		t.Errorf("serviceAccountName %q, want default", p.Spec.ServiceAccountName)
	}
	var tokens int
	for _, v := range p.Spec.Volumes {
		if v.Projected != nil && strings.HasPrefix(v.Name, "kube-api-access-") {
			tokens++
		}
	}
	if tokens != 1 {
		t.Errorf("%d projected token volumes, want 1", tokens)
	}
	mounts := 0
	for _, m := range p.Spec.Containers[0].VolumeMounts {
		if m.MountPath == "/var/run/secrets/kubernetes.io/serviceaccount" {
			mounts++
		}
	}
	if mounts != 1 {
		t.Errorf("%d token mounts, want 1", mounts)
	}
	if len(p.Spec.Tolerations) != 2 || p.Spec.Tolerations[0].Effect != corev1.TaintEffectNoExecute {
		t.Errorf("tolerations %+v, want not-ready and unreachable for 300s", p.Spec.Tolerations)
	}
	if len(p.Spec.Containers) != 1 || len(p.Spec.InitContainers) != 0 {
		t.Errorf("%d containers and %d init containers, want a single container", len(p.Spec.Containers), len(p.Spec.InitContainers))
	}
}

func TestPeerReport(t *testing.T) {
	// engineCores 0 stands for no engine process: no CPU figure.
	api := func(pods, engineCores, apiCores float64) phaseResult {
		ph := phaseResult{Target: "apiserver", Concurrency: 16, Requests: int(pods * 10), ElapsedSeconds: 10, PerSecond: pods,
			CPUCores: map[string]float64{"kube-apiserver": apiCores}}
		if engineCores > 0 {
			ph.CPUCores[engineCPUKey] = engineCores
		}
		return ph
	}
	direct := func(c int, perSecond, p99 float64) phaseResult {
		return phaseResult{Target: "direct", Concurrency: c, PerSecond: perSecond, LatencyMs: latencyMs{P50: p99 / 2, P99: p99}, ServerHWMBytes: 100 << 20, ServerAnonBytes: 40 << 20,
			CPUCores: map[string]float64{"other": 0.5}}
	}
	res := &peerResults{PhaseDuration: "10s", Repeat: 2, CPUs: 2, Engines: []engineResult{
		{Key: engineNone, Name: engineTitles[engineNone], Phases: []phaseResult{api(1000, 0, 1), api(900, 0, 1)}},
		{Key: engineTollgate, Name: engineTitles[engineTollgate], Policies: 26, Phases: []phaseResult{
			direct(1, 900, 1), direct(16, 1500, 20), direct(16, 1600, 30), api(400, 0.8, 1.2), api(420, 0.8, 1.2),
		}},
		{Key: engineKyverno, Name: engineTitles[engineKyverno], Policies: 18, Phases: []phaseResult{
			direct(1, 600, 2), direct(16, 900, 40), direct(16, 1000, 50), api(300, 0.9, 1.2), api(320, 0.9, 1.2),
		}},
		{Key: engineGatekeeper, Name: engineTitles[engineGatekeeper], Skipped: "its policies do not work"},
	}}
	for i := range res.Engines {
		res.Engines[i].summarise()
	}
	res.compare()
	if len(res.Ratios) != 1 {
		t.Fatalf("%d ratios, want Tollgate full ÷ Kyverno only: %+v", len(res.Ratios), res.Ratios)
	}
	var out bytes.Buffer
	res.print(&out)
	for _, want := range []string{
		"| no webhook | – | – | 1000 / 900 | – | 1.00 ms / 1.11 ms | – | – | 0.00 cores |",
		// 410 of 950 pods/s; 0.8 cores × 10 s ÷ 4000 pods = 2 ms.
		"| Tollgate, full library + mutation | 26 | 1500 / 1600 | 400 / 420 (43 %) | 2.00 ms / 1.90 ms | 3.00 ms / 2.86 ms | 100 MiB | 40 MiB | 0.50 cores |",
		// 1550 ÷ 950 direct, 410 ÷ 310 pods, 1.95 ÷ 2.90 ms.
		"| *Tollgate full ÷ Kyverno* | | 1.63× | 1.32× | 0.67× | 0.76× | 1.00× | 1.00× | |",
		"| Tollgate, full library + mutation | 0.50ms / 1.00ms | – | 12.5ms / 25.0ms | – |",
		"| *p99 Tollgate full ÷ Kyverno* | 0.50× | – | 0.56× | – |",
		"| Gatekeeper, PSS ConstraintTemplates (Rego) | not measured (see below) | | | | | | | |",
		"Gatekeeper, PSS ConstraintTemplates (Rego) was not measured: its policies do not work",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks\n%s\n---\n%s", want, out.String())
		}
	}
	if got := res.skipped(); !slices.Equal(got, []string{engineGatekeeper}) {
		t.Errorf("skipped %v, want gatekeeper", got)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %g, want %g", tc.in, got, tc.want)
		}
	}
}
