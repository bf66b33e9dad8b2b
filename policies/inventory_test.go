package policies_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/policies"
)

// A policy that needs the inventory: a Namespace without any NetworkPolicy.
const unprotectedNamespacePolicy = `# METADATA
# title: Unprotected namespace
# custom:
#   id: test-unprotected
#   scope: object
#   kinds: [Namespace]
#   action: warn
package test.unprotected

violation contains msg if {
	input.inventory.complete
	name := input.object.metadata.name
	count(object.get(input.inventory.networkPolicies, name, {})) == 0
	msg := sprintf("namespace %q has no NetworkPolicy", [name])
}
`

func obj(apiVersion, kind, ns, name string) map[string]any {
	meta := map[string]any{"name": name, "managedFields": []any{map[string]any{"manager": "kubectl"}}}
	if ns != "" {
		meta["namespace"] = ns
	}
	return map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": meta}
}

func TestInventoryIsInput(t *testing.T) {
	e := newEngine(t, map[string]string{"p.rego": unprotectedNamespacePolicy})
	b := policies.NewInventory(true)
	for _, o := range []map[string]any{
		obj("v1", "Namespace", "", "shop"),
		obj("v1", "Namespace", "", "bare"),
		obj("networking.k8s.io/v1", "NetworkPolicy", "shop", "default-deny"),
		obj("rbac.authorization.k8s.io/v1", "ClusterRole", "", "reader"),
	} {
		if ok, err := b.Add(o); !ok || err != nil {
			t.Fatalf("Add(%v) = %v, %v", o["kind"], ok, err)
		}
	}
	// Kinds an inventory does not hold are ignored, not errors.
	if ok, err := b.Add(obj("apps/v1", "Deployment", "shop", "web")); ok || err != nil {
		t.Errorf("a Deployment: Add = %v, %v; want ignored", ok, err)
	}
	inv := b.Build()
	if inv.Len() != 4 || !inv.Complete() {
		t.Errorf("Len %d complete %v, want 4 true", inv.Len(), inv.Complete())
	}
	np := inv.Value()["networkPolicies"].(map[string]any)["shop"].(map[string]any)["default-deny"].(map[string]any)
	if _, ok := np["metadata"].(map[string]any)["managedFields"]; ok {
		t.Error("managedFields kept in the inventory")
	}

	judge := func(name string, inv *policies.Inventory) []policies.Finding {
		in := policies.ObjectInput(policies.SourceAudit, obj("v1", "Namespace", "", name), nil)
		in.Inventory = inv
		d := e.Evaluate(context.Background(), in)
		if len(d.Errors) > 0 {
			t.Fatalf("errors: %v", d.Errors)
		}
		return d.Findings
	}
	if f := judge("shop", inv); len(f) != 0 {
		t.Errorf("shop has a NetworkPolicy: %v", f)
	}
	if f := judge("bare", inv); len(f) != 1 || !strings.Contains(f[0].Message, `"bare" has no NetworkPolicy`) {
		t.Errorf("bare: %v", f)
	}
	// Admission has no inventory: the policy finds nothing, it never fails.
	if f := judge("bare", nil); len(f) != 0 {
		t.Errorf("without an inventory: %v", f)
	}
	// An incomplete inventory (check, or a failed listing) claims no absence.
	partial := policies.NewInventory(false).Build()
	if f := judge("bare", partial); len(f) != 0 {
		t.Errorf("incomplete inventory: %v", f)
	}
	// Where there is an inventory (the audit, check), a policy reading it
	// is judged afresh: a second evaluation after the inventory changed
	// must see the change, not a verdict cached from the first.
	changed := policies.NewInventory(true)
	for _, o := range []map[string]any{obj("v1", "Namespace", "", "bare"), obj("networking.k8s.io/v1", "NetworkPolicy", "bare", "deny")} {
		if _, err := changed.Add(o); err != nil {
			t.Fatal(err)
		}
	}
	cached := newEngine(t, map[string]string{"p.rego": unprotectedNamespacePolicy}, func(o *policies.Options) { o.VerdictCache = 1000 })
	for i, tc := range []struct {
		inv  *policies.Inventory
		want int
	}{{inv, 1}, {changed.Build(), 0}, {inv, 1}} {
		in := policies.ObjectInput(policies.SourceAudit, obj("v1", "Namespace", "", "bare"), nil)
		in.Inventory = tc.inv
		if got := len(cached.Evaluate(context.Background(), in).Findings); got != tc.want {
			t.Errorf("evaluation %d with a verdict cache: %d findings, want %d", i, got, tc.want)
		}
	}
}

func TestInventoryBadObjects(t *testing.T) {
	b := policies.NewInventory(true)
	if _, err := b.Add(obj("v1", "ServiceAccount", "", "default")); err == nil || !strings.Contains(err.Error(), "without metadata.namespace") {
		t.Errorf("a namespaced kind without a namespace: %v", err)
	}
	if _, err := b.Add(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": "x"}); err == nil || !strings.Contains(err.Error(), "without metadata.name") {
		t.Errorf("no name: %v", err)
	}
	if inv := b.Build(); inv.Complete() || inv.Len() != 0 {
		t.Errorf("an inventory that left objects out is complete (%v) or holds them (%d)", inv.Complete(), inv.Len())
	}
	// The limit: past it, objects are refused and the inventory is incomplete.
	b = policies.NewInventory(true)
	for i := range policies.MaxInventoryObjects {
		if _, err := b.Add(obj("v1", "Namespace", "", "ns-"+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := b.Add(obj("v1", "Namespace", "", "one-more")); ok || err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("past the limit: %v %v", ok, err)
	}
	if b.Build().Complete() {
		t.Error("an inventory past its limit is complete")
	}
}
