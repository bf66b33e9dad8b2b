# Package tollgate.lib.owners says whether an object is judged at its
# controller. An ownerReference is written by whoever creates the object, so
# it is only a claim; input.controller is set by Tollgate when it found that
# controller (of a kind that makes such objects, in the same namespace, with
# the UID the reference names) in the cluster or among the objects checked.
package tollgate.lib.owners

# controlled holds for a Pod, ReplicaSet or Job whose controller Tollgate
# found and judges: its own labels are the controller's template's. An
# UPDATE that changes its labels (kubectl label on one pod) is the object's
# own change, and is judged on the object.
controlled if {
	input.kind.kind in {"Pod", "ReplicaSet", "Job"}
	c := input.controller
	some ref in object.get(input.object, ["metadata", "ownerReferences"], [])
	ref.controller == true
	ref.uid == c.uid
	ref.kind == c.kind
	ref.name == c.name
	not _labels_changed
}

_labels_changed if {
	input.operation == "UPDATE"
	object.get(input.object, ["metadata", "labels"], {}) != object.get(input, ["oldObject", "metadata", "labels"], {})
}
