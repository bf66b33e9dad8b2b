# METADATA
# title: Privilege escalation verbs
# description: >-
#   Three RBAC verbs step past RBAC's own guard against escalation: escalate
#   on roles and clusterroles (write a role granting more than one holds),
#   bind on them (bind a role one does not hold), and impersonate on users,
#   groups, service accounts, UIDs and user extras (act as anyone, cluster
#   administrators included). CIS 5.1.8 asks that they be kept from
#   everyone who does not need them. A binding is reported for each subject
#   that is not Kubernetes' own when the rules of its role grant one of them
#   on those resources; escalate on anything else (pods) means nothing and
#   is not reported. The role is read from input.inventory: the policy
#   judges in the audit and in tollgate check.
# custom:
#   id: rbac-escalation
#   severity: high
#   action: warn
#   scope: object
#   inventory: required
#   kinds:
#     - rbac.authorization.k8s.io/ClusterRoleBinding
#     - rbac.authorization.k8s.io/RoleBinding
#   controls:
#     - framework: cis
#       id: "5.1.8"
#     - framework: nsa
#       id: auth/rbac
#     - framework: soc2
#       id: CC6.3
#   remediation: >-
#     Remove escalate, bind and impersonate from the role; where a controller
#     must bind roles, limit bind with resourceNames to the roles it hands
#     out, and where impersonation is needed, to the users or groups it may
#     act as.
package tollgate.rbac.escalation

import data.tollgate.lib.rbac

_rbac := "rbac.authorization.k8s.io"

_checks := [
	{"verbs": ["escalate", "bind"], "group": _rbac, "resource": "roles"},
	{"verbs": ["escalate", "bind"], "group": _rbac, "resource": "clusterroles"},
	{"verbs": ["impersonate"], "group": "", "resource": "users", "clusterScoped": true},
	{"verbs": ["impersonate"], "group": "", "resource": "groups", "clusterScoped": true},
	{"verbs": ["impersonate"], "group": "", "resource": "serviceaccounts"},
	{"verbs": ["impersonate"], "group": "authentication.k8s.io", "resource": "uids", "clusterScoped": true},
	{"verbs": ["impersonate"], "group": "authentication.k8s.io", "resource": "userextras", "clusterScoped": true, "subresources": true},
]

violation contains v if {
	some v in rbac.grant_violations(_checks)
}
