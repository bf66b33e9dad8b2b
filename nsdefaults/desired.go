// Package nsdefaults generates each namespace's defaults from its profile
// and keeps them in sync, as Kyverno's generate rules with synchronisation
// do: a ResourceQuota, a LimitRange, a default-deny NetworkPolicy with the
// allowances the profile lists, and the profile's Budget. The elected
// leader applies them with server-side apply under Tollgate's field
// manager when a namespace appears or changes profile, when one of them is
// edited or deleted (the drift is corrected at once), when the config or
// a profile reloads, and on a resync interval; it deletes the ones a
// profile no longer asks for. It only ever touches objects that carry
// Tollgate's managed label and its fixed name (Name); every other object,
// a team's own ResourceQuota included, is left alone.
package nsdefaults

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/tollgate-dev/tollgate/policies"
)

// Name is the name of every generated object: one of each kind per
// namespace. An object of a generated kind is Tollgate's only when it has
// this name and the managed label.
const Name = "tollgate-defaults"

// Labels and annotations on generated objects.
const (
	// LabelManagedBy with ManagedBy marks an object as generated: the
	// controller watches only objects with it.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "tollgate"
	// LabelProfile names the profile the object was generated from.
	LabelProfile = "tollgate.dev/profile"
	// AnnotationHash is a digest of what was generated: an object whose
	// content differs from it while the digest still matches was edited
	// by someone (drift), not updated by a profile change.
	AnnotationHash = "tollgate.dev/defaults-hash"
)

// FieldManager is the server-side apply field manager of generated
// objects.
const FieldManager = "tollgate"

// The generated kinds.
var (
	ResourceQuota = schema.GroupVersionKind{Version: "v1", Kind: "ResourceQuota"}
	LimitRange    = schema.GroupVersionKind{Version: "v1", Kind: "LimitRange"}
	NetworkPolicy = schema.GroupVersionKind{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy"}
	Budget        = schema.GroupVersionKind{Group: "tollgate.dev", Version: "v1alpha1", Kind: "Budget"}
)

// Kinds are the generated kinds, in the order they are applied: the quota
// and the limits before anything else, so a namespace is bounded first.
func Kinds() []schema.GroupVersionKind {
	return []schema.GroupVersionKind{ResourceQuota, LimitRange, NetworkPolicy, Budget}
}

// budgetAmountRE is the Budget CRD's pattern for spec.amount: a profile's
// amount that does not match it would be refused by the API server.
var budgetAmountRE = regexp.MustCompile(`^[0-9]{1,12}(\.[0-9]{1,4})?$`)

// Desired builds the objects a namespace on profile (named profileName)
// gets: nothing for a nil profile or one that asks for none. Quantities
// are written in the API server's canonical form, so what is stored
// compares equal to what was built. An invalid value is an error naming
// the profile and the field; no object is built then.
func Desired(namespace, profileName string, p *policies.Profile) ([]*unstructured.Unstructured, error) {
	if p == nil {
		return nil, nil
	}
	field := func(f string) string { return fmt.Sprintf("profile %s: %s", profileName, f) }
	var out []*unstructured.Unstructured
	add := func(gvk schema.GroupVersionKind, spec map[string]any) {
		out = append(out, object(gvk, namespace, profileName, spec))
	}
	d := p.NamespaceDefaults
	if q := d.ResourceQuota; q != nil {
		if len(q.Hard) == 0 {
			return nil, fmt.Errorf("%s: required", field("namespaceDefaults.resourceQuota.hard"))
		}
		hard, err := quantities(field("namespaceDefaults.resourceQuota.hard"), q.Hard)
		if err != nil {
			return nil, err
		}
		add(ResourceQuota, map[string]any{"hard": hard})
	}
	if l := d.LimitRange; l != nil {
		item := map[string]any{"type": "Container"}
		for _, part := range []struct {
			name string
			list map[string]string
		}{{"default", l.Default}, {"defaultRequest", l.DefaultRequest}, {"max", l.Max}, {"min", l.Min}} {
			if len(part.list) == 0 {
				continue
			}
			q, err := quantities(field("namespaceDefaults.limitRange."+part.name), part.list)
			if err != nil {
				return nil, err
			}
			item[part.name] = q
		}
		// A limit range with no defaults and no bounds limits nothing.
		if len(item) > 1 {
			add(LimitRange, map[string]any{"limits": []any{item}})
		}
	}
	if n := d.NetworkPolicy; n != nil {
		spec, err := networkPolicy(field("namespaceDefaults.networkPolicy"), n)
		if err != nil {
			return nil, err
		}
		add(NetworkPolicy, spec)
	}
	if b := p.Budget; b != nil {
		spec, err := budget(field("budget"), namespace, b)
		if err != nil {
			return nil, err
		}
		add(Budget, spec)
	}
	return out, nil
}

// object is a generated object of gvk in namespace, labelled and with the
// digest of its content.
func object(gvk schema.GroupVersionKind, namespace, profileName string, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"metadata": map[string]any{
			"name": Name, "namespace": namespace,
			"labels": map[string]any{LabelManagedBy: ManagedBy, LabelProfile: profileName},
		},
		"spec": spec,
	}}
	u.SetGroupVersionKind(gvk)
	u.SetAnnotations(map[string]string{AnnotationHash: digest(u.Object)})
	return u
}

