package gatekeeper_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	templatesv1 "github.com/open-policy-agent/frameworks/constraint/pkg/apis/templates/v1"
	"github.com/open-policy-agent/frameworks/constraint/pkg/client/crds"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/target"
	apiextensionsinstall "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/install"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tollgate-dev/tollgate/policies/gatekeeper"
)

// TestConstraintCRDs: each loaded template has the CRD Gatekeeper would
// create for its kind — the framework's crds.CreateCRD converted to v1
// through a scheme as Gatekeeper's controller does — and a template that
// did not load has none.
func TestConstraintCRDs(t *testing.T) {
	ctx := context.Background()
	objs := load(t, "testdata/policies/requiredlabels.yaml", "testdata/policies/replicas.yaml")
	broken := templateObject("tgbroken", "TgBroken", "package tgbroken\nviolation[{\"msg\": msg}] {")
	e, err := gatekeeper.Compile(ctx, append(objs, gatekeeper.Object{Source: "broken", Object: broken}), gatekeeper.Options{})
	if err == nil {
		t.Fatal("the broken template loaded")
	}
	got, err := e.ConstraintCRDs()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, crd := range got {
		names = append(names, crd.Name)
	}
	if diff := cmp.Diff([]string{"tgreplicalimit.constraints.gatekeeper.sh", "tgrequiredlabels.constraints.gatekeeper.sh"}, names); diff != "" {
		t.Fatalf("CRD names (-want +got):\n%s", diff)
	}

	// What Gatekeeper's controller does with the same template.
	scheme := runtime.NewScheme()
	apiextensionsinstall.Install(scheme)
	versioned := &templatesv1.ConstraintTemplate{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(objs[0].Object, versioned); err != nil {
		t.Fatal(err)
	}
	tmpl, err := versioned.ToVersionless()
	if err != nil {
		t.Fatal(err)
	}
	internal, err := crds.CreateCRD(tmpl, crds.CreateSchema(tmpl, &target.K8sValidationTarget{}))
	if err != nil {
		t.Fatal(err)
	}
	want := &apiextensionsv1.CustomResourceDefinition{}
	if err := scheme.Convert(internal, want, nil); err != nil {
		t.Fatal(err)
	}
	scheme.Default(want)
	want.APIVersion, want.Kind = "apiextensions.k8s.io/v1", "CustomResourceDefinition"
	if diff := cmp.Diff(want, got[1]); diff != "" {
		t.Errorf("the CRD of TgRequiredLabels differs from Gatekeeper's (-gatekeeper +tollgate):\n%s", diff)
	}
	if got[1].Labels["gatekeeper.sh/constraint"] != "yes" {
		t.Errorf("labels %v lack gatekeeper.sh/constraint", got[1].Labels)
	}
	params := got[1].Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["parameters"]
	if _, ok := params.Properties["labels"]; !ok {
		t.Errorf("spec.parameters of the CRD lacks the template's labels parameter: %+v", params)
	}
}

// templateObject is a Rego template of kind with one target.
func templateObject(name, kind, rego string) map[string]any {
	return map[string]any{
		"apiVersion": "templates.gatekeeper.sh/v1",
		"kind":       "ConstraintTemplate",
		"metadata":   map[string]any{"name": name},
		"spec": map[string]any{
			"crd":     map[string]any{"spec": map[string]any{"names": map[string]any{"kind": kind}}},
			"targets": []any{map[string]any{"target": "admission.k8s.gatekeeper.sh", "rego": rego}},
		},
	}
}
