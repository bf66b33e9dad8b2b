package gatekeeper_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/gatekeeper"
)

func ingress(ns, name string, hosts ...string) map[string]any {
	var rules []any
	for _, h := range hosts {
		rules = append(rules, map[string]any{"host": h})
	}
	return object("networking.k8s.io/v1", "Ingress", name, in(ns), field("rules", rules))
}

// TestInventory checks a referential template against data.inventory as
// AddData and RemoveData keep it.
func TestInventory(t *testing.T) {
	ctx := context.Background()
	e := compile(t, load(t, "testdata/policies"), gatekeeper.Options{})
	shop := ingress("shop", "web", "shop.example", "api.example")
	const policy = "TgUniqueIngressHost/unique-hosts"

	steps := []struct {
		name   string
		add    []map[string]any
		remove []map[string]any
		in     *policies.Input
		want   []finding
	}{
		{
			name: "an empty inventory",
			in:   admitted("CREATE", ingress("blog", "web", "api.example"), nil, namespace("blog"), "bob"),
			want: []finding{},
		},
		{
			name: "a host another ingress serves",
			add:  []map[string]any{shop, namespace("shop")},
			in:   admitted("CREATE", ingress("blog", "web", "blog.example", "api.example"), nil, namespace("blog"), "bob"),
			want: []finding{{policy, policies.ActionEnforce, policies.SeverityMedium, "host api.example is already served by ingress shop/web", "spec.rules[1].host"}},
		},
		{
			name: "the ingress itself is not a conflict",
			in:   audited(shop, namespace("shop")),
			want: []finding{},
		},
		{
			name:   "removed from the inventory",
			remove: []map[string]any{shop},
			in:     checked(ingress("blog", "web", "api.example"), namespace("blog")),
			want:   []finding{},
		},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			for _, o := range s.add {
				if err := e.AddData(ctx, o); err != nil {
					t.Fatal(err)
				}
			}
			for _, o := range s.remove {
				if err := e.RemoveData(ctx, o); err != nil {
					t.Fatal(err)
				}
			}
			d := e.Evaluate(ctx, s.in)
			if len(d.Errors) > 0 {
				t.Errorf("errors %v", errorsOf(d))
			}
			if diff := cmp.Diff(s.want, findings(d)); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("WipeData empties it", func(t *testing.T) {
		if err := e.AddData(ctx, shop); err != nil {
			t.Fatal(err)
		}
		if err := e.WipeData(ctx); err != nil {
			t.Fatal(err)
		}
		d := e.Evaluate(ctx, checked(ingress("blog", "web", "api.example"), namespace("blog")))
		if len(d.Findings) != 0 {
			t.Errorf("findings after WipeData: %+v", d.Findings)
		}
	})
}

// TestInventoryNamespaces checks that a Namespace in the inventory stands
// in for an input's missing Namespace in a namespaceSelector, as in gator,
// where every object of the inputs is data.
func TestInventoryNamespaces(t *testing.T) {
	ctx := context.Background()
	e := compile(t, load(t, "testdata/policies"), gatekeeper.Options{})
	pod := object("v1", "Pod", "web", in("billed"), labels("team", "a"), images("registry.internal.example/w"))

	d := e.Evaluate(ctx, checked(pod, nil))
	if got := errorsOf(d)["TgRequiredLabels/cost-center-warn"]; !strings.Contains(got, "missing Namespace") {
		t.Errorf("without the Namespace: error %q, want the namespaceSelector's", got)
	}

	if err := e.AddData(ctx, namespace("billed", "billing", "enabled")); err != nil {
		t.Fatal(err)
	}
	d = e.Evaluate(ctx, checked(pod, nil))
	want := []finding{{"TgRequiredLabels/cost-center-warn", policies.ActionWarn, policies.SeverityLow, "label cost-center must be set for chargeback", "metadata.labels.cost-center"}}
	if diff := cmp.Diff(want, findings(d)); diff != "" || len(d.Errors) > 0 {
		t.Errorf("with the Namespace in the inventory: errors %v, findings (-want +got):\n%s", errorsOf(d), diff)
	}
}

func TestAddDataErrors(t *testing.T) {
	ctx := context.Background()
	e := compile(t, load(t, "testdata/policies"), gatekeeper.Options{})
	for name, obj := range map[string]map[string]any{
		"nil":           nil,
		"no apiVersion": {"kind": "Pod", "metadata": map[string]any{"name": "x"}},
	} {
		t.Run(name, func(t *testing.T) {
			if err := e.AddData(ctx, obj); err == nil {
				t.Error("AddData accepted it")
			}
		})
	}
}

// TestConcurrent evaluates while the inventory changes; run with -race.
func TestConcurrent(t *testing.T) {
	ctx := context.Background()
	e := compile(t, load(t, "testdata/policies"), gatekeeper.Options{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range 20 {
				ing := ingress("shop", fmt.Sprintf("w%d-%d", w, i), fmt.Sprintf("h%d.example", i))
				if err := e.AddData(ctx, ing); err != nil {
					t.Error(err)
				}
				if err := e.RemoveData(ctx, ing); err != nil {
					t.Error(err)
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range 20 {
				d := e.Evaluate(ctx, checked(object("v1", "Pod", "web", in("staging"), images("registry.internal.example/w")), namespace("staging")))
				if diff := cmp.Diff([]finding{teamMissing()}, findings(d)); diff != "" || len(d.Errors) > 0 {
					t.Errorf("errors %v, findings (-want +got):\n%s", errorsOf(d), diff)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkEvaluate judges one pod in admission against the constraints of
// testdata/policies: four of the eight match it and three report.
func BenchmarkEvaluate(b *testing.B) {
	e := compile(b, load(b, "testdata/policies"), gatekeeper.Options{})
	ctx := context.Background()
	pod := object("v1", "Pod", "web", in("prod-a"), labels("tier", "frontend", "team", "shop"), images("registry.internal.example/web:1", "docker.io/sidecar:2"))
	in := admitted("CREATE", pod, nil, namespace("prod-a", "billing", "enabled"), "bob")
	d := e.Evaluate(ctx, in)
	if len(d.Errors) > 0 || d.Applied != 4 {
		b.Fatalf("applied %d, errors %v", d.Applied, errorsOf(d))
	}
	b.ReportAllocs()
	for b.Loop() {
		e.Evaluate(ctx, in)
	}
}
