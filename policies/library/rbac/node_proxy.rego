# METADATA
# title: Access to nodes/proxy
# description: >-
#   The nodes/proxy subresource reaches the kubelet's API on each node, where
#   a GET over a websocket can run commands in any container on it, past
#   admission and the API server's audit log. CIS 5.1.10 asks that it be
#   kept from everyone who does not need it. A ClusterRoleBinding is
#   reported for each subject that is not Kubernetes' own when the rules of
#   its role grant get or create on nodes/proxy (a wildcard verb or resource
#   included). The role is read from input.inventory: the policy judges in
#   the audit and in tollgate check.
# custom:
#   id: rbac-node-proxy
#   severity: high
#   action: warn
#   scope: object
#   inventory: required
#   kinds:
#     - rbac.authorization.k8s.io/ClusterRoleBinding
#     - rbac.authorization.k8s.io/RoleBinding
#   controls:
#     - framework: cis
#       id: "5.1.10"
#   remediation: >-
#     Remove nodes/proxy (and "*" resources) from the role; monitoring agents
#     need nodes/metrics or nodes/stats, not nodes/proxy.
package tollgate.rbac.node_proxy

import data.tollgate.lib.rbac

violation contains v if {
	some v in rbac.grant_violations([{"verbs": ["get", "create"], "group": "", "resource": "nodes/proxy", "clusterScoped": true}])
}
