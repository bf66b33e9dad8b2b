package tollgate.lib.owners_test

import data.tollgate.lib.owners

_ref := {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "api-7d9f", "uid": "u-1", "controller": true}

_pod(refs) := {
	"kind": {"group": "", "version": "v1", "kind": "Pod"},
	"object": {"metadata": {"name": "api-7d9f-x", "ownerReferences": refs}},
}

test_found_controller if {
	owners.controlled with input as object.union(_pod([_ref]), {"controller": {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "api-7d9f", "uid": "u-1"}})
}

test_claim_alone_is_not_trusted if {
	not owners.controlled with input as _pod([_ref])
}

test_other_uid_is_not_trusted if {
	not owners.controlled with input as object.union(_pod([_ref]), {"controller": {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "api-7d9f", "uid": "u-2"}})
}

test_reference_not_marked_controller if {
	not owners.controlled with input as object.union(
		_pod([object.union(_ref, {"controller": false})]),
		{"controller": {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "api-7d9f", "uid": "u-1"}},
	)
}

test_other_kinds_never_controlled if {
	inp := {
		"kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
		"object": {"metadata": {"name": "api", "ownerReferences": [_ref]}},
		"controller": {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "api-7d9f", "uid": "u-1"},
	}
	not owners.controlled with input as inp
}

_found := {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "api-7d9f", "uid": "u-1"}

test_update_keeping_labels_stays_controlled if {
	pod := object.union(_pod([_ref]), {"controller": _found, "operation": "UPDATE"})
	inp := object.union(pod, {"oldObject": pod.object})
	owners.controlled with input as inp
}

# kubectl label on one pod of a ReplicaSet is the pod's own change.
test_update_changing_labels_is_judged_on_the_object if {
	pod := object.union(_pod([_ref]), {"controller": _found, "operation": "UPDATE"})
	relabelled := json.patch(pod, [{"op": "add", "path": "/object/metadata/labels", "value": {"cost-center": "cc-9"}}])
	inp := object.union(relabelled, {"oldObject": pod.object})
	not owners.controlled with input as inp
}