// digest is a short digest of an object's JSON (map keys sorted).
func digest(obj map[string]any) string {
	b, err := json.Marshal(obj)
	if err != nil {
		panic(fmt.Sprintf("nsdefaults: a generated object does not encode: %v", err)) // built here from strings and numbers
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// quantities are resource names and quantities in canonical form.
func quantities(field string, list map[string]string) (map[string]any, error) {
	out := make(map[string]any, len(list))
	for _, name := range slices.Sorted(maps.Keys(list)) {
		q, err := resource.ParseQuantity(list[name])
		if err != nil {
			return nil, fmt.Errorf("%s[%q]: %q is not a quantity", field, name, list[name])
		}
		out[name] = q.String()
	}
	return out, nil
}

// networkPolicy denies all ingress and egress of the namespace's pods but
// for what n allows.
func networkPolicy(field string, n *policies.NetworkPolicyDefaults) (map[string]any, error) {
	var ingress, egress []any
	if n.AllowSameNamespace {
		ingress = append(ingress, map[string]any{"from": []any{map[string]any{"podSelector": map[string]any{}}}})
		egress = append(egress, map[string]any{"to": []any{map[string]any{"podSelector": map[string]any{}}}})
	}
	for i, sel := range n.IngressFromNamespaces {
		if len(sel) == 0 {
			// An empty selector would allow every namespace: not an
			// allowance anyone means by listing one.
			return nil, fmt.Errorf("%s.ingressFromNamespaces[%d]: empty (it would allow every namespace)", field, i)
		}
		labels := map[string]any{}
		for k, v := range sel {
			labels[k] = v
		}
		ingress = append(ingress, map[string]any{"from": []any{map[string]any{"namespaceSelector": map[string]any{"matchLabels": labels}}}})
	}
	if n.AllowDNS {
		egress = append(egress, map[string]any{
			"to": []any{map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "kube-system"}}}},
			"ports": []any{
				map[string]any{"protocol": "UDP", "port": int64(53)},
				map[string]any{"protocol": "TCP", "port": int64(53)},
			},
		})
	}
	for i, c := range n.EgressCIDRs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("%s.egressCIDRs[%d]: %q is not a CIDR", field, i, c)
		}
		egress = append(egress, map[string]any{"to": []any{map[string]any{"ipBlock": map[string]any{"cidr": p.Masked().String()}}}})
	}
	spec := map[string]any{
		"podSelector": map[string]any{},
		"policyTypes": []any{"Ingress", "Egress"},
	}
	if len(ingress) > 0 {
		spec["ingress"] = ingress
	}
	if len(egress) > 0 {
		spec["egress"] = egress
	}
	return spec, nil
}

// budget is the spec of a Budget counting the namespace's spend.
func budget(field, namespace string, b *policies.ProfileBudget) (map[string]any, error) {
	if !budgetAmountRE.MatchString(b.Amount) {
		return nil, fmt.Errorf("%s.amount: %q is not an amount (a decimal such as 5000 or 1250.50)", field, b.Amount)
	}
	spec := map[string]any{"scope": map[string]any{"namespace": namespace}, "amount": b.Amount}
	for k, v := range map[string]string{"currency": b.Currency, "period": b.Period, "action": b.Action} {
		if v != "" {
			spec[k] = v
		}
	}
	if len(b.Thresholds) > 0 {
		t := make([]any, len(b.Thresholds))
		for i, v := range b.Thresholds {
			if v <= 0 {
				return nil, fmt.Errorf("%s.thresholds[%d]: %d is not a percentage above 0", field, i, v)
			}
			t[i] = int64(v)
		}
		spec["thresholds"] = t
	}
	if len(b.Channels) > 0 {
		c := make([]any, len(b.Channels))
		for i, v := range b.Channels {
			c[i] = v
		}
		spec["channels"] = c
	}
	return spec, nil
}
