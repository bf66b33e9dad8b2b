package loader_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/gatekeeper"
	"github.com/tollgate-dev/tollgate/policies/loader"
	"github.com/tollgate-dev/tollgate/policies/review"
)

const labelsRego = `package teamrequiredlabels

violation[{"msg": msg}] {
  label := input.parameters.labels[_]
  not input.review.object.metadata.labels[label]
  msg := sprintf("label %v is missing", [label])
}
`

// template is a ConstraintTemplate of kind with rego and a labels
// parameter.
func template(name, kind, rego string, generation int64) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "templates.gatekeeper.sh/v1",
		"kind":       "ConstraintTemplate",
		"metadata":   map[string]any{"name": name, "uid": "uid-" + name, "generation": generation},
		"spec": map[string]any{
			"crd": map[string]any{"spec": map[string]any{
				"names": map[string]any{"kind": kind},
				"validation": map[string]any{"openAPIV3Schema": map[string]any{
					"type":       "object",
					"properties": map[string]any{"labels": map[string]any{"type": "array", "items": map[string]any{"type": "string"}}},
				}},
			}},
			"targets": []any{map[string]any{"target": "admission.k8s.gatekeeper.sh", "rego": rego}},
		},
	}}
	return u
}

// constraint is a constraint of kind on Services requiring labels.
func constraint(kind, name, action string, labels ...string) *unstructured.Unstructured {
	ls := make([]any, len(labels))
	for i, l := range labels {
		ls[i] = l
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "constraints.gatekeeper.sh/v1beta1",
		"kind":       kind,
		"metadata":   map[string]any{"name": name, "uid": "uid-" + name, "generation": int64(1)},
		"spec": map[string]any{
			"enforcementAction": action,
			"match":             map[string]any{"kinds": []any{map[string]any{"apiGroups": []any{""}, "kinds": []any{"Service"}}}},
			"parameters":        map[string]any{"labels": ls},
		},
	}}
}

// cluster is a fake API server serving templates, constraints of kinds
// and CRDs.
func cluster(t *testing.T, kinds []string, objs ...client.Object) client.WithWatch {
	return clusterWith(t, kinds, interceptor.Funcs{}, objs...)
}

func clusterWith(t *testing.T, kinds []string, funcs interceptor.Funcs, objs ...client.Object) client.WithWatch {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(schema.GroupVersionKind{Group: "templates.gatekeeper.sh", Version: "v1", Kind: "ConstraintTemplate"}, meta.RESTScopeRoot)
	mapper.Add(apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition"), meta.RESTScopeRoot)
	for _, k := range kinds {
		mapper.Add(schema.GroupVersionKind{Group: "constraints.gatekeeper.sh", Version: "v1beta1", Kind: k}, meta.RESTScopeRoot)
	}
	return fake.NewClientBuilder().WithScheme(scheme).WithRESTMapper(mapper).WithObjects(objs...).WithInterceptorFuncs(funcs).Build()
}

func format(t *testing.T, opts loader.GatekeeperOptions) *loader.GatekeeperFormat {
	t.Helper()
	f, err := loader.NewGatekeeperFormat(opts)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func ids(p review.Plugin) []string {
	var out []string
	for _, m := range p.Evaluator.(*gatekeeper.Evaluator).Policies() {
		out = append(out, m.ID)
	}
	return out
}

// problems maps each problem to "kind name: message".
func problems(ps []loader.Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Object.GetObjectKind().GroupVersionKind().Kind+" "+p.Object.GetName()+": "+p.Message)
	}
	return out
}

func service(labels map[string]any) *policies.Input {
	obj := map[string]any{"apiVersion": "v1", "kind": "Service", "metadata": map[string]any{"name": "web", "namespace": "shop", "labels": labels}}
	return policies.ObjectInput(policies.SourceAudit, obj, map[string]any{"metadata": map[string]any{"name": "shop"}})
}

func messages(p review.Plugin, in *policies.Input) []string {
	var out []string
	for _, f := range p.Evaluator.Evaluate(context.Background(), in).Findings {
		out = append(out, f.Policy+": "+f.Message)
	}
	return out
}

