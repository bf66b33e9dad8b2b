# METADATA
# title: Access for anonymous requests
# description: >-
#   A request without credentials is the user system:anonymous in the group
#   system:unauthenticated. A binding to either grants its role to anyone
#   who can reach the API server. The NSA/CISA guidance asks that anonymous
#   access be off and the control plane not be open to unauthenticated
#   requests. Any binding to them is reported, except the defaults the API
#   server creates and reconciles itself (system:public-info-viewer,
#   system:discovery and the like, labelled
#   kubernetes.io/bootstrapping: rbac-defaults and named system:*). Works
#   at admission.
# custom:
#   id: rbac-anonymous-access
#   severity: high
#   action: warn
#   scope: object
#   kinds:
#     - rbac.authorization.k8s.io/ClusterRoleBinding
#     - rbac.authorization.k8s.io/RoleBinding
#   controls:
#     - framework: nsa
#       id: auth/authentication
#     - framework: nsa
#       id: network/control-plane
#   remediation: >-
#     Delete the binding, or bind the role to system:authenticated (or a
#     narrower group) instead; run the API server with --anonymous-auth=false
#     where health checks do not need anonymous access.
package tollgate.rbac.anonymous_access

import data.tollgate.lib.rbac

_anonymous := {["User", "system:anonymous"], ["Group", "system:unauthenticated"]}

violation contains {"msg": msg, "path": s.path} if {
	b := rbac.binding
	some s in rbac.risky_subjects(b)
	[s.kind, s.name] in _anonymous
	msg := sprintf("%s grants %s to %s, that is to every request without credentials", [rbac.describe_binding(b), rbac.describe_role(b), s.desc])
}
