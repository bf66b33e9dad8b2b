package loader_test

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/policies/loader"
	"github.com/tollgate-dev/tollgate/policies/review"
)

func basePolicy(id, pkg string) policies.Module {
	return policies.Module{Name: pkg + ".rego", Text: `# METADATA
# title: ` + id + `
# custom:
#   id: ` + id + `
#   severity: low
package ` + pkg + `

violation contains {"msg": "no"} if { input.object.metadata.name == "denied" }
`}
}

// TestSetBase swaps the base modules (a policy set pulled from a
// registry): the new set is in force after the reload, and a base that
// does not compile leaves the last good one in force.
func TestSetBase(t *testing.T) {
	ctx := context.Background()
	state := &review.Holder{}
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	l, err := loader.New(loader.Options{Client: fake.NewClientBuilder().WithScheme(scheme).Build(), State: state, Base: []policies.Module{basePolicy("first", "corp.first")}})
	if err != nil {
		t.Fatal(err)
	}
	ids := func() []string {
		var out []string
		for _, m := range state.Load().Policies() {
			out = append(out, m.ID)
		}
		return out
	}
	if _, err := l.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ids(), ","); got != "first" {
		t.Fatalf("policies %s", got)
	}
	if err := l.SetBase(ctx, loader.Base{Modules: []policies.Module{basePolicy("second", "corp.second")}, Data: map[string]any{"corp": map[string]any{"x": 1}}}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ids(), ","); got != "second" {
		t.Fatalf("after SetBase: policies %s", got)
	}
	broken := policies.Module{Name: "broken.rego", Text: "package corp.broken\n\nviolation contains x if { x := nope(1) }\n"}
	if err := l.SetBase(ctx, loader.Base{Modules: []policies.Module{broken}}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("a base that does not compile: %v", err)
	}
	if got := strings.Join(ids(), ","); got != "second" {
		t.Fatalf("after a bad base: policies %s, want the last good", got)
	}
	// The good base was restored: a reload (a cluster object changed)
	// still loads it.
	if _, err := l.Reload(ctx); err != nil {
		t.Fatalf("reload after a bad base: %v", err)
	}
	if got := strings.Join(ids(), ","); got != "second" {
		t.Fatalf("reload after a bad base: policies %s", got)
	}
}
