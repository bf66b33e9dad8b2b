package compliance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tollgate-dev/tollgate/policies"
)

// evidenceFramework has a control of two policies, one of a policy family,
// one whose policy nothing examines, and a manual one.
var evidenceFramework = Framework{ID: "fw", Name: "FW", Controls: []Control{
	{ID: "net", Title: "Network policies", Policies: []string{"netpol-per-namespace", "rbac-admin"}},
	{ID: "img", Title: "Images", Policies: []string{"image-policy/*"}},
	{ID: "ghost", Title: "Nothing examined", Policies: []string{"default-namespace", "secrets-in-env"}},
	{ID: "org", Title: "A process", Manual: true, Reason: "a quarterly review by the platform team"},
}}

func control(t *testing.T, r *Report, id string) *ControlResult {
	t.Helper()
	for i := range r.Frameworks[0].Controls {
		if c := &r.Frameworks[0].Controls[i]; c.ID == id {
			return c
		}
	}
	t.Fatalf("no control %s", id)
	return nil
}

func ns(name string) Resource { return Resource{APIVersion: "v1", Kind: "Namespace", Name: name} }

// TestEvidenceAggregation: counts are summed over namespaces and
// policies, failures and waivers counted per policy, the kinds name each
// object once, and passed examples come sorted, without failed objects.
func TestEvidenceAggregation(t *testing.T) {
	crb := Resource{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding", Name: "ops-admin"}
	waiver := &policies.ExceptionRef{Namespace: "px", Name: "w", Approver: "ciso"}
	in := Input{
		Frameworks:    []Framework{evidenceFramework},
		EvidenceKnown: true,
		Examined: []Examined{
			{Policy: "netpol-per-namespace", Kind: "Namespace", Count: 14},
			{Policy: "rbac-admin", Kind: "rbac.authorization.k8s.io/ClusterRoleBinding", Count: 3},
			// The same policy and kind in two namespaces, and again in one
			// of them (two Reports): summed.
			{Policy: "image-policy/corp", Namespace: "shop", Kind: "apps/Deployment", Count: 5},
			{Policy: "image-policy/corp", Namespace: "pay", Kind: "apps/Deployment", Count: 2},
			{Policy: "image-policy/corp", Namespace: "pay", Kind: "apps/Deployment", Count: 1},
			{Policy: "image-policy/other", Namespace: "shop", Kind: "apps/Deployment", Count: 4},
			// Nonsense counts are no evidence.
			{Policy: "default-namespace", Kind: "Namespace", Count: -3},
			{Policy: "netpol-per-namespace", Kind: "Namespace", Count: 0},
			// A policy no control lists.
			{Policy: "unrelated", Kind: "Namespace", Count: 99},
		},
		Results: []Result{
			{Source: SourceTollgate, Policy: "netpol-per-namespace", Result: OutcomeFail, Resource: ns("shop")},
			{Source: SourceTollgate, Policy: "netpol-per-namespace", Result: OutcomeFail, Resource: ns("scratch")},
			{Source: SourceTollgate, Policy: "rbac-admin", Result: OutcomeSkip, Exception: waiver, Resource: crb},
			{Source: SourceTollgate, Policy: "image-policy/corp", Result: OutcomeWarn, Resource: Resource{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "pay", Name: "api"}},
			// Another engine's failure counts toward the control (it names
			// it) but not toward a policy of the control.
			{Source: "kyverno", Policy: "require-netpol", Result: OutcomeFail, Resource: ns("legacy"),
				Controls: []policies.Control{{Framework: "fw", ID: "net"}}},
		},
	}
	// Passes: twelve Namespaces (more than the examples hold), in no
	// order, one of them twice, and shop, which also failed.
	for _, n := range []string{"n09", "n03", "n11", "n01", "n05", "n12", "n02", "n07", "n10", "n04", "n08", "n06", "n03", "shop"} {
		in.Results = append(in.Results, Result{Source: SourceTollgate, Policy: "rbac-admin", Result: OutcomePass, Resource: ns(n)})
	}
	// Another engine's pass is no example of ours.
	in.Results = append(in.Results, Result{Source: "kyverno", Policy: "netpol-per-namespace", Result: OutcomePass, Resource: ns("aaa")})

	r := Build(in)
	net := control(t, r, "net")
	want := &Evidence{
		// 14 Namespaces and 3 bindings counted; the passes list 13
		// distinct Namespaces for rbac-admin (more than its count of
		// Namespaces: none), and its binding was waived.
		Examined: 14 + 3 + 13,
		ByKind:   []KindCount{{"Namespace", 14}, {"rbac.authorization.k8s.io/ClusterRoleBinding", 3}},
		Policies: []PolicyEvidence{
			{Policy: "netpol-per-namespace", Examined: 14, Failed: 2},
			{Policy: "rbac-admin", Examined: 16, Waived: 1},
		},
		Passed:     []Resource{ns("n01"), ns("n02"), ns("n03"), ns("n04"), ns("n05"), ns("n06"), ns("n07"), ns("n08"), ns("n09"), ns("n10")},
		PassedMore: 2,
		Failed:     3,
	}
	if diff := cmp.Diff(want, net.Evidence); diff != "" {
		t.Errorf("net evidence (-want +got):\n%s", diff)
	}
	if net.Verdict != VerdictFailed || net.Reason != "" {
		t.Errorf("net: %s %q", net.Verdict, net.Reason)
	}

	img := control(t, r, "img")
	want = &Evidence{
		Examined: 12,
		// In shop two policies examined 5 and 4 Deployments: at least 5
		// exist there; in pay 3.
		ByKind: []KindCount{{"apps/Deployment", 8}},
		Policies: []PolicyEvidence{
			{Policy: "image-policy/corp", Examined: 8, Failed: 1},
			{Policy: "image-policy/other", Examined: 4},
		},
		Passed: []Resource{},
		Failed: 1,
	}
	if diff := cmp.Diff(want, img.Evidence); diff != "" {
		t.Errorf("img evidence (-want +got):\n%s", diff)
	}

	ghost := control(t, r, "ghost")
	if ghost.Verdict != VerdictManual || ghost.Evidence != nil ||
		ghost.Reason != "Not evidenced here: no object of the kinds its policies judge (default-namespace, secrets-in-env) was examined in this scope, so it is reviewed by hand" {
		t.Errorf("ghost: %s %q %+v", ghost.Verdict, ghost.Reason, ghost.Evidence)
	}
	org := control(t, r, "org")
	if org.Verdict != VerdictManual || org.Evidence != nil || org.Reason != "a quarterly review by the platform team" {
		t.Errorf("org: %s %q %+v", org.Verdict, org.Reason, org.Evidence)
	}

	s := r.Frameworks[0].Summary
	if s.Automated != 2 || s.Manual != 2 || s.AutomatedShare == nil || *s.AutomatedShare != 0.5 || s.Score == nil || *s.Score != 0 {
		t.Errorf("summary %+v, share %v, score %v", s, s.AutomatedShare, s.Score)
	}
	for _, n := range r.Notes {
		if strings.Contains(n, "Evidence counts are unavailable") {
			t.Errorf("a note says evidence is unavailable although it is known: %q", n)
		}
	}
}

// TestEvidenceVerdicts: what was examined decides between PASSED and
// MANUAL only when the report knows it.
func TestEvidenceVerdicts(t *testing.T) {
	fw := Framework{ID: "fw", Name: "FW", Controls: []Control{{ID: "c", Title: "C", Policies: []string{"p"}}}}
	fail := Result{Source: SourceTollgate, Policy: "p", Result: OutcomeFail, Resource: ns("a")}
	waived := Result{Source: SourceTollgate, Policy: "p", Result: OutcomeSkip, Resource: ns("a"), Exception: &policies.ExceptionRef{Name: "x"}}
	pass := Result{Source: SourceTollgate, Policy: "p", Result: OutcomePass, Resource: ns("a")}
	other := Result{Source: SourceTollgate, Policy: "q", Result: OutcomePass, Resource: ns("a")}
	for _, tc := range []struct {
		name     string
		known    bool
		examined []Examined
		results  []Result
		want     Verdict
		evidence bool
		note     bool
	}{
		{"unknown, nothing: passed as before", false, nil, nil, VerdictPassed, false, true},
		{"unknown, failure: failed", false, nil, []Result{fail}, VerdictFailed, false, true},
		{"unknown, counts given: ignored", false, []Examined{{Policy: "p", Kind: "Namespace", Count: 3}}, nil, VerdictPassed, false, true},
		{"known, nothing examined: manual", true, nil, nil, VerdictManual, false, false},
		{"known, another policy examined: manual", true, []Examined{{Policy: "q", Kind: "Namespace", Count: 3}}, []Result{other}, VerdictManual, false, false},
		{"known, examined: passed", true, []Examined{{Policy: "p", Kind: "Namespace", Count: 3}}, nil, VerdictPassed, true, false},
		{"known, a pass listed but not counted: passed", true, nil, []Result{pass}, VerdictPassed, true, false},
		{"known, a failure not counted: failed", true, nil, []Result{fail}, VerdictFailed, true, false},
		{"known, a waiver not counted: passed with exceptions", true, nil, []Result{waived}, VerdictPassedWithExceptions, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Build(Input{Frameworks: []Framework{fw}, EvidenceKnown: tc.known, Examined: tc.examined, Results: tc.results})
			c := &r.Frameworks[0].Controls[0]
			if c.Verdict != tc.want || (c.Evidence != nil) != tc.evidence {
				t.Errorf("verdict %s, evidence %+v; want %s, evidence %v", c.Verdict, c.Evidence, tc.want, tc.evidence)
			}
			if tc.want == VerdictManual && !strings.HasPrefix(c.Reason, "Not evidenced here: ") {
				t.Errorf("reason %q", c.Reason)
			}
			noted := false
			for _, n := range r.Notes {
				noted = noted || n == evidenceUnavailableNote
			}
			if noted != tc.note {
				t.Errorf("note about unavailable evidence: %v, want %v (notes %q)", noted, tc.note, r.Notes)
			}
			automated := 1
			if tc.want == VerdictManual {
				automated = 0
			}
			if s := r.Frameworks[0].Summary; s.Automated != automated || *s.AutomatedShare != float64(automated) {
				t.Errorf("automated %d share %v", s.Automated, *s.AutomatedShare)
			}
		})
	}
	// The caller's notes are not changed by Build.
	notes := make([]string, 1, 4)
	notes[0] = "mine"
	Build(Input{Frameworks: []Framework{fw}, Notes: notes})
	if got := notes[:cap(notes)][1]; got != "" {
		t.Errorf("Build wrote into the caller's notes: %q", got)
	}
}

