package review

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/tollgate-dev/tollgate/policies"
)

// Subresource is what Tollgate does with one subresource of a governed
// resource: whether the webhooks intercept it and, when they do, which
// fields of the judged object it can change. A judged subresource is
// judged as the object it changes (a Pod for pods/resize, the Deployment
// for deployments/scale), and only the findings on the fields it can
// change count: the rest of the object was judged when it was written, and
// cannot change through the subresource. The gates (the budget gate) judge
// what the change costs.
type Subresource struct {
	// Group and Resource name the parent resource ("apps", "deployments").
	Group, Resource string
	// Name is the subresource ("scale").
	Name string
	// Judged says the validating webhook intercepts it.
	Judged bool
	// Mutated says the mutating webhook intercepts it too.
	Mutated bool
	// Changes matches the finding paths the subresource can change (a
	// judged one only).
	Changes string
	// Reason says why, for the table in docs/subresources.md.
	Reason string
}

// Subresources lists every subresource of every resource Tollgate governs
// (the workloads and PersistentVolumeClaims), judged or not, with the
// reason. The webhook configurations register the judged ones, the webhook
// judges them, and docs/subresources.md shows the same table (a test keeps
// them equal).
var Subresources = []Subresource{
	{Resource: "pods", Name: "ephemeralcontainers", Judged: true, Mutated: true, Changes: `^spec\.ephemeralContainers`,
		Reason: "kubectl debug adds containers to a running pod: they are judged (and hardened) like any container"},
	{Resource: "pods", Name: "resize", Judged: true, Changes: `^spec\.((init)?[cC]ontainers(\[\d+\]\.resources(\..*)?)?|resources(\..*)?)$`,
		Reason: "in-place resize changes a running pod's requests and limits: the resource caps and the Budgets judge the new pod"},
	{Resource: "pods", Name: "status", Reason: "written by the kubelet (phase, conditions, addresses); it changes nothing a policy judges, and the scanner counts pods by it"},
	{Resource: "pods", Name: "binding", Reason: "the scheduler places a pending pod on a node its spec (judged at create) allows"},
	{Resource: "pods", Name: "eviction", Reason: "removes a pod (PodDisruptionBudgets govern it); it adds nothing to judge or to pay"},
	{Resource: "pods", Name: "exec", Reason: "CONNECT to a running container; nothing is stored (access is RBAC's)"},
	{Resource: "pods", Name: "attach", Reason: "CONNECT to a running container; nothing is stored (access is RBAC's)"},
	{Resource: "pods", Name: "portforward", Reason: "CONNECT to a running pod; nothing is stored (access is RBAC's)"},
	{Resource: "pods", Name: "log", Reason: "read only"},
	{Resource: "pods", Name: "proxy", Reason: "CONNECT through to the pod; nothing is stored"},
	{Group: "apps", Resource: "deployments", Name: "scale", Judged: true, Changes: `^spec\.replicas$`,
		Reason: "kubectl scale and autoscalers change spec.replicas: the Deployment is judged at its new size, and its cost against the Budgets"},
	{Group: "apps", Resource: "replicasets", Name: "scale", Judged: true, Changes: `^spec\.replicas$`,
		Reason: "changes spec.replicas: judged as the ReplicaSet at its new size"},
	{Group: "apps", Resource: "statefulsets", Name: "scale", Judged: true, Changes: `^spec\.replicas$`,
		Reason: "changes spec.replicas (and the claims of its volumeClaimTemplates): judged as the StatefulSet at its new size"},
	{Resource: "replicationcontrollers", Name: "scale", Judged: true, Changes: `^spec\.replicas$`,
		Reason: "changes spec.replicas: judged as the ReplicationController at its new size"},
	{Group: "apps", Resource: "deployments", Name: "status", Reason: "written by the controller: observed counts, not the desired state"},
	{Group: "apps", Resource: "replicasets", Name: "status", Reason: "written by the controller: observed counts"},
	{Group: "apps", Resource: "statefulsets", Name: "status", Reason: "written by the controller: observed counts"},
	{Group: "apps", Resource: "daemonsets", Name: "status", Reason: "written by the controller: observed counts (the nodes it runs on are the scheduler's)"},
	{Resource: "replicationcontrollers", Name: "status", Reason: "written by the controller: observed counts"},
	{Group: "batch", Resource: "jobs", Name: "status", Reason: "written by the controller: active, succeeded and failed pods"},
	{Group: "batch", Resource: "cronjobs", Name: "status", Reason: "written by the controller: the last schedule and active Jobs"},
	{Resource: "persistentvolumeclaims", Name: "status", Reason: "written by the volume controllers (phase, capacity); a resize is an UPDATE of spec.resources, judged"},
	{Resource: "serviceaccounts", Name: "token", Reason: "issues a token for a ServiceAccount; nothing governed is stored"},
	{Resource: "namespaces", Name: "status", Judged: true, Changes: `[^\s\S]`,
		Reason: "written by the namespace controller (conditions), but a status write also carries the Namespace's labels: a move between profiles through it is judged like an UPDATE (namespace-profile); no other finding counts"},
	{Resource: "namespaces", Name: "finalize", Judged: true, Changes: `[^\s\S]`,
		Reason: "removes finalizers of a Namespace being deleted, but the write also carries its labels: a move between profiles through it is judged like an UPDATE (namespace-profile); no other finding counts"},
}

