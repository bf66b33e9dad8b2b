package policies

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func ownedObject(kind, apiVersion string, refs ...any) map[string]any {
	return map[string]any{
		"apiVersion": apiVersion, "kind": kind,
		"metadata": map[string]any{"name": "x", "namespace": "shop", "ownerReferences": refs},
	}
}

func ref(apiVersion, kind, name, uid string, controller any) map[string]any {
	return map[string]any{"apiVersion": apiVersion, "kind": kind, "name": name, "uid": uid, "controller": controller}
}

// Only an owner of the kind that makes such objects counts as a claimed
// controller; everything else an attacker can write is ignored.
func TestClaimedController(t *testing.T) {
	pod := GroupVersionKind{Version: "v1", Kind: "Pod"}
	rs := GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"}
	job := GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"}
	tests := []struct {
		name string
		gvk  GroupVersionKind
		obj  map[string]any
		want *OwnerRef
	}{
		{"pod of a ReplicaSet", pod, ownedObject("Pod", "v1", ref("apps/v1", "ReplicaSet", "web-1", "u1", true)), &OwnerRef{"apps/v1", "ReplicaSet", "web-1", "u1"}},
		{"pod of a Job", pod, ownedObject("Pod", "v1", ref("batch/v1", "Job", "j", "u1", true)), &OwnerRef{"batch/v1", "Job", "j", "u1"}},
		{"pod of a StatefulSet", pod, ownedObject("Pod", "v1", ref("apps/v1", "StatefulSet", "db", "u1", true)), &OwnerRef{"apps/v1", "StatefulSet", "db", "u1"}},
		{"pod of a DaemonSet", pod, ownedObject("Pod", "v1", ref("apps/v1", "DaemonSet", "ds", "u1", true)), &OwnerRef{"apps/v1", "DaemonSet", "ds", "u1"}},
		{"pod of a ReplicationController", pod, ownedObject("Pod", "v1", ref("v1", "ReplicationController", "rc", "u1", true)), &OwnerRef{"v1", "ReplicationController", "rc", "u1"}},
		{"ReplicaSet of a Deployment", rs, ownedObject("ReplicaSet", "apps/v1", ref("apps/v1", "Deployment", "web", "u1", true)), &OwnerRef{"apps/v1", "Deployment", "web", "u1"}},
		{"Job of a CronJob", job, ownedObject("Job", "batch/v1", ref("batch/v1", "CronJob", "c", "u1", true)), &OwnerRef{"batch/v1", "CronJob", "c", "u1"}},
		{"pod of a ConfigMap", pod, ownedObject("Pod", "v1", ref("v1", "ConfigMap", "cm", "u1", true)), nil},
		{"pod of a Deployment", pod, ownedObject("Pod", "v1", ref("apps/v1", "Deployment", "web", "u1", true)), nil},
		{"ReplicaSet in the wrong group", pod, ownedObject("Pod", "v1", ref("evil.example/v1", "ReplicaSet", "web-1", "u1", true)), nil},
		{"ReplicaSet with no group", pod, ownedObject("Pod", "v1", ref("v1", "ReplicaSet", "web-1", "u1", true)), nil},
		{"kind in another case", pod, ownedObject("Pod", "v1", ref("apps/v1", "replicaset", "web-1", "u1", true)), nil},
		{"not the controller", pod, ownedObject("Pod", "v1", ref("apps/v1", "ReplicaSet", "web-1", "u1", false)), nil},
		{"controller as a string", pod, ownedObject("Pod", "v1", ref("apps/v1", "ReplicaSet", "web-1", "u1", "true")), nil},
		{"no UID", pod, ownedObject("Pod", "v1", ref("apps/v1", "ReplicaSet", "web-1", "", true)), nil},
		{"no name", pod, ownedObject("Pod", "v1", ref("apps/v1", "ReplicaSet", "", "u1", true)), nil},
		{"two controllers", pod, ownedObject("Pod", "v1", ref("apps/v1", "ReplicaSet", "a", "u1", true), ref("apps/v1", "ReplicaSet", "b", "u2", true)), nil},
		{"reference not an object", pod, ownedObject("Pod", "v1", "apps/v1/ReplicaSet/a"), nil},
		{"references not a list", pod, map[string]any{"metadata": map[string]any{"ownerReferences": "x"}}, nil},
		{"a Deployment is never controlled", GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, ownedObject("Deployment", "apps/v1", ref("apps/v1", "Deployment", "w", "u1", true)), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ClaimedController(tc.gvk, tc.obj)
			var gotp *OwnerRef
			if ok {
				gotp = &got
			}
			if diff := cmp.Diff(tc.want, gotp); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// Offline, a controller is trusted only when it is among the objects, in
// the same namespace, with the UID claimed.
func TestOwnersResolve(t *testing.T) {
	owners := Owners{}
	owners.Add(
		map[string]any{"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": map[string]any{"name": "web-1", "namespace": "shop", "uid": "u1"}},
		map[string]any{"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": map[string]any{"name": "no-uid", "namespace": "shop"}},
		// Malformed objects are skipped, never a panic.
		nil,
		map[string]any{"metadata": "x"},
		map[string]any{"apiVersion": 1, "kind": []any{}, "metadata": map[string]any{"name": 2, "uid": true}},
	)
	tests := []struct {
		name  string
		obj   map[string]any
		trust bool
	}{
		{"found", ownedObject("Pod", "v1", ref("apps/v1", "ReplicaSet", "web-1", "u1", true)), true},
		{"other UID", ownedObject("Pod", "v1", ref("apps/v1", "ReplicaSet", "web-1", "u2", true)), false},
		{"not listed", ownedObject("Pod", "v1", ref("apps/v1", "ReplicaSet", "web-2", "u1", true)), false},
		{"listed without a UID", ownedObject("Pod", "v1", ref("apps/v1", "ReplicaSet", "no-uid", "", true)), false},
		{"other namespace", func() map[string]any {
			o := ownedObject("Pod", "v1", ref("apps/v1", "ReplicaSet", "web-1", "u1", true))
			o["metadata"].(map[string]any)["namespace"] = "other"
			return o
		}(), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := ObjectInput(SourceCheck, tc.obj, nil)
			owners.Resolve(in)
			if got := in.Controller != nil; got != tc.trust {
				t.Errorf("trusted = %v, want %v (controller %+v)", got, tc.trust, in.Controller)
			}
		})
	}
}