// TestExaminedAnnotationRoundTrip: what the audit writes on a Report reads
// back as the same counts, through an unstructured object as the API
// server returns it, and the report's results are read beside them.
func TestExaminedAnnotationRoundTrip(t *testing.T) {
	counts := map[string]map[string]int{
		"netpol-per-namespace":    {"Namespace": 14},
		"rbac-admin":              {"rbac.authorization.k8s.io/ClusterRoleBinding": 3, "rbac.authorization.k8s.io/RoleBinding": 0},
		"pss-baseline-privileged": {"apps/Deployment": 7, "Pod": 2},
	}
	value, err := ExaminedAnnotation(counts)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := ExaminedAnnotation(counts)
	if value != again || !strings.HasPrefix(value, `{"netpol-per-namespace":{"Namespace":14},"pss-baseline-privileged":{"Pod":2,"apps/Deployment":7}`) {
		t.Errorf("value is not sorted and stable: %s", value)
	}
	for _, report := range []struct{ kind, namespace string }{{"Report", "shop"}, {"ClusterReport", ""}} {
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "openreports.io/v1alpha1", "kind": report.kind, "source": SourceTollgate,
			"metadata": map[string]any{"name": "tollgate", "namespace": report.namespace, "annotations": map[string]any{AnnotationExamined: value}},
			"results":  ReportResults([]Result{{Source: SourceTollgate, Policy: "netpol-per-namespace", Result: OutcomeFail, Resource: ns("shop")}}),
		}}
		data, err := obj.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		back := &unstructured.Unstructured{}
		if err := back.UnmarshalJSON(data); err != nil {
			t.Fatal(err)
		}
		results, meta, err := FromReport(back.Object)
		if err != nil {
			t.Fatal(err)
		}
		want := []Examined{
			{Policy: "netpol-per-namespace", Namespace: report.namespace, Kind: "Namespace", Count: 14},
			{Policy: "pss-baseline-privileged", Namespace: report.namespace, Kind: "Pod", Count: 2},
			{Policy: "pss-baseline-privileged", Namespace: report.namespace, Kind: "apps/Deployment", Count: 7},
			{Policy: "rbac-admin", Namespace: report.namespace, Kind: "rbac.authorization.k8s.io/ClusterRoleBinding", Count: 3},
		}
		if diff := cmp.Diff(want, meta.Examined); diff != "" || !meta.ExaminedRecorded || len(results) != 1 {
			t.Errorf("%s: recorded %v, %d results, examined (-want +got):\n%s", report.kind, meta.ExaminedRecorded, len(results), diff)
		}
	}
	// A report without the annotation leaves the evidence unknown.
	_, meta, err := FromReport(map[string]any{"apiVersion": "openreports.io/v1alpha1", "kind": "Report", "metadata": map[string]any{"name": "old"}})
	if err != nil || meta.ExaminedRecorded || meta.Examined != nil {
		t.Errorf("no annotation: %+v %v", meta, err)
	}
	if got := ExaminedKind("apps/v1", "Deployment") + " " + ExaminedKind("v1", "Namespace") + " " + ExaminedKind("", "Pod"); got != "apps/Deployment Namespace Pod" {
		t.Errorf("ExaminedKind: %s", got)
	}
}

