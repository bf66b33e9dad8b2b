# METADATA
# title: Kubelet version supported
# description: >-
#   A kubelet older than the supported Kubernetes releases no longer gets
#   security fixes. The supported releases are the newest minor release the
#   library knows (v1.36) and those before it, parameters.cluster.supportedMinors
#   in all (default 3: v1.34 to v1.36, the releases the Kubernetes project
#   patches; a provider with longer support may be given a larger window). A
#   Node's status.nodeInfo.kubeletVersion older than that, or that is not a
#   Kubernetes version, is reported; a Node without nodeInfo (a manifest,
#   not a running node) is not judged.
# custom:
#   id: nodes-kubelet-version
#   severity: medium
#   action: audit
#   scope: object
#   admission: false
#   kinds: [core/Node]
#   controls:
#     - framework: nsa
#       id: upgrades/patching
#   remediation: >-
#     Upgrade the node (or its node pool) to a supported Kubernetes release;
#     set parameters.cluster.supportedMinors if your provider supports older
#     releases for longer.
package tollgate.cluster.nodes_kubelet_version

import data.tollgate.lib.cluster

_name := cluster.describe_value(object.get(input.object, ["metadata", "name"], null))

violation contains {"msg": msg, "path": ["status", "nodeInfo", "kubeletVersion"]} if {
	info := input.object.status.nodeInfo
	info != null
	version := _version(info)
	problem := cluster.version_problem(version)
	msg := sprintf("Node %s: kubelet %s", [_name, problem])
}

_version(info) := object.get(info, "kubeletVersion", null) if is_object(info) else := null

violation contains {"msg": msg, "path": ["parameters", "cluster", "supportedMinors"]} if {
	input.object.status.nodeInfo
	msg := cluster.supported_minors_problem
}
