# METADATA
# title: Kubernetes version supported
# description: >-
#   A control plane older than the supported Kubernetes releases no longer
#   gets security fixes. The audit reads the API server's version from
#   discovery (ClusterFacts apiServer.version); it must be within the
#   supported window, the same as for kubelets (nodes-kubelet-version): the
#   newest minor release the library knows (v1.36) and those before it,
#   parameters.cluster.supportedMinors in all (default 3). A version that is
#   missing or is not a Kubernetes version is reported.
# custom:
#   id: cluster-version-supported
#   severity: high
#   action: audit
#   scope: object
#   admission: false
#   kinds: [tollgate.dev/ClusterFacts]
#   controls:
#     - framework: nsa
#       id: upgrades/patching
#   remediation: >-
#     Upgrade the control plane to a supported Kubernetes release (one minor
#     release at a time), then the nodes; set parameters.cluster.supportedMinors
#     if your provider supports older releases for longer.
package tollgate.cluster.cluster_version

import data.tollgate.lib.cluster

violation contains {"msg": msg, "path": ["apiServer", "version"]} if {
	version := object.get(input.object, ["apiServer", "version"], null)
	problem := cluster.version_problem(version)
	msg := sprintf("the API server's version %s", [problem])
}

violation contains {"msg": cluster.supported_minors_problem, "path": ["parameters", "cluster", "supportedMinors"]}