// TestExaminedAnnotationBadInput: a malformed annotation is an error that
// names the report and the annotation; the report's results are still
// read, and its evidence is left out.
func TestExaminedAnnotationBadInput(t *testing.T) {
	many := map[string]any{}
	for i := range 200 {
		kinds := map[string]any{}
		for j := range 100 {
			kinds[fmt.Sprintf("k%d", j)] = 1
		}
		many[fmt.Sprintf("p%d", i)] = kinds
	}
	manyJSON, err := json.Marshal(many)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		value any
		want  string
	}{
		{"malformed JSON", `{"p": {"Namespace": 3}`, "want JSON"},
		{"not an object", `[1, 2]`, "want JSON"},
		{"null", `null`, "got null"},
		{"trailing data", `{"p": {"Namespace": 3}} {}`, "found more"},
		{"20,000 entries", string(manyJSON), "more than 10000 policy and kind pairs"},
		{"negative count", `{"p": {"Namespace": -1}}`, `policy "p", kind "Namespace": negative count -1`},
		{"fractional count", `{"p": {"Namespace": 1.5}}`, "1.5 is not an integer"},
		{"huge count", `{"p": {"Namespace": 1e30}}`, "1e30 is not an integer"},
		{"count over the bound", `{"p": {"Namespace": 4294967296}}`, "is over"},
		{"a count as a string", `{"p": {"Namespace": "3"}}`, `policy "p", kind "Namespace": want a count, got a string`},
		{"a list of counts", `{"p": {"Namespace": [3]}}`, "got a list"},
		{"kinds not an object", `{"p": 3}`, "want JSON"},
		{"empty policy", `{"": {"Namespace": 3}}`, "empty policy id"},
		{"empty kind", `{"p": {"": 3}}`, "empty kind"},
		{"1 MiB value", `{"p": {"Namespace": 1}, "x": {"` + strings.Repeat("a", 1<<20) + `": 1}}`, "over the 262144 byte limit"},
		{"not a string", map[string]any{"p": 1}, "want a string, got an object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj := map[string]any{
				"apiVersion": "openreports.io/v1alpha1", "kind": "Report", "source": SourceTollgate,
				"metadata": map[string]any{"name": "tollgate", "namespace": "shop", "annotations": map[string]any{AnnotationExamined: tc.value}},
				"results": []any{map[string]any{"policy": "p", "result": "fail",
					"resources": []any{map[string]any{"kind": "Namespace", "name": "shop"}}}},
			}
			results, meta, err := FromReport(obj)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrExaminedAnnotation) {
				t.Errorf("error does not wrap ErrExaminedAnnotation: %v", err)
			}
			msg := err.Error()
			for _, w := range []string{"Report shop/tollgate", AnnotationExamined, tc.want} {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q: %s", w, msg)
				}
			}
			if len(msg) > 2000 {
				t.Errorf("error of %d bytes repeats the input", len(msg))
			}
			if meta.ExaminedRecorded || meta.Examined != nil {
				t.Errorf("evidence kept from a bad annotation: %+v", meta.Examined)
			}
			if len(results) != 1 || results[0].Policy != "p" {
				t.Errorf("results not read: %+v", results)
			}
		})
	}

	// The writer refuses what the reader would.
	huge := map[string]map[string]int{}
	for i := range 200 {
		huge[fmt.Sprintf("p%d", i)] = map[string]int{}
		for j := range 100 {
			huge[fmt.Sprintf("p%d", i)][fmt.Sprintf("k%d", j)] = 1
		}
	}
	long := map[string]map[string]int{"p": {strings.Repeat("k", 300<<10): 1}}
	for name, counts := range map[string]map[string]map[string]int{
		"20,000 entries": huge, "negative": {"p": {"Namespace": -1}}, "empty kind": {"p": {"": 1}},
		"empty policy": {"": {"Namespace": 1}}, "over the byte limit": long,
	} {
		if v, err := ExaminedAnnotation(counts); err == nil {
			t.Errorf("%s: written (%d bytes)", name, len(v))
		}
	}
}

