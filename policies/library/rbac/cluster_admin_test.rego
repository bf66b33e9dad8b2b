package tollgate.rbac.cluster_admin_test

import data.tollgate.rbac.cluster_admin
import data.tollgate.rbac.fixtures_test as f

test_user_bound_at_admission if {
	cluster_admin.violation == {{
		"msg": `ClusterRoleBinding "ops" grants ClusterRole "cluster-admin" (every verb on every resource) to User "alice"`,
		"path": ["subjects", 0],
	}} with input as f.crb("ops", "cluster-admin", [f.user("alice")])
}

test_group_and_service_account if {
	msgs := {v.msg | some v in cluster_admin.violation} with input as f.crb("ops", "cluster-admin", [f.group("devs"), f.sa("ci", "deployer")])
	msgs == {
		`ClusterRoleBinding "ops" grants ClusterRole "cluster-admin" (every verb on every resource) to Group "devs"`,
		`ClusterRoleBinding "ops" grants ClusterRole "cluster-admin" (every verb on every resource) to ServiceAccount "ci/deployer"`,
	}
}

test_role_binding_to_cluster_admin if {
	some v in cluster_admin.violation with input as f.rb("team", "owners", "ClusterRole", "cluster-admin", [{"kind": "ServiceAccount", "name": "ci"}])
	v.msg == `RoleBinding "owners" in namespace "team" grants ClusterRole "cluster-admin" (every verb on every resource) to ServiceAccount "team/ci"`
}

test_bootstrap_binding_passes if {
	b := f.crb("cluster-admin", "cluster-admin", [f.group("system:masters")])
	count(cluster_admin.violation) == 0 with input as object.union(b, {"object": {"metadata": {"labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}}}})
}

test_bootstrap_binding_with_a_user_added if {
	b := f.crb("cluster-admin", "cluster-admin", [f.group("system:masters"), f.user("bob")])
	cluster_admin.violation == {{
		"msg": `ClusterRoleBinding "cluster-admin" grants ClusterRole "cluster-admin" (every verb on every resource) to User "bob"`,
		"path": ["subjects", 1],
	}} with input as object.union(b, {"object": {"metadata": {"labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}}}})
}

test_unlabelled_system_masters_binding_reported if {
	count(cluster_admin.violation) == 1 with input as f.crb("cluster-admin", "cluster-admin", [f.group("system:masters")])
}

test_allowed_subject if {
	count(cluster_admin.violation) == 0 with input as object.union(
		f.crb("breakglass", "cluster-admin", [f.group("breakglass")]),
		{"config": {"parameters": {"rbac": {"allowedSubjects": ["Group:breakglass"]}}}},
	)
}

test_a_role_named_cluster_admin_is_not_the_cluster_role if {
	count(cluster_admin.violation) == 0 with input as f.rb("team", "x", "Role", "cluster-admin", [f.user("alice")])
}

test_other_role_passes_at_admission if {
	count(cluster_admin.violation) == 0 with input as f.crb("ops", "view", [f.user("alice")])
}

test_copy_of_cluster_admin_with_inventory if {
	inv := f.inventory({"root": [f.rule(["*"], ["*"], ["*"])]}, {})
	cluster_admin.violation == {{
		"msg": `ClusterRoleBinding "ops" grants every verb on every resource (as cluster-admin does) to User "alice" through ClusterRole "root"`,
		"path": ["subjects", 0],
	}} with input as f.with_inventory(f.crb("ops", "root", [f.user("alice")]), inv)
}

test_deleted_binding_passes if {
	count(cluster_admin.violation) == 0 with input as f.deleted(f.crb("ops", "cluster-admin", [f.user("alice")]))
}

test_subjects_not_a_list_reported if {
	cluster_admin.violation == {{
		"msg": `ClusterRoleBinding "ops" grants ClusterRole "cluster-admin" (every verb on every resource) to subjects that cannot be read (subjects is not a list)`,
		"path": ["subjects"],
	}} with input as f.crb("ops", "cluster-admin", "alice")
}

test_other_kind_ignored if {
	count(cluster_admin.violation) == 0 with input as object.union(f.crb("ops", "cluster-admin", [f.user("alice")]), {"kind": {"group": "", "version": "v1", "kind": "ConfigMap"}})
}
