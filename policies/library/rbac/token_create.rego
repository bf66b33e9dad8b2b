# METADATA
# title: Creating service account tokens
# description: >-
#   Create on serviceaccounts/token (the TokenRequest API) issues a token for
#   any service account in reach, and with it every right that account
#   holds. CIS 5.1.13 asks that the right be kept to those who need it. A
#   binding is reported for each subject that is not Kubernetes' own when
#   the rules of its role grant it. The role is read from input.inventory:
#   the policy judges in the audit and in tollgate check.
# custom:
#   id: rbac-token-create
#   severity: high
#   action: warn
#   scope: object
#   inventory: required
#   kinds:
#     - rbac.authorization.k8s.io/ClusterRoleBinding
#     - rbac.authorization.k8s.io/RoleBinding
#   controls:
#     - framework: cis
#       id: "5.1.13"
#   remediation: >-
#     Remove create on serviceaccounts/token from the role, or limit it with
#     resourceNames to the service accounts the subject must issue tokens
#     for, in their namespace only.
package tollgate.rbac.token_create

import data.tollgate.lib.rbac

violation contains v if {
	some v in rbac.grant_violations([{"verbs": ["create"], "group": "", "resource": "serviceaccounts/token"}])
}
