# METADATA
# title: Bindings to cluster-admin
# description: >-
#   The cluster-admin ClusterRole allows every verb on every resource: whoever
#   holds it owns the cluster. CIS 5.1.1 asks that it be bound only where it
#   is required. A ClusterRoleBinding or RoleBinding to it is reported for
#   each subject that is not Kubernetes' own (the bootstrap cluster-admin
#   binding of the system:masters group) nor accepted in
#   parameters.rbac.allowedSubjects. Where the inventory holds the bound role
#   (the audit, tollgate check), a binding to any other role granting every
#   verb on every resource in every API group is reported as well, as it is
#   cluster-admin under another name. Works at admission: a new binding to
#   cluster-admin is a warning on kubectl apply.
# custom:
#   id: rbac-cluster-admin
#   severity: high
#   action: warn
#   scope: object
#   kinds:
#     - rbac.authorization.k8s.io/ClusterRoleBinding
#     - rbac.authorization.k8s.io/RoleBinding
#   controls:
#     - framework: cis
#       id: "5.1.1"
#     - framework: nsa
#       id: auth/rbac
#     - framework: soc2
#       id: CC6.3
#   remediation: >-
#     Bind a role that grants only what the subject needs (the built-in admin,
#     edit or view, or a role of your own) instead of cluster-admin; for
#     break-glass access, bind a group that is empty in normal operation and
#     name it in parameters.rbac.allowedSubjects.
package tollgate.rbac.cluster_admin

import data.tollgate.lib.rbac

_cluster_admin(b) if {
	b.roleRef.kind == "ClusterRole"
	b.roleRef.name == "cluster-admin"
}

violation contains {"msg": msg, "path": s.path} if {
	b := rbac.binding
	_cluster_admin(b)
	some s in rbac.risky_subjects(b)
	msg := sprintf("%s grants ClusterRole \"cluster-admin\" (every verb on every resource) to %s", [rbac.describe_binding(b), s.desc])
}

violation contains {"msg": msg, "path": s.path} if {
	b := rbac.binding
	not _cluster_admin(b)
	rbac.grants(rbac.role_rules(b), "*", "*", "*")
	some s in rbac.risky_subjects(b)
	msg := sprintf("%s grants every verb on every resource (as cluster-admin does) to %s through %s", [rbac.describe_binding(b), s.desc, rbac.describe_role(b)])
}
