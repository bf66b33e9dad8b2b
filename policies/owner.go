package policies

import "strings"

// OwnerRef names an object's controlling owner: what its ownerReference
// with controller: true says, and, once checked, what was found.
type OwnerRef struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	UID        string `json:"uid"`
}

// Group is the owner's API group ("" for the core group).
func (r OwnerRef) Group() string {
	g, _, ok := strings.Cut(r.APIVersion, "/")
	if !ok {
		return ""
	}
	return g
}

// controllerKinds lists, for each kind whose objects a controller makes,
// the kinds of controller that make them, as the Kubernetes controllers
// set their ownerReferences: a Pod is made by a ReplicaSet, a Job, a
// StatefulSet, a DaemonSet or a ReplicationController; a ReplicaSet by a
// Deployment; a Job by a CronJob. Any other claim (a Pod "controlled" by a
// ConfigMap) is not a controller Tollgate judged, and is ignored.
var controllerKinds = map[podKind][]podKind{
	{"", "Pod"}: {
		{"apps", "ReplicaSet"}, {"batch", "Job"}, {"apps", "StatefulSet"},
		{"apps", "DaemonSet"}, {"", "ReplicationController"},
	},
	{"apps", "ReplicaSet"}: {{"apps", "Deployment"}},
	{"batch", "Job"}:       {{"batch", "CronJob"}},
}

// ClaimedController returns the controller an object of kind gvk names in
// its ownerReferences, when that owner is of a kind that makes such objects
// and names itself fully (kind, name and UID). The claim is only a claim:
// a caller trusts it, by setting Input.Controller, after finding that
// owner, with that UID, in the object's namespace. An object naming more
// than one controller (the API server refuses it) claims none.
func ClaimedController(gvk GroupVersionKind, obj map[string]any) (OwnerRef, bool) {
	parents, ok := controllerKinds[podKind{gvk.Group, gvk.Kind}]
	if !ok {
		return OwnerRef{}, false
	}
	meta, _ := obj["metadata"].(map[string]any)
	refs, _ := meta["ownerReferences"].([]any)
	var found OwnerRef
	n := 0
	for _, r := range refs {
		ref, _ := r.(map[string]any)
		if c, _ := ref["controller"].(bool); !c {
			continue
		}
		n++
		found.APIVersion, _ = ref["apiVersion"].(string)
		found.Kind, _ = ref["kind"].(string)
		found.Name, _ = ref["name"].(string)
		found.UID, _ = ref["uid"].(string)
	}
	if n != 1 || found.Name == "" || found.UID == "" || !strings.Contains(found.APIVersion, "/") && found.APIVersion != "v1" {
		return OwnerRef{}, false
	}
	for _, p := range parents {
		if p.kind == found.Kind && p.group == found.Group() {
			return found, true
		}
	}
	return OwnerRef{}, false
}

// Owners is an index of the objects a run judges offline (`tollgate check`'s
// manifests, a fixture suite's cluster objects), by kind, namespace and
// name, so an object's controller is trusted only when it is among them.
type Owners map[ownerKey]string

type ownerKey struct{ group, kind, namespace, name string }

// Add indexes objects by their kind, namespace and name, keeping their UID.
// Objects without a UID cannot be anyone's controller.
func (o Owners) Add(objects ...map[string]any) {
	for _, obj := range objects {
		apiVersion, _ := obj["apiVersion"].(string)
		kind, _ := obj["kind"].(string)
		meta, _ := obj["metadata"].(map[string]any)
		name, _ := meta["name"].(string)
		ns, _ := meta["namespace"].(string)
		uid, _ := meta["uid"].(string)
		if uid == "" || name == "" {
			continue
		}
		gvk := ParseAPIVersion(apiVersion, kind)
		o[ownerKey{gvk.Group, kind, ns, name}] = uid
	}
}

// Resolve sets in.Controller when the controller the object claims is in
// the index, in the object's namespace, with the UID claimed.
func (o Owners) Resolve(in *Input) {
	ref, ok := ClaimedController(in.Kind, in.Object)
	if !ok {
		return
	}
	if uid, ok := o[ownerKey{ref.Group(), ref.Kind, in.ObjectNamespace(), ref.Name}]; ok && uid == ref.UID {
		in.Controller = &ref
	}
}
