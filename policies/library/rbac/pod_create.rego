# METADATA
# title: Creating pods
# description: >-
#   Who can create a Pod can run any image as any service account of the
#   namespace and mount its Secrets, and where Pod Security allows it, reach
#   the node. CIS 5.1.4 asks that pod creation be kept to those who need it.
#   A binding is reported for each subject that is not Kubernetes' own when
#   the rules of its role grant create on pods. The role is read from
#   input.inventory: the policy judges in the audit and in tollgate check.
# custom:
#   id: rbac-pod-create
#   severity: medium
#   action: warn
#   scope: object
#   inventory: required
#   kinds:
#     - rbac.authorization.k8s.io/ClusterRoleBinding
#     - rbac.authorization.k8s.io/RoleBinding
#   controls:
#     - framework: cis
#       id: "5.1.4"
#     - framework: nsa
#       id: auth/rbac
#   remediation: >-
#     Let people and pipelines create workloads (Deployments, Jobs) through a
#     deployment tool's service account rather than pods directly, and bind
#     create on pods in the namespaces that need it only.
package tollgate.rbac.pod_create

import data.tollgate.lib.rbac

violation contains v if {
	some v in rbac.grant_violations([{"verbs": ["create"], "group": "", "resource": "pods"}])
}
