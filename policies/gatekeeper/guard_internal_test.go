package gatekeeper

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	constraintclient "github.com/open-policy-agent/frameworks/constraint/pkg/client"
	"github.com/open-policy-agent/frameworks/constraint/pkg/client/drivers"
	"github.com/open-policy-agent/frameworks/constraint/pkg/client/drivers/rego"
	"github.com/open-policy-agent/frameworks/constraint/pkg/client/reviews"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/target"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/util"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tollgate-dev/tollgate/policies"
)

// faultyDriver is the Rego driver, except that a query that includes the
// constraint named "boom" panics and one that includes "broken" fails.
type faultyDriver struct {
	drivers.Driver
}

func (f faultyDriver) Query(ctx context.Context, target string, cs []*unstructured.Unstructured, review any, opts ...reviews.ReviewOpt) (*drivers.QueryResponse, error) {
	names := make([]string, 0, len(cs))
	for _, c := range cs {
		names = append(names, c.GetName())
	}
	if slices.Contains(names, "boom") {
		panic("index out of range [3] with length 3")
	}
	if slices.Contains(names, "broken") {
		return nil, errors.New("storage unavailable")
	}
	return f.Driver.Query(ctx, target, cs, review, opts...)
}

// TestGuard checks that a driver that panics or fails for one constraint
// costs only that constraint: the others of the same query still report.
func TestGuard(t *testing.T) {
	regoDriver, err := rego.New(rego.Externs("inventory"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := constraintclient.NewClient(
		constraintclient.Targets(&target.K8sValidationTarget{}),
		constraintclient.Driver(&guard{Driver: faultyDriver{regoDriver}, failure: regoFailure}),
		constraintclient.EnforcementPoints(util.GatorEnforcementPoint),
	)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := map[string]any{
		"apiVersion": "templates.gatekeeper.sh/v1",
		"kind":       "ConstraintTemplate",
		"metadata":   map[string]any{"name": "tgalways"},
		"spec": map[string]any{
			"crd": map[string]any{"spec": map[string]any{"names": map[string]any{"kind": "TgAlways"}}},
			"targets": []any{map[string]any{
				"target": "admission.k8s.gatekeeper.sh",
				"rego":   "package tgalways\n\nviolation[{\"msg\": \"always\"}] { true }\n",
			}},
		},
	}
	objs := []Object{{Source: "t", Object: tmpl}}
	for _, name := range []string{"fine", "boom", "broken", "also-fine"} {
		objs = append(objs, Object{Source: name, Object: map[string]any{
			"apiVersion": "constraints.gatekeeper.sh/v1beta1",
			"kind":       "TgAlways",
			"metadata":   map[string]any{"name": name},
		}})
	}
	e, err := compile(context.Background(), objs, Options{}, c)
	if err != nil {
		t.Fatal(err)
	}

	d := e.Evaluate(context.Background(), policies.ObjectInput(policies.SourceCheck, map[string]any{
		"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "p"},
	}, nil))

	var got []string
	for _, f := range d.Findings {
		got = append(got, f.Policy+": "+f.Message)
	}
	if diff := cmp.Diff([]string{"TgAlways/also-fine: always", "TgAlways/fine: always"}, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	errs := map[string]string{}
	for _, pe := range d.Errors {
		errs[pe.Policy] = pe.Err.Error()
	}
	if !strings.Contains(errs["TgAlways/boom"], "panic in policy evaluation: index out of range") {
		t.Errorf("TgAlways/boom: error %q, want the panic", errs["TgAlways/boom"])
	}
	if !errors.Is(d.Errors[0].Err, errPanic) {
		t.Errorf("the panic error %v is not errPanic", d.Errors[0].Err)
	}
	if errs["TgAlways/broken"] != "storage unavailable" {
		t.Errorf("TgAlways/broken: error %q, want the driver's", errs["TgAlways/broken"])
	}
	if len(errs) != 2 {
		t.Errorf("errors %v, want boom and broken only", errs)
	}
	if d.Applied != 4 {
		t.Errorf("Applied = %d, want 4", d.Applied)
	}
}
