package gatekeeper_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/policies/gatekeeper"
)

// loadErrors unwraps the errors.Join of *LoadError Compile returns.
func loadErrors(t *testing.T, err error) []*gatekeeper.LoadError {
	t.Helper()
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) {
		t.Fatalf("Compile error %v is not joined", err)
	}
	var out []*gatekeeper.LoadError
	for _, e := range joined.Unwrap() {
		var le *gatekeeper.LoadError
		if !errors.As(e, &le) {
			t.Fatalf("%v is not a *LoadError", e)
		}
		out = append(out, le)
	}
	return out
}

func TestCompileErrors(t *testing.T) {
	hugeRego := "package tghuge\n\n" + strings.Repeat("# padding padding padding padding padding padding padding padding\n", 30000) +
		"violation[{\"msg\": \"x\"}] { true }\n"
	extra := []gatekeeper.Object{
		{Source: "inline:nil", Object: nil},
		{Source: "inline:huge", Object: map[string]any{
			"apiVersion": "templates.gatekeeper.sh/v1",
			"kind":       "ConstraintTemplate",
			"metadata":   map[string]any{"name": "tghuge"},
			"spec": map[string]any{
				"crd":     map[string]any{"spec": map[string]any{"names": map[string]any{"kind": "TgHuge"}}},
				"targets": []any{map[string]any{"target": "admission.k8s.gatekeeper.sh", "rego": hugeRego}},
			},
		}},
		{Source: "inline:huge-constraint", Object: map[string]any{
			"apiVersion": "constraints.gatekeeper.sh/v1beta1",
			"kind":       "TgHuge",
			"metadata":   map[string]any{"name": "huge"},
		}},
		// Neither a template nor a constraint: ignored.
		{Source: "inline:pod", Object: object("v1", "Pod", "web")},
	}
	objs := append(load(t, "testdata/policies", "testdata/bad"), extra...)
	e, err := gatekeeper.Compile(context.Background(), objs, gatekeeper.Options{})
	if e == nil {
		t.Fatal("Compile returned a nil Evaluator")
	}

	type want struct{ Source, Field, Msg string }
	wants := []want{
		{"inline:nil", "", "not an object"},
		{"testdata/bad/templates.yaml:2", "spec.targets[0].rego", "line 4: rego_type_error: undefined function no_such_function"},
		{"testdata/bad/templates.yaml:20", "spec.targets[0].libs[0]", "line 5: rego_parse_error: unexpected } token"},
		{"testdata/bad/templates.yaml:47", "spec.targets[0].code[0].source.variables[0].expression", "undeclared reference to 'no_such_variable'"},
		{"testdata/bad/templates.yaml:47", "spec.targets[0].code[0].source.validations[0].expression", "found no matching overload for '_+_' applied to '(int, string)'"},
		{"testdata/bad/templates.yaml:47", "spec.targets[0].code[0].source.validations[1].messageExpression", "must evaluate to string but got int"},
		{"testdata/bad/templates.yaml:69", "metadata.name", `"wrong-name" must be the lowercase of spec.crd.spec.names.kind "TgWrongName"`},
		{"testdata/bad/templates.yaml:84", "spec.targets[0].target", `"mutation.k8s.gatekeeper.sh": want admission.k8s.gatekeeper.sh`},
		{"testdata/bad/templates.yaml:99", "spec", "want an object, found string"},
		{"testdata/bad/templates.yaml:105", "apiVersion", `"templates.gatekeeper.sh/v2": want templates.gatekeeper.sh/v1, v1beta1 or v1alpha1`},
		{"testdata/bad/templates.yaml:111", "spec.crd.spec.validation.openAPIV3Schema.properties[size].type", `Unsupported value: "bignum"`},
		{"testdata/bad/templates.yaml:133", "spec.crd.spec.names.kind", "kind TgRequiredLabels is already defined by testdata/policies/requiredlabels.yaml:1"},
		{"testdata/bad/templates.yaml:148", `metadata.annotations["tollgate.dev/severity"]`, `unknown severity "dire"`},
		{"inline:huge", "", "more than the 1572864 a cluster stores"},
		{"testdata/bad/constraints.yaml:2", "kind", "no ConstraintTemplate defines kind TgNobodyDefinesThis"},
		{"testdata/bad/constraints.yaml:7", "kind", "the ConstraintTemplate defining TgBadCEL did not load (testdata/bad/templates.yaml:47)"},
		{"testdata/bad/constraints.yaml:12", "spec.parameters.labels", "spec.parameters.labels in body must be of type array"},
		{"testdata/bad/constraints.yaml:20", "spec.parameters.colour", "unknown field"},
		{"testdata/bad/constraints.yaml:29", "spec.enforcementAction", `"block" is not within the supported list`},
		{"testdata/bad/constraints.yaml:38", "spec.scopedEnforcementActions", "scopedEnforcementActions is required"},
		{"testdata/bad/constraints.yaml:47", "spec.match.labelSelector", `"Near": not a valid selector operator`},
		{"testdata/bad/constraints.yaml:61", "metadata.name", "TgRequiredLabels/team-label is already defined by testdata/policies/requiredlabels.yaml:38"},
		{"testdata/bad/constraints.yaml:69", `metadata.annotations["tollgate.dev/controls"]`, `"just-words": want framework:id`},
		{"testdata/bad/constraints.yaml:79", "metadata.name", "required"},
		{"inline:huge-constraint", "kind", "the ConstraintTemplate defining TgHuge did not load (inline:huge)"},
	}
	got := loadErrors(t, err)
	var gotKeys, wantKeys []want
	for _, le := range got {
		gotKeys = append(gotKeys, want{le.Source, le.Field, ""})
	}
	for _, w := range wants {
		wantKeys = append(wantKeys, want{w.Source, w.Field, ""})
	}
	if diff := cmp.Diff(wantKeys, gotKeys); diff != "" {
		t.Fatalf("load errors by source and field (-want +got):\n%s", diff)
	}
	for i, w := range wants {
		t.Run(w.Source+" "+w.Field, func(t *testing.T) {
			le := got[i]
			if !strings.Contains(le.Err.Error(), w.Msg) {
				t.Errorf("error %q does not say %q", le.Err, w.Msg)
			}
			if want := w.Source + ": "; !strings.HasPrefix(le.Error(), want) {
				t.Errorf("Error() = %q, want it to start with %q", le.Error(), want)
			}
			if w.Field != "" && !strings.Contains(le.Error(), ": "+w.Field+": ") {
				t.Errorf("Error() = %q does not name the field %s", le.Error(), w.Field)
			}
		})
	}

	// Every good template and constraint still loaded, and judges.
	if n := len(e.Policies()); n != 8 {
		t.Errorf("%d constraints loaded, want the 8 good ones", n)
	}
	d := e.Evaluate(context.Background(), checked(object("v1", "Pod", "web", in("staging"), images("registry.internal.example/w")), namespace("staging")))
	if diff := cmp.Diff([]finding{teamMissing()}, findings(d)); diff != "" {
		t.Errorf("findings after a partly failed load (-want +got):\n%s", diff)
	}
}

func TestCompileEmpty(t *testing.T) {
	e, err := gatekeeper.Compile(context.Background(), nil, gatekeeper.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := e.Evaluate(context.Background(), checked(object("v1", "Pod", "web"), nil))
	if len(d.Findings) != 0 || len(d.Errors) != 0 || d.Applied != 0 {
		t.Errorf("an empty Evaluator decided %+v", d)
	}
	if len(e.Policies()) != 0 || len(e.Kinds()) != 0 {
		t.Errorf("an empty Evaluator lists %v and %v", e.Policies(), e.Kinds())
	}
}

func TestCompileOptions(t *testing.T) {
	e, err := gatekeeper.Compile(context.Background(), load(t, "testdata/echo"), gatekeeper.Options{PolicyTimeout: -1})
	if err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("Compile with a negative timeout: %v", err)
	}
	if e == nil {
		t.Fatal("Compile returned a nil Evaluator")
	}
}
