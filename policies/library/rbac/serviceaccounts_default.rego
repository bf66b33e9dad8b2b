# METADATA
# title: Default service accounts in use
# description: >-
#   Every namespace has a ServiceAccount named default, which every pod that
#   names none runs as. CIS 5.1.5 asks that it not be used: that it mount no
#   token (automountServiceAccountToken: false) and that no binding grant
#   it rights, so a pod that needs the API gets an account of its own.
#   Reported are a default ServiceAccount whose
#   automountServiceAccountToken is not false, and a binding that names a
#   ServiceAccount called default (other than Kubernetes' own defaults and
#   parameters.rbac.allowedSubjects). Works at admission.
# custom:
#   id: serviceaccounts-default
#   severity: medium
#   action: warn
#   scope: object
#   kinds:
#     - ServiceAccount
#     - rbac.authorization.k8s.io/ClusterRoleBinding
#     - rbac.authorization.k8s.io/RoleBinding
#   controls:
#     - framework: cis
#       id: "5.1.5"
#   remediation: >-
#     Set automountServiceAccountToken: false on each namespace's default
#     ServiceAccount (Tollgate's own namespaces included), give each workload
#     that calls the API a ServiceAccount of its own, and bind roles to those
#     accounts rather than to default.
package tollgate.rbac.serviceaccounts_default

import data.tollgate.lib.rbac

violation contains {"msg": msg, "path": ["automountServiceAccountToken"]} if {
	input.kind.group == ""
	input.kind.kind == "ServiceAccount"
	object.get(input, "operation", "") != "DELETE"
	input.object.metadata.name == "default"
	object.get(input.object, "automountServiceAccountToken", null) != false
	msg := sprintf(
		"ServiceAccount \"default\" in namespace %q mounts its token into every pod that names no service account (automountServiceAccountToken is %s, not false)",
		[object.get(input.object, ["metadata", "namespace"], ""), _shown(object.get(input.object, "automountServiceAccountToken", null))],
	)
}

_shown(null) := "unset"

_shown(x) := json.marshal(x) if x != null

violation contains {"msg": msg, "path": s.path} if {
	b := rbac.binding
	some s in rbac.risky_subjects(b)
	s.kind == "ServiceAccount"
	s.name == "default"
	msg := sprintf("%s grants %s to %s, the account every pod of its namespace without a serviceAccountName runs as", [rbac.describe_binding(b), rbac.describe_role(b), s.desc])
}
