package tollgate.cluster.nodes_kubelet_version_test

import data.tollgate.cluster.nodes_kubelet_version

_node(version) := {"kind": {"kind": "Node"}, "object": {"kind": "Node", "metadata": {"name": "n1"}, "status": {"nodeInfo": {"kubeletVersion": version}}}}

test_supported_kubelets_allowed if {
	every v in ["v1.34.0", "v1.35.2-eks-4b5f7c1", "v1.36.0+k3s1", "v1.37.0"] {
		count(nodes_kubelet_version.violation) == 0 with input as _node(v)
	}
	count(nodes_kubelet_version.violation) == 0 with input as {"object": {"kind": "Node", "metadata": {"name": "n1"}}}
}

test_old_kubelet_denied if {
	nodes_kubelet_version.violation == {{
		"msg": `Node "n1": kubelet "v1.31.4" is older than v1.34, the oldest minor release supported (supported: v1.34 to v1.36)`,
		"path": ["status", "nodeInfo", "kubeletVersion"],
	}} with input as _node("v1.31.4")
}

test_window_parameter if {
	count(nodes_kubelet_version.violation) == 0 with input as object.union(_node("v1.31.4"), {"config": {"parameters": {"cluster": {"supportedMinors": 6}}}})
	v := nodes_kubelet_version.violation with input as object.union(_node("v1.35.0"), {"config": {"parameters": {"cluster": {"supportedMinors": 0}}}})
	{x.path | some x in v} == {["parameters", "cluster", "supportedMinors"]}
}

test_unparseable_versions_do_not_pass if {
	every v in ["v1.x", "", 1.35, null, ["v1.35.0"]] {
		count(nodes_kubelet_version.violation) == 1 with input as _node(v)
	}
	nodes_kubelet_version.violation == {{
		"msg": `Node "n1": kubelet "v1.x" is not a Kubernetes version`,
		"path": ["status", "nodeInfo", "kubeletVersion"],
	}} with input as _node("v1.x")
	count(nodes_kubelet_version.violation) == 1 with input as {"object": {"metadata": {"name": "n1"}, "status": {"nodeInfo": {}}}}
	count(nodes_kubelet_version.violation) == 1 with input as {"object": {"metadata": {"name": "n1"}, "status": {"nodeInfo": "v1.35.0"}}}
}
