# METADATA
# title: Access to secrets
# description: >-
#   Reading a Secret (get, or list and watch, which return every Secret's
#   data) hands over the credentials it holds, service-account tokens
#   included. CIS 5.1.2 asks that access to secrets be kept to those who need
#   it. A binding is reported for each subject that is not Kubernetes' own
#   when the rules of its role, aggregated ClusterRoles included, grant get,
#   list or watch on secrets. The role is read from input.inventory: the
#   policy judges in the audit and in tollgate check, not at admission.
# custom:
#   id: rbac-secrets-access
#   severity: high
#   action: warn
#   scope: object
#   inventory: required
#   kinds:
#     - rbac.authorization.k8s.io/ClusterRoleBinding
#     - rbac.authorization.k8s.io/RoleBinding
#   controls:
#     - framework: cis
#       id: "5.1.2"
#     - framework: nsa
#       id: auth/rbac
#     - framework: soc2
#       id: CC6.3
#   remediation: >-
#     Remove get, list and watch on secrets from the role, or bind it in the
#     one namespace that needs it with a RoleBinding and resourceNames for
#     the Secrets concerned; workloads should receive secrets as mounted
#     volumes rather than read them through the API.
package tollgate.rbac.secrets_access

import data.tollgate.lib.rbac

violation contains v if {
	some v in rbac.grant_violations([{"verbs": ["get", "list", "watch"], "group": "", "resource": "secrets"}])
}