var subresourceChanges = func() map[string]*regexp.Regexp {
	out := map[string]*regexp.Regexp{}
	for _, s := range Subresources {
		if s.Judged {
			out[s.Group+"/"+s.Resource+"/"+s.Name] = regexp.MustCompile(s.Changes)
		}
	}
	return out
}()

// JudgedSubresource reports whether the webhook judges a subresource of a
// resource (group "" is the core group).
func JudgedSubresource(group, resource, name string) bool {
	return subresourceChanges[group+"/"+resource+"/"+name] != nil
}

// JudgedSubresources lists the judged subresources of a resource, for the
// webhook configurations: the validating webhook's, or (mutated) the
// mutating webhook's.
func JudgedSubresources(group, resource string, mutated bool) []string {
	var out []string
	for _, s := range Subresources {
		if s.Judged && s.Group == group && s.Resource == resource && (!mutated || s.Mutated) {
			out = append(out, s.Resource+"/"+s.Name)
		}
	}
	return out
}

// Parents reads the object a subresource request changes, as stored: the
// Deployment of a deployments/scale request. The webhook implements it
// with the API server; it is nil where no cluster is at hand.
type Parents interface {
	Parent(ctx context.Context, in *policies.Input) (map[string]any, error)
}

// subject is the input a subresource request is judged as: the parent
// object as the change will leave it, for scale; the input itself
// otherwise (a pods/resize request's object is the whole Pod).
func (r *Reviewer) subject(ctx context.Context, in *policies.Input) (*policies.Input, error) {
	if in.SubResource != "scale" {
		return in, nil
	}
	if r.opts.Parents == nil {
		return nil, fmt.Errorf("no reader of %s", in.Resource.Resource)
	}
	parent, err := r.opts.Parents.Parent(ctx, in)
	if err != nil {
		return nil, err
	}
	newReplicas, err := scaleReplicas(in.Object, "object")
	if err != nil {
		return nil, err
	}
	spec, _ := parent["spec"].(map[string]any)
	oldReplicas := spec["replicas"]
	if in.OldObject != nil {
		if oldReplicas, err = scaleReplicas(in.OldObject, "oldObject"); err != nil {
			return nil, err
		}
	}
	apiVersion, _ := parent["apiVersion"].(string)
	kind, _ := parent["kind"].(string)
	out := *in
	out.Kind = policies.ParseAPIVersion(apiVersion, kind)
	out.Operation = "UPDATE"
	out.OldObject = withReplicas(parent, oldReplicas)
	out.Object = withReplicas(parent, newReplicas)
	return &out, nil
}

// scaleReplicas reads spec.replicas of an autoscaling/v1 Scale.
func scaleReplicas(scale map[string]any, which string) (any, error) {
	spec, ok := scale["spec"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the Scale %s has no spec", which)
	}
	v, ok := spec["replicas"]
	if !ok || v == nil {
		return nil, nil
	}
	switch v.(type) {
	case float64, int, int64, string, interface{ Int64() (int64, error) }:
		return v, nil
	}
	return nil, fmt.Errorf("the Scale %s's spec.replicas is %T, want an integer", which, v)
}

// withReplicas is a copy of obj whose spec.replicas is n (none when nil).
func withReplicas(obj map[string]any, n any) map[string]any {
	out := make(map[string]any, len(obj))
	for k, v := range obj {
		out[k] = v
	}
	spec := map[string]any{}
	if s, ok := obj["spec"].(map[string]any); ok {
		for k, v := range s {
			spec[k] = v
		}
	}
	if n == nil {
		delete(spec, "replicas")
	} else {
		spec["replicas"] = n
	}
	out["spec"] = spec
	return out
}

// onlyChanged keeps the findings a subresource request can change: those
// on the fields its row of Subresources names, and with whole, those on no
// field (a gate's finding about the whole change, such as its cost).
// Findings of a whole request (no subresource) are all kept.
func onlyChanged(in *policies.Input, findings []policies.Finding, whole bool) []policies.Finding {
	if in.SubResource == "" {
		return findings
	}
	re := subresourceChanges[in.Resource.Group+"/"+in.Resource.Resource+"/"+in.SubResource]
	if re == nil && in.SubResource == "ephemeralcontainers" {
		re = subresourceChanges["/pods/ephemeralcontainers"] // an input built without its resource
	}
	return slices.DeleteFunc(findings, func(f policies.Finding) bool {
		if whole && f.Path == "" {
			return false
		}
		return re == nil || !re.MatchString(f.Path)
	})
}

// imagesChange reports whether a request can change the images of what it
// judges: whole objects and ephemeral containers can, a resize or a scale
// cannot.
func imagesChange(in *policies.Input) bool {
	return in.SubResource == "" || strings.EqualFold(in.SubResource, "ephemeralcontainers")
}
