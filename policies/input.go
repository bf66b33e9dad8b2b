package policies

import (
	"encoding/json"
	"fmt"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
)

// Sources of an input, as policies see them in input.source.
const (
	SourceAdmission = "admission"
	SourceCheck     = "check"
	SourceAudit     = "audit"
)

// GroupVersionKind names an object's type without pulling in apimachinery.
type GroupVersionKind struct {
	Group   string `json:"group"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
}

// GroupVersionResource names the resource a request was made on
// (apps/v1 deployments), which a subresource request needs to find the
// object it changes.
type GroupVersionResource struct {
	Group    string `json:"group"`
	Version  string `json:"version"`
	Resource string `json:"resource"`
}

// ParseAPIVersion splits "apps/v1" into group and version ("v1" is the
// core group).
func ParseAPIVersion(apiVersion, kind string) GroupVersionKind {
	group, version, ok := strings.Cut(apiVersion, "/")
	if !ok {
		return GroupVersionKind{Version: apiVersion, Kind: kind}
	}
	return GroupVersionKind{Group: group, Version: version, Kind: kind}
}

// UserInfo is who asked, in admission.
type UserInfo struct {
	Username string              `json:"username,omitempty"`
	UID      string              `json:"uid,omitempty"`
	Groups   []string            `json:"groups,omitempty"`
	Extra    map[string][]string `json:"extra,omitempty"`
}

// Input is one thing to judge. The webhook builds it from an admission
// request, the CLI from a manifest, the audit from a listed object; the
// policies cannot tell the difference except by Source and Operation.
type Input struct {
	Kind GroupVersionKind
	// Operation is CREATE, UPDATE, DELETE or CONNECT; empty outside admission.
	Operation string
	// Object is the object as submitted; OldObject the previous one on
	// UPDATE and DELETE. Both are JSON-shaped (map[string]any, []any,
	// string, bool, json.Number or float64, nil).
	Object    map[string]any
	OldObject map[string]any
	// Namespace is the object's Namespace when known. A caller that could
	// not read it must fail rather than pass nil: nil means "cluster-scoped
	// or not known in this context" (the CLI), never "read failed".
	// Policies also see the profile it selects, with the profile's
	// parameters over the config's, as input.profile (the engine derives
	// it; absent when the config defines no profiles).
	Namespace   map[string]any
	UserInfo    *UserInfo
	DryRun      bool
	SubResource string
	// Resource is the resource the request was made on, with SubResource
	// (deployments and scale); empty outside admission.
	Resource GroupVersionResource
	Source   string
	// Controller is the object's controlling owner, set only by a caller
	// that found it: of a kind that makes such objects (ClaimedController),
	// in the object's namespace, with the UID its ownerReference names.
	// Policies see it as input.controller and judge a Pod, ReplicaSet or Job
	// at its controller only then; an ownerReference alone is a claim
	// anyone can write.
	Controller *OwnerRef
	// ImageScans are the vulnerability scans of the images of the
	// object's pods, keyed by the image reference as written, each a
	// vuln.Summary's Value. Policies see them as input.imageScans. Nil
	// means no scanner is configured on this path; an image without a
	// result has a "pending" entry.
	ImageScans map[string]any
	// Inventory is the cluster around the object (its Namespace's
	// NetworkPolicies, the roles a binding names), as input.inventory:
	// the audit's listings, or the manifests check is given; nil at
	// admission.
	Inventory *Inventory
}

// ObjectInput is the input for a manifest or a listed object: no operation,
// no user, judged as it stands.
func ObjectInput(source string, object, namespace map[string]any) *Input {
	apiVersion, _ := object["apiVersion"].(string)
	kind, _ := object["kind"].(string)
	return &Input{
		Kind:      ParseAPIVersion(apiVersion, kind),
		Object:    object,
		Namespace: namespace,
		Source:    source,
	}
}

// AdmissionInput is the input for an admission request. namespace is the
// Namespace object of req.Namespace as read by the caller (nil for
// cluster-scoped objects).
func AdmissionInput(req *admissionv1.AdmissionRequest, namespace map[string]any) (*Input, error) {
	in := &Input{
		Kind:        GroupVersionKind{Group: req.Kind.Group, Version: req.Kind.Version, Kind: req.Kind.Kind},
		Operation:   string(req.Operation),
		Namespace:   namespace,
		SubResource: req.SubResource,
		Resource:    GroupVersionResource{Group: req.Resource.Group, Version: req.Resource.Version, Resource: req.Resource.Resource},
		Source:      SourceAdmission,
		DryRun:      req.DryRun != nil && *req.DryRun,
		UserInfo: &UserInfo{
			Username: req.UserInfo.Username,
			UID:      req.UserInfo.UID,
			Groups:   req.UserInfo.Groups,
		},
	}
	if len(req.UserInfo.Extra) > 0 {
		in.UserInfo.Extra = make(map[string][]string, len(req.UserInfo.Extra))
		for k, v := range req.UserInfo.Extra {
			in.UserInfo.Extra[k] = v
		}
	}
	var err error
	if in.Object, err = decodeRaw(req.Object.Raw); err != nil {
		return nil, fmt.Errorf("decoding request object: %w", err)
	}
	if in.OldObject, err = decodeRaw(req.OldObject.Raw); err != nil {
		return nil, fmt.Errorf("decoding request oldObject: %w", err)
	}
	return in, nil
}

// DecodeJSON decodes an object the way admission requests are decoded
// (numbers as json.Number), for objects read from elsewhere and judged
// beside a request's.
func DecodeJSON(raw []byte) (map[string]any, error) { return decodeRaw(raw) }

func decodeRaw(raw []byte) (map[string]any, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

// ObjectNamespace is the namespace the object lives in: its own
// metadata.namespace, else the Namespace given with it; a Namespace object
// is its own namespace. Policy scopes, exceptions, registry credentials and
// Budget scopes all read it, so they agree on where an object lives.
func (in *Input) ObjectNamespace() string {
	obj := in.Object
	if obj == nil {
		obj = in.OldObject
	}
	meta, _ := obj["metadata"].(map[string]any)
	if in.Kind.Kind == "Namespace" && in.Kind.Group == "" {
		name, _ := meta["name"].(string)
		return name
	}
	if ns, _ := meta["namespace"].(string); ns != "" {
		return ns
	}
	if nsMeta, ok := in.Namespace["metadata"].(map[string]any); ok {
		name, _ := nsMeta["name"].(string)
		return name
	}
	return ""
}