// TestEvidenceRendering: the Markdown and HTML renderings show what was
// examined, the passed examples, the manual reasons and the automated
// share, with names from the cluster escaped.
func TestEvidenceRendering(t *testing.T) {
	evil := `<b>x</b>|*_`
	in := Input{
		Frameworks:    []Framework{evidenceFramework},
		EvidenceKnown: true,
		Examined: []Examined{
			{Policy: "netpol-per-namespace", Kind: "Namespace", Count: 14},
			{Policy: "netpol-per-namespace", Kind: "Namespace", Namespace: "ignored-ns", Count: 0},
			{Policy: "rbac-admin", Kind: "rbac.authorization.k8s.io/ClusterRoleBinding", Count: 3},
			{Policy: "rbac-admin", Kind: "ClusterRoleBinding", Count: 1},
			{Policy: "image-policy/corp", Namespace: "shop", Kind: "apps/Deployment", Count: 1},
		},
		Results: []Result{
			{Source: SourceTollgate, Policy: "netpol-per-namespace", Result: OutcomeFail, Resource: ns("scratch"), Message: "no NetworkPolicy"},
			{Source: SourceTollgate, Policy: "netpol-per-namespace", Result: OutcomeFail, Resource: ns("tmp"), Message: "no NetworkPolicy"},
			{Source: SourceTollgate, Policy: "netpol-per-namespace", Result: OutcomePass, Resource: ns("shop")},
			{Source: SourceTollgate, Policy: "netpol-per-namespace", Result: OutcomePass, Resource: ns("payments")},
			{Source: SourceTollgate, Policy: "netpol-per-namespace", Result: OutcomePass, Resource: ns(evil)},
			{Source: SourceTollgate, Policy: "image-policy/corp", Result: OutcomePass, Resource: Resource{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "api"}},
		},
	}
	r := Build(in)
	var md, html bytes.Buffer
	if err := Write(&md, FormatMarkdown, r); err != nil {
		t.Fatal(err)
	}
	if err := Write(&html, FormatHTML, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| FW |  | 4 | 1 | 0 | 1 | 2 | 50.0 % | 2 of 4 (50.0 %) |",
		"Score 50.0 % · 2 of 4 controls automated (50.0 %).",
		// Two kinds named ClusterRoleBinding keep their groups apart.
		"- **net** FAILED — Examined: 1 ClusterRoleBinding, 14 Namespaces, 3 rbac.authorization.k8s.io/ClusterRoleBindings (policies: `netpol-per-namespace` 14 examined, 2 failed; `rbac-admin` 4 examined, 0 failed). Passed, for example: Namespace &lt;b&gt;x&lt;/b&gt;\\|\\*\\_, Namespace payments, Namespace shop.",
		"- **img** PASSED — Examined: 1 Deployment (policies: `image-policy/corp` 1 examined, 0 failed). Passed, for example: Deployment shop/api.",
		"- **ghost** MANUAL — Not evidenced here: no object of the kinds its policies judge (default-namespace, secrets-in-env) was examined in this scope, so it is reviewed by hand",
		"- **org** MANUAL — Reviewed by hand: a quarterly review by the platform team",
		"Examined: 1 ClusterRoleBinding, 14 Namespaces, 3 rbac.authorization.k8s.io/ClusterRoleBindings (policies: `netpol-per-namespace` 14 examined, 2 failed;",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("Markdown lacks %q", want)
		}
	}
	for _, want := range []string{
		`<td class="num">2 of 4 (50.0 %)</td>`,
		`2 of 4 controls automated (50.0 %)`,
		`Examined: 1 ClusterRoleBinding, 14 Namespaces, 3 rbac.authorization.k8s.io/ClusterRoleBindings (policies: netpol-per-namespace 14 examined, 2 failed; rbac-admin 4 examined, 0 failed).<br>Passed, for example: Namespace &lt;b&gt;x&lt;/b&gt;|*_, Namespace payments, Namespace shop.`,
		`Not evidenced here: no object of the kinds its policies judge (default-namespace, secrets-in-env) was examined in this scope, so it is reviewed by hand`,
		`Reviewed by hand: a quarterly review by the platform team`,
	} {
		if !strings.Contains(html.String(), want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if strings.Contains(html.String(), "<b>x</b>") {
		t.Error("a name from the cluster was rendered as HTML markup")
	}
	// The same input renders the same bytes.
	var again bytes.Buffer
	if err := Write(&again, FormatMarkdown, Build(in)); err != nil || again.String() != md.String() {
		t.Error("the Markdown rendering is not deterministic")
	}
}

// TestKindText: kinds read as English plurals.
func TestKindText(t *testing.T) {
	for kind, want := range map[string]string{
		"Namespace": "2 Namespaces", "networking.k8s.io/NetworkPolicy": "2 NetworkPolicies", "networking.k8s.io/Ingress": "2 Ingresses",
		"tollgate.dev/ClusterFacts": "2 ClusterFacts", "Endpoints": "2 Endpoints", "apps/Deployment": "2 Deployments", "Gateway": "2 Gateways",
	} {
		if got := kindText(KindCount{Kind: kind, Count: 2}, true); got != want {
			t.Errorf("%s: %q, want %q", kind, got, want)
		}
	}
	if got := kindText(KindCount{Kind: "Namespace", Count: 1}, true); got != "1 Namespace" {
		t.Errorf("one: %q", got)
	}
}

// TestExaminedCounts: the counter callers fill while judging objects.
func TestExaminedCounts(t *testing.T) {
	c := ExaminedCounts{}
	c.Add("shop", "p", ExaminedKind("apps/v1", "Deployment"))
	c.Add("shop", "p", ExaminedKind("apps/v1", "Deployment"))
	c.Add("", "q", ExaminedKind("v1", "Namespace"))
	c.Add("shop", "q", ExaminedKind("v1", "Pod"))
	want := []Examined{
		{Policy: "q", Kind: "Namespace", Count: 1},
		{Policy: "p", Namespace: "shop", Kind: "apps/Deployment", Count: 2},
		{Policy: "q", Namespace: "shop", Kind: "Pod", Count: 1},
	}
	if diff := cmp.Diff(want, c.Examined()); diff != "" {
		t.Errorf("examined (-want +got):\n%s", diff)
	}
	v, err := ExaminedAnnotation(c["shop"])
	if err != nil || v != `{"p":{"apps/Deployment":2},"q":{"Pod":1}}` {
		t.Errorf("annotation %s %v", v, err)
	}
}
