# METADATA
# title: Node segmentation
# description: >-
#   Worker nodes belong in a private network, reached from outside only
#   through load balancers and ingress, and the control plane apart from the
#   workloads. A Node that reports an ExternalIP address (status.addresses)
#   is reachable from outside the cluster's network: its kubelet, node ports
#   and host services face whoever can route to it. A control-plane node
#   (labelled node-role.kubernetes.io/control-plane, or the older
#   node-role.kubernetes.io/master) without a NoSchedule or NoExecute taint
#   takes ordinary workloads, which then share a host with the API server
#   and etcd. Addresses or taints that are not lists are reported as well:
#   what they hold cannot be told.
# custom:
#   id: nodes-segmentation
#   severity: medium
#   action: audit
#   scope: object
#   admission: false
#   kinds: [core/Node]
#   controls:
#     - framework: nsa
#       id: network/worker-nodes
#   remediation: >-
#     Run nodes in private subnets without public addresses (expose services
#     through a load balancer or ingress), and taint control-plane nodes
#     node-role.kubernetes.io/control-plane:NoSchedule.
package tollgate.cluster.nodes_segmentation

import data.tollgate.lib.cluster

_name := cluster.describe_value(object.get(input.object, ["metadata", "name"], null))

_status := s if {
	s := input.object.status
	is_object(s)
} else := {}

_spec := s if {
	s := input.object.spec
	is_object(s)
} else := {}

violation contains {"msg": msg, "path": ["status", "addresses", i]} if {
	addresses := _status.addresses
	is_array(addresses)
	some i, a in addresses
	a.type == "ExternalIP"
	msg := sprintf("Node %s has an external address %s: it is reachable from outside the cluster's network", [
		_name, cluster.describe_value(object.get(a, "address", null)),
	])
}

violation contains {"msg": msg, "path": ["status", "addresses"]} if {
	addresses := _status.addresses
	addresses != null
	not is_array(addresses)
	msg := sprintf("Node %s has status.addresses that is not a list, so whether it is reachable from outside cannot be told", [_name])
}

_control_plane_labels := {"node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"}

_control_plane if {
	labels := input.object.metadata.labels
	is_object(labels)
	some key in _control_plane_labels
	key in object.keys(labels)
}

_repelling if {
	taints := _spec.taints
	is_array(taints)
	some t in taints
	t.effect in {"NoSchedule", "NoExecute"}
}

violation contains {"msg": msg, "path": ["spec", "taints"]} if {
	_control_plane
	not _repelling
	msg := sprintf("control-plane Node %s has no NoSchedule or NoExecute taint: ordinary workloads may run beside the control plane", [_name])
}
