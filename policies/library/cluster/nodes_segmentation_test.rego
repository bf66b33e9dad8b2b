package tollgate.cluster.nodes_segmentation_test

import data.tollgate.cluster.nodes_segmentation

_node(meta, spec, status) := {"kind": {"kind": "Node"}, "object": {"kind": "Node", "metadata": object.union({"name": "n1"}, meta), "spec": spec, "status": status}}

test_private_worker_allowed if {
	count(nodes_segmentation.violation) == 0 with input as _node({}, {}, {"addresses": [
		{"type": "InternalIP", "address": "10.0.0.5"},
		{"type": "Hostname", "address": "n1"},
	]})
	count(nodes_segmentation.violation) == 0 with input as {"object": {"kind": "Node", "metadata": {"name": "n1"}}}
}

test_tainted_control_plane_allowed if {
	count(nodes_segmentation.violation) == 0 with input as _node(
		{"labels": {"node-role.kubernetes.io/control-plane": ""}},
		{"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]},
		{},
	)
	count(nodes_segmentation.violation) == 0 with input as _node(
		{"labels": {"node-role.kubernetes.io/master": "true"}},
		{"taints": [{"key": "dedicated", "value": "etcd", "effect": "NoExecute"}]},
		{},
	)
}

test_external_address_denied if {
	nodes_segmentation.violation == {{
		"msg": `Node "n1" has an external address "203.0.113.7": it is reachable from outside the cluster's network`,
		"path": ["status", "addresses", 1],
	}} with input as _node({}, {}, {"addresses": [
		{"type": "InternalIP", "address": "10.0.0.5"},
		{"type": "ExternalIP", "address": "203.0.113.7"},
	]})
}

test_untainted_control_plane_denied if {
	msg := `control-plane Node "n1" has no NoSchedule or NoExecute taint: ordinary workloads may run beside the control plane`
	nodes_segmentation.violation == {{"msg": msg, "path": ["spec", "taints"]}} with input as _node(
		{"labels": {"node-role.kubernetes.io/control-plane": ""}},
		{"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "PreferNoSchedule"}]},
		{},
	)
	nodes_segmentation.violation == {{"msg": msg, "path": ["spec", "taints"]}} with input as _node(
		{"labels": {"node-role.kubernetes.io/control-plane": ""}},
		{"taints": "NoSchedule"},
		{},
	)
	nodes_segmentation.violation == {{"msg": msg, "path": ["spec", "taints"]}} with input as _node(
		{"labels": {"node-role.kubernetes.io/control-plane": ""}},
		{"taints": {"cp": {"effect": "NoSchedule"}}},
		{},
	)
}

test_malformed_addresses_do_not_pass if {
	nodes_segmentation.violation == {{
		"msg": `Node "n1" has status.addresses that is not a list, so whether it is reachable from outside cannot be told`,
		"path": ["status", "addresses"],
	}} with input as _node({}, {}, {"addresses": {"type": "ExternalIP", "address": "203.0.113.7"}})
	count(nodes_segmentation.violation) == 1 with input as _node({}, {}, {"addresses": ["junk", {"type": "ExternalIP"}]})
	count(nodes_segmentation.violation) == 0 with input as _node({}, "junk", "junk")
}