// TestGatekeeperFormatLoads: templates and constraints load from the
// cluster; what does not load is a problem of its own object, naming the
// field, while the rest load; an unchanged cluster is not compiled again;
// a new version that does not load leaves the last good one in force.
func TestGatekeeperFormatLoads(t *testing.T) {
	ctx := context.Background()
	good := template("teamrequiredlabels", "TeamRequiredLabels", labelsRego, 1)
	c := cluster(t, []string{"TeamRequiredLabels", "TeamBroken"},
		good,
		template("teambroken", "TeamBroken", "package teambroken\n\nviolation[{\"msg\": msg}] {\n  msg := \n}\n", 1),
		constraint("TeamRequiredLabels", "services-need-alert-channel", "deny", "alert-channel"),
		constraint("TeamBroken", "never", "deny"),
	)
	f := format(t, loader.GatekeeperOptions{})
	p, probs := f.Load(ctx, c)
	if diff := cmp.Diff([]string{"TeamRequiredLabels/services-need-alert-channel"}, ids(p)); diff != "" {
		t.Errorf("constraints in force (-want +got):\n%s", diff)
	}
	got := problems(probs)
	if len(got) != 2 || !strings.HasPrefix(got[0], "ConstraintTemplate teambroken: spec.targets[0].rego: ") ||
		got[1] != "TeamBroken never: kind: the ConstraintTemplate defining TeamBroken did not load (ConstraintTemplate teambroken)" {
		t.Errorf("problems:\n%s", strings.Join(got, "\n"))
	}
	if diff := cmp.Diff([]string{"TeamRequiredLabels/services-need-alert-channel: label alert-channel is missing"}, messages(p, service(nil))); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}

	// Nothing changed but the status: the same evaluator.
	obj := good.DeepCopy()
	if err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		t.Fatal(err)
	}
	obj.Object["status"] = map[string]any{"created": true}
	if err := c.Update(ctx, obj); err != nil {
		t.Fatal(err)
	}
	again, _ := f.Load(ctx, c)
	if again.Evaluator != p.Evaluator {
		t.Error("an unchanged cluster was compiled again")
	}

	// Generation 2 of the good template does not compile: generation 1
	// stays in force and says so.
	broken := template("teamrequiredlabels", "TeamRequiredLabels", strings.Replace(labelsRego, "not input", "not input[", 1), 2)
	broken.SetResourceVersion(obj.GetResourceVersion())
	if err := c.Update(ctx, broken); err != nil {
		t.Fatal(err)
	}
	p, probs = f.Load(ctx, c)
	if diff := cmp.Diff([]string{"TeamRequiredLabels/services-need-alert-channel"}, ids(p)); diff != "" {
		t.Errorf("constraints in force after a broken update (-want +got):\n%s", diff)
	}
	if len(messages(p, service(nil))) != 1 {
		t.Errorf("the last good template does not judge: %v", messages(p, service(nil)))
	}
	got = problems(probs)
	if len(got) != 3 || !strings.HasPrefix(got[1], "ConstraintTemplate teamrequiredlabels: generation 2 does not load; generation 1 stays in force: spec.targets[0].rego: ") {
		t.Errorf("problems after a broken update:\n%s", strings.Join(got, "\n"))
	}

	// A constraint whose parameters break the schema, new: not loaded.
	// The same constraint changed: its last good version stays.
	bad := constraint("TeamRequiredLabels", "numbers", "deny")
	bad.Object["spec"].(map[string]any)["parameters"] = map[string]any{"labels": []any{int64(7)}}
	if err := c.Create(ctx, bad); err != nil {
		t.Fatal(err)
	}
	p, probs = f.Load(ctx, c)
	if !strings.Contains(strings.Join(problems(probs), "\n"), "TeamRequiredLabels numbers: spec.parameters.labels[0]: Invalid value") {
		t.Errorf("the bad constraint is not reported with its field:\n%s", strings.Join(problems(probs), "\n"))
	}
	if diff := cmp.Diff([]string{"TeamRequiredLabels/services-need-alert-channel"}, ids(p)); diff != "" {
		t.Errorf("constraints in force (-want +got):\n%s", diff)
	}
}

