package review_test

import (
	"context"
	"errors"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/review"
)

var update = flag.Bool("update", false, "rewrite docs/subresources.md's table")

const tableDoc = "../../docs/subresources.md"

// renderTable is the Markdown table of review.Subresources.
func renderTable() string {
	var b strings.Builder
	b.WriteString("| Subresource | Judged | Why |\n|---|---|---|\n")
	for _, s := range review.Subresources {
		res := s.Resource
		if s.Group != "" {
			res = s.Group + "/" + res
		}
		judged := "no"
		if s.Judged {
			judged = "yes: " + "`" + s.Changes + "`"
			if s.Mutated {
				judged += ", mutated too"
			}
		}
		b.WriteString("| `" + res + "/" + s.Name + "` | " + strings.ReplaceAll(judged, "|", `\|`) + " | " + s.Reason + " |\n")
	}
	return b.String()
}

// The table in docs/subresources.md is the one the webhook follows.
func TestSubresourceTable(t *testing.T) {
	doc, err := os.ReadFile(tableDoc)
	if err != nil {
		t.Fatal(err)
	}
	begin, end := "<!-- table: ", "<!-- end table -->"
	i, j := strings.Index(string(doc), begin), strings.Index(string(doc), end)
	if i < 0 || j < i {
		t.Fatalf("%s: no table markers", tableDoc)
	}
	i += strings.Index(string(doc[i:]), "\n") + 1
	want := renderTable()
	if *update {
		out := string(doc[:i]) + want + string(doc[j:])
		if err := os.WriteFile(tableDoc, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if diff := cmp.Diff(want, string(doc[i:j])); diff != "" {
		t.Errorf("%s differs from review.Subresources (-want +have); run go test ./policies/review -run TestSubresourceTable -update:\n%s", tableDoc, diff)
	}
	seen := map[string]bool{}
	for _, s := range review.Subresources {
		k := s.Group + "/" + s.Resource + "/" + s.Name
		if seen[k] {
			t.Errorf("%s is listed twice", k)
		}
		seen[k] = true
		if s.Reason == "" {
			t.Errorf("%s has no reason", k)
		}
		if s.Judged != review.JudgedSubresource(s.Group, s.Resource, s.Name) {
			t.Errorf("%s: judged %v in the table, %v by JudgedSubresource", k, s.Judged, !s.Judged)
		}
	}
	// Every governed resource's subresources that can change it are listed.
	for _, k := range []string{"/pods/resize", "/pods/ephemeralcontainers", "apps/deployments/scale", "apps/replicasets/scale",
		"apps/statefulsets/scale", "/replicationcontrollers/scale", "/persistentvolumeclaims/status", "/pods/binding", "/pods/eviction"} {
		if !seen[k] {
			t.Errorf("%s is missing from the table", k)
		}
	}
}

// parents serves one Deployment, or fails.
type parents struct {
	obj map[string]any
	err error
}

func (p parents) Parent(context.Context, *policies.Input) (map[string]any, error) {
	return p.obj, p.err
}

func scaleInput(newReplicas, oldReplicas string) *policies.Input {
	decode := func(s string) map[string]any {
		if s == "" {
			return nil
		}
		m, err := policies.DecodeJSON([]byte(s))
		if err != nil {
			panic(err)
		}
		return m
	}
	in := &policies.Input{
		Kind:      policies.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "Scale"},
		Operation: "UPDATE", SubResource: "scale", Source: policies.SourceAdmission,
		Resource: policies.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"},
		Object:   decode(newReplicas),
	}
	in.OldObject = decode(oldReplicas)
	return in
}

// A scale is judged as the workload at its new size: the gates see the
// Deployment before and after, and only findings on spec.replicas (and
// the gates' own) count. A Scale that cannot be read, or a parent that
// cannot, gives a warning that says why.
func TestScaleIsJudgedAsItsWorkload(t *testing.T) {
	dep, err := policies.DecodeJSON([]byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"api","namespace":"shop"},
	 "spec":{"replicas":1,"template":{"spec":{"containers":[{"name":"c","image":"nginx"}]}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	var seen []*policies.Input
	gate := review.EvaluatorFunc(func(_ context.Context, in *policies.Input) *policies.Decision {
		seen = append(seen, in)
		return &policies.Decision{Findings: []policies.Finding{
			{Policy: "budget/shop/cap", Message: "over", Action: policies.ActionEnforce},
			{Policy: "replicas-max", Message: "too many", Action: policies.ActionEnforce, Path: "spec.replicas"},
			{Policy: "old-news", Message: "judged at create", Action: policies.ActionEnforce, Path: "spec.template.spec.containers[0].image"},
		}}
	})
	set := review.NewSet(engine(t), nil, 1)
	core := review.New(review.Options{Gates: []review.Evaluator{gate}, Parents: parents{obj: dep}})
	v := core.Review(context.Background(), set, scaleInput(
		`{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"api","namespace":"shop"},"spec":{"replicas":5}}`,
		`{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"api","namespace":"shop"},"spec":{"replicas":1}}`))
	if diff := cmp.Diff([]string{"[budget/shop/cap] over", "[replicas-max] spec.replicas: too many"}, v.Denials); diff != "" {
		t.Errorf("denials (-want +got):\n%s", diff)
	}
	if len(seen) != 1 {
		t.Fatalf("the gate saw %d inputs", len(seen))
	}
	in := seen[0]
	if in.Kind.Kind != "Deployment" || in.Operation != "UPDATE" || in.SubResource != "scale" {
		t.Errorf("judged as %+v %s %s", in.Kind, in.Operation, in.SubResource)
	}
	replicas := func(obj map[string]any) string {
		spec, _ := obj["spec"].(map[string]any)
		return policies.FormatPath([]any{spec["replicas"]})
	}
	if replicas(in.OldObject) != replicas(dep) || !strings.Contains(replicas(in.Object), "5") {
		t.Errorf("replicas old %s new %s", replicas(in.OldObject), replicas(in.Object))
	}
	if spec := dep["spec"].(map[string]any); !strings.Contains(policies.FormatPath([]any{spec["replicas"]}), "1") {
		t.Errorf("the parent read was changed: %v", spec["replicas"])
	}

	for _, tc := range []struct {
		name    string
		parents review.Parents
		scale   string
		want    string
	}{
		{"no reader", nil, `{"spec":{"replicas":2}}`, "no reader of deployments"},
		{"parent unreadable", parents{err: errors.New("deployments.apps \"api\" not found")}, `{"spec":{"replicas":2}}`, `not found`},
		{"no spec", parents{obj: dep}, `{"kind":"Scale"}`, "the Scale object has no spec"},
		{"replicas not a number", parents{obj: dep}, `{"spec":{"replicas":[1]}}`, "the Scale object's spec.replicas is []interface {}, want an integer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := review.New(review.Options{Gates: []review.Evaluator{gate}, Parents: tc.parents})
			v := c.Review(context.Background(), set, scaleInput(tc.scale, ""))
			if !v.Allowed() || len(v.Warnings) != 1 || !strings.Contains(v.Warnings[0], tc.want) ||
				!strings.HasPrefix(v.Warnings[0], "[subresource] this scale request could not be judged: ") {
				t.Errorf("allowed %v, warnings %q; want one naming %q", v.Allowed(), v.Warnings, tc.want)
			}
		})
	}
}

// A resize is judged as the resized pod, on its resources only.
func TestResizeIsJudgedOnResources(t *testing.T) {
	gate := review.EvaluatorFunc(func(_ context.Context, in *policies.Input) *policies.Decision {
		return &policies.Decision{Findings: []policies.Finding{
			{Policy: "cap", Message: "12 CPU", Action: policies.ActionEnforce, Path: "spec.containers[0].resources.requests.cpu"},
			{Policy: "pod-cap", Message: "pod total", Action: policies.ActionEnforce, Path: "spec.containers"},
			{Policy: "sidecar-cap", Message: "sidecar", Action: policies.ActionEnforce, Path: "spec.initContainers[1].resources.limits.memory"},
			{Policy: "labels", Message: "no team", Action: policies.ActionEnforce, Path: "metadata.labels"},
			{Policy: "image", Message: "latest", Action: policies.ActionEnforce, Path: "spec.containers[0].image"},
		}}
	})
	set := review.NewSet(engine(t), nil, 1)
	in := policies.ObjectInput(policies.SourceAdmission, pod(nil), nil)
	in.Operation, in.SubResource = "UPDATE", "resize"
	in.Resource = policies.GroupVersionResource{Version: "v1", Resource: "pods"}
	v := review.New(review.Options{Gates: []review.Evaluator{gate}}).Review(context.Background(), set, in)
	want := []string{"[cap] spec.containers[0].resources.requests.cpu: 12 CPU", "[pod-cap] spec.containers: pod total",
		"[sidecar-cap] spec.initContainers[1].resources.limits.memory: sidecar"}
	if diff := cmp.Diff(want, v.Denials); diff != "" {
		t.Errorf("denials (-want +got):\n%s", diff)
	}
	// A subresource that is not judged keeps nothing.
	in.SubResource = "status"
	if v := review.New(review.Options{Gates: []review.Evaluator{gate}}).Review(context.Background(), set, in); !v.Allowed() {
		t.Errorf("pods/status: %v", v.Denials)
	}
}
