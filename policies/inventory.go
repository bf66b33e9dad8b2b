package policies

import (
	"fmt"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// An Inventory is the part of a cluster that policies about the cluster's
// own configuration read beside the object they judge: a Namespace is
// judged with the NetworkPolicies in it, a RoleBinding with the role it
// names, a Pod with its ServiceAccount. The audit builds one from its
// listings (complete: it is the whole cluster), tollgate check from the
// manifests it is given (not complete: what is missing may exist in the
// cluster); admission has none, so a policy that needs it finds nothing
// there and the audit judges the object on its next scan.
//
// Policies see it as input.inventory:
//
//	complete                                 bool
//	namespaces[name]                         Namespace
//	networkPolicies[namespace][name]         NetworkPolicy
//	serviceAccounts[namespace][name]         ServiceAccount
//	roles[namespace][name]                   Role
//	clusterRoles[name]                       ClusterRole
//	roleBindings[namespace][name]            RoleBinding
//	clusterRoleBindings[name]                ClusterRoleBinding
//	validatingWebhookConfigurations[name]    ValidatingWebhookConfiguration
//	mutatingWebhookConfigurations[name]      MutatingWebhookConfiguration
//
// Objects are kept whole except metadata.managedFields. An Inventory is
// built once and read by many evaluations at once: it is never changed
// after Build.
type Inventory struct {
	value    map[string]any
	objects  int
	complete bool

	once sync.Once
	term *ast.Term
	err  error
}

// inventoryKind says where an object of a kind goes in the inventory.
type inventoryKind struct {
	key        string
	namespaced bool
}

// InventoryKinds are the kinds an Inventory holds, by group and kind: what
// the audit lists to build one.
var InventoryKinds = map[GroupVersionKind]string{
	{Version: "v1", Kind: "Namespace"}:                                                             "namespaces",
	{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy"}:                             "networkPolicies",
	{Version: "v1", Kind: "ServiceAccount"}:                                                        "serviceAccounts",
	{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "Role"}:                              "roles",
	{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRole"}:                       "clusterRoles",
	{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "RoleBinding"}:                       "roleBindings",
	{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRoleBinding"}:                "clusterRoleBindings",
	{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "ValidatingWebhookConfiguration"}: "validatingWebhookConfigurations",
	{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "MutatingWebhookConfiguration"}:   "mutatingWebhookConfigurations",
}

var inventoryKeys = map[string]inventoryKind{
	"namespaces":                      {"namespaces", false},
	"networkPolicies":                 {"networkPolicies", true},
	"serviceAccounts":                 {"serviceAccounts", true},
	"roles":                           {"roles", true},
	"clusterRoles":                    {"clusterRoles", false},
	"roleBindings":                    {"roleBindings", true},
	"clusterRoleBindings":             {"clusterRoleBindings", false},
	"validatingWebhookConfigurations": {"validatingWebhookConfigurations", false},
	"mutatingWebhookConfigurations":   {"mutatingWebhookConfigurations", false},
}

// MaxInventoryObjects bounds an inventory: past it, Add refuses objects and
// the inventory is no longer complete, so no policy concludes from it that
// something is missing.
const MaxInventoryObjects = 200_000

// An InventoryBuilder collects objects into an Inventory. It is not safe
// for concurrent use.
type InventoryBuilder struct {
	inv *Inventory
}

// NewInventory starts an inventory; complete says it will hold every
// object of its kinds in the cluster (the audit), not only some (check).
func NewInventory(complete bool) *InventoryBuilder {
	v := map[string]any{}
	for key := range inventoryKeys {
		v[key] = map[string]any{}
	}
	return &InventoryBuilder{inv: &Inventory{value: v, complete: complete}}
}

// Add puts an object into the inventory when it is of a kind the
// inventory holds; it reports whether it did. An object of a held kind
// without a name, or past MaxInventoryObjects, is an error (and the
// inventory stops being complete); one of another kind is ignored.
func (b *InventoryBuilder) Add(obj map[string]any) (bool, error) {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	gvk := ParseAPIVersion(apiVersion, kind)
	gk := GroupVersionKind{Group: gvk.Group, Version: "v1", Kind: gvk.Kind}
	key, ok := InventoryKinds[gk]
	if !ok {
		return false, nil
	}
	meta, _ := obj["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	ns, _ := meta["namespace"].(string)
	where := inventoryKeys[key]
	switch {
	case name == "":
		b.inv.complete = false
		return false, fmt.Errorf("%s without metadata.name: left out of the inventory", kind)
	case where.namespaced && ns == "":
		b.inv.complete = false
		return false, fmt.Errorf("%s %q without metadata.namespace: left out of the inventory", kind, name)
	case b.inv.objects >= MaxInventoryObjects:
		b.inv.complete = false
		return false, fmt.Errorf("%s %q: the inventory holds %d objects already, its limit: left out, and the inventory is incomplete", kind, name, MaxInventoryObjects)
	}
	byName := b.inv.value[key].(map[string]any)
	if where.namespaced {
		m, _ := byName[ns].(map[string]any)
		if m == nil {
			m = map[string]any{}
			byName[ns] = m
		}
		byName = m
	}
	if _, dup := byName[name]; !dup {
		b.inv.objects++
	}
	byName[name] = withoutManagedFields(obj)
	return true, nil
}

// Incomplete marks the inventory as not the whole cluster (a listing
// failed), so no policy concludes from it that something is missing.
func (b *InventoryBuilder) Incomplete() { b.inv.complete = false }

// Build ends the building and returns the inventory; the builder must not
// be used after.
func (b *InventoryBuilder) Build() *Inventory {
	inv := b.inv
	inv.value["complete"] = inv.complete
	b.inv = nil
	return inv
}

// Complete reports whether the inventory holds every object of its kinds.
func (inv *Inventory) Complete() bool { return inv.complete }

// Len is the number of objects held.
func (inv *Inventory) Len() int { return inv.objects }

// Value is input.inventory as JSON-shaped Go values; callers must not
// change it.
func (inv *Inventory) Value() map[string]any { return inv.value }

// astTerm converts the inventory for Rego once, however many evaluations
// read it.
func (inv *Inventory) astTerm() (*ast.Term, error) {
	inv.once.Do(func() {
		v, err := ast.InterfaceToValue(inv.value)
		if err != nil {
			inv.err = fmt.Errorf("converting input.inventory: %w", err)
			return
		}
		inv.term = ast.NewTerm(v)
	})
	return inv.term, inv.err
}
