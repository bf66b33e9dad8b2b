package tollgate.rbac.anonymous_access_test

import data.tollgate.rbac.anonymous_access
import data.tollgate.rbac.fixtures_test as f

_defaults := {"kubernetes.io/bootstrapping": "rbac-defaults"}

test_anonymous_user if {
	anonymous_access.violation == {{
		"msg": `ClusterRoleBinding "open" grants ClusterRole "view" to User "system:anonymous", that is to every request without credentials`,
		"path": ["subjects", 0],
	}} with input as f.crb("open", "view", [f.user("system:anonymous")])
}

test_unauthenticated_group_in_namespace if {
	some v in anonymous_access.violation with input as f.rb("web", "public", "Role", "reader", [f.user("alice"), f.group("system:unauthenticated")])
	v.path == ["subjects", 1]
	v.msg == `RoleBinding "public" in namespace "web" grants Role "reader" to Group "system:unauthenticated", that is to every request without credentials`
}

test_bootstrap_defaults_pass if {
	b := f.crb("system:public-info-viewer", "system:public-info-viewer", [f.group("system:authenticated"), f.group("system:unauthenticated")])
	count(anonymous_access.violation) == 0 with input as object.union(b, {"object": {"metadata": {"labels": _defaults}}})
}

test_unlabelled_lookalike_reported if {
	count(anonymous_access.violation) == 1 with input as f.crb("system:public-info-viewer", "view", [f.group("system:unauthenticated")])
}

test_authenticated_passes if {
	count(anonymous_access.violation) == 0 with input as f.crb("all", "view", [f.group("system:authenticated")])
}
