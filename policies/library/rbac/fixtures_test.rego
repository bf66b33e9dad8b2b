# Package tollgate.rbac.fixtures_test builds the inputs the rbac policies'
# tests judge: bindings as admission, the audit and check give them, and
# inventories of roles.
package tollgate.rbac.fixtures_test

_group := "rbac.authorization.k8s.io"

crb(name, role, subjects) := {
	"kind": {"group": _group, "version": "v1", "kind": "ClusterRoleBinding"},
	"object": {
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
		"metadata": {"name": name},
		"roleRef": {"apiGroup": _group, "kind": "ClusterRole", "name": role},
		"subjects": subjects,
	},
}

rb(ns, name, ref_kind, role, subjects) := {
	"kind": {"group": _group, "version": "v1", "kind": "RoleBinding"},
	"object": {
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
		"metadata": {"name": name, "namespace": ns},
		"roleRef": {"apiGroup": _group, "kind": ref_kind, "name": role},
		"subjects": subjects,
	},
}

user(name) := {"kind": "User", "apiGroup": _group, "name": name}

group(name) := {"kind": "Group", "apiGroup": _group, "name": name}

sa(ns, name) := {"kind": "ServiceAccount", "name": name, "namespace": ns}

rule(verbs, groups, resources) := {"verbs": verbs, "apiGroups": groups, "resources": resources}

cluster_role(name, rules) := {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name}, "rules": rules}

# inventory holds the ClusterRoles (name to rules) and Roles (namespace to
# name to rules) given.
inventory(cluster_roles, roles) := {
	"complete": true,
	"clusterRoles": {name: cluster_role(name, rules) | some name, rules in cluster_roles},
	"roles": {ns: {name: {"kind": "Role", "metadata": {"name": name, "namespace": ns}, "rules": rules} | some name, rules in by_name} | some ns, by_name in roles},
}

# with_inventory is an input judged with an inventory (the audit, check).
with_inventory(x, inv) := object.union(x, {"inventory": inv})

deleted(x) := object.union(x, {"operation": "DELETE"})