// TestGatekeeperFormatConstraintCRDs: the leader creates the CRD of each
// loaded template's kind, labelled as Tollgate's, updates the ones it
// created, never touches another's (Gatekeeper's), and reports a CRD it
// cannot write on its template.
func TestGatekeeperFormatConstraintCRDs(t *testing.T) {
	ctx := context.Background()
	foreign := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "teamforeign.constraints.gatekeeper.sh", Labels: map[string]string{"gatekeeper.sh/constraint": "yes"}},
		Spec:       apiextensionsv1.CustomResourceDefinitionSpec{Group: "constraints.gatekeeper.sh", Names: apiextensionsv1.CustomResourceDefinitionNames{Kind: "TeamForeign"}},
	}
	stale := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "teamstale.constraints.gatekeeper.sh", Labels: map[string]string{"app.kubernetes.io/managed-by": "tollgate"}},
		Spec:       apiextensionsv1.CustomResourceDefinitionSpec{Group: "constraints.gatekeeper.sh", Names: apiextensionsv1.CustomResourceDefinitionNames{Kind: "TeamStale"}},
	}
	adopted := stale.DeepCopy()
	adopted.Name, adopted.Spec.Names.Kind = "teamadopted.constraints.gatekeeper.sh", "TeamAdopted"
	controller := true
	adopted.OwnerReferences = []metav1.OwnerReference{{APIVersion: "templates.gatekeeper.sh/v1", Kind: "ConstraintTemplate", Name: "teamadopted", UID: types.UID("gk"), Controller: &controller}}
	kinds := []string{"TeamRequiredLabels", "TeamForeign", "TeamStale", "TeamAdopted", "TeamDenied"}
	c := clusterWith(t, kinds, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if obj.GetName() == "teamdenied.constraints.gatekeeper.sh" {
				return errors.New("forbidden")
			}
			return c.Create(ctx, obj, opts...)
		},
	},
		template("teamrequiredlabels", "TeamRequiredLabels", labelsRego, 1),
		template("teamforeign", "TeamForeign", strings.ReplaceAll(labelsRego, "teamrequiredlabels", "teamforeign"), 1),
		template("teamstale", "TeamStale", strings.ReplaceAll(labelsRego, "teamrequiredlabels", "teamstale"), 1),
		template("teamadopted", "TeamAdopted", strings.ReplaceAll(labelsRego, "teamrequiredlabels", "teamadopted"), 1),
		template("teamdenied", "TeamDenied", strings.ReplaceAll(labelsRego, "teamrequiredlabels", "teamdenied"), 1),
		foreign, stale, adopted,
	)
	// Beside Gatekeeper (--gatekeeper-crds=false): no CRD is written.
	if _, probs := format(t, loader.GatekeeperOptions{CRDs: c}).Load(ctx, c); len(probs) != 0 {
		t.Fatalf("problems: %v", problems(probs))
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := c.Get(ctx, client.ObjectKey{Name: "teamrequiredlabels.constraints.gatekeeper.sh"}, crd); err == nil {
		t.Fatal("a CRD was created with CreateConstraintCRDs off")
	}
	leader := false
	f := format(t, loader.GatekeeperOptions{CreateConstraintCRDs: true, CRDs: c, Leader: func() bool { return leader }})
	if _, probs := f.Load(ctx, c); len(probs) != 0 {
		t.Fatalf("problems: %v", problems(probs))
	}
	if err := c.Get(ctx, client.ObjectKey{Name: "teamrequiredlabels.constraints.gatekeeper.sh"}, crd); err == nil {
		t.Fatal("a replica that is not the leader created a CRD")
	}

	leader = true
	_, probs := f.Load(ctx, c)
	if diff := cmp.Diff([]string{"ConstraintTemplate teamdenied: writing CustomResourceDefinition teamdenied.constraints.gatekeeper.sh: forbidden"}, problems(probs)); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	if err := c.Get(ctx, client.ObjectKey{Name: "teamrequiredlabels.constraints.gatekeeper.sh"}, crd); err != nil {
		t.Fatal(err)
	}
	if crd.Labels["app.kubernetes.io/managed-by"] != "tollgate" || crd.Labels["gatekeeper.sh/constraint"] != "yes" {
		t.Errorf("labels of the created CRD: %v", crd.Labels)
	}
	if crd.Spec.Names.Kind != "TeamRequiredLabels" || len(crd.Spec.Versions) != 2 || crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["parameters"].Properties["labels"].Type != "array" {
		t.Errorf("the created CRD lacks the kind, versions or parameter schema: %+v", crd.Spec)
	}
	for _, tc := range []struct {
		name    string
		want    *apiextensionsv1.CustomResourceDefinition
		changed bool
	}{
		{"Gatekeeper's, not labelled", foreign, false},
		{"labelled but owned by its template", adopted, false},
		{"Tollgate's, out of date", stale, true},
	} {
		got := &apiextensionsv1.CustomResourceDefinition{}
		if err := c.Get(ctx, client.ObjectKey{Name: tc.want.Name}, got); err != nil {
			t.Fatal(err)
		}
		if changed := len(got.Spec.Versions) > 0; changed != tc.changed {
			t.Errorf("%s: changed %v, want %v", tc.name, changed, tc.changed)
		}
	}
}

// TestGatekeeperFormatCRDGone: a constraint kind whose CRD was deleted
// (while the API server's mapping of it is still cached) has no
// constraints; its template loads and its CRD is created again.
func TestGatekeeperFormatCRDGone(t *testing.T) {
	ctx := context.Background()
	c := clusterWith(t, []string{"TeamRequiredLabels"}, interceptor.Funcs{
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			if list.GetObjectKind().GroupVersionKind().Kind == "TeamRequiredLabelsList" {
				return apierrors.NewNotFound(schema.GroupResource{Group: "constraints.gatekeeper.sh", Resource: "teamrequiredlabels"}, "")
			}
			return c.List(ctx, list, opts...)
		},
	}, template("teamrequiredlabels", "TeamRequiredLabels", labelsRego, 1))
	f := format(t, loader.GatekeeperOptions{CreateConstraintCRDs: true, CRDs: c})
	if _, probs := f.Load(ctx, c); len(probs) != 0 {
		t.Fatalf("problems: %v", problems(probs))
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := c.Get(ctx, client.ObjectKey{Name: "teamrequiredlabels.constraints.gatekeeper.sh"}, crd); err != nil {
		t.Fatalf("the CRD was not created again: %v", err)
	}
}
