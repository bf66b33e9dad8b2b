package tollgate.rbac.escalation_test

import data.tollgate.rbac.escalation
import data.tollgate.rbac.fixtures_test as f

_rbac := "rbac.authorization.k8s.io"

_inv := f.inventory({
	"escalator": [f.rule(["escalate"], [_rbac], ["roles"])],
	"binder": [f.rule(["bind"], [_rbac], ["clusterroles"])],
	"pod-escalate": [f.rule(["escalate", "bind"], [""], ["pods"])],
	"impersonator": [f.rule(["impersonate"], [""], ["users", "groups"])],
	"sa-impersonator": [f.rule(["impersonate"], [""], ["serviceaccounts"])],
	"extras": [f.rule(["impersonate"], ["authentication.k8s.io"], ["userextras/scopes", "uids"])],
	"role-reader": [f.rule(["get", "list"], [_rbac], ["roles", "clusterroles"])],
	"rbac-admin": [f.rule(["*"], [_rbac], ["*"])],
}, {})

_judge(binding) := msgs if {
	msgs := {v.msg | some v in escalation.violation} with input as f.with_inventory(binding, _inv)
}

test_escalate_on_roles if {
	_judge(f.crb("e", "escalator", [f.user("alice")])) == {`ClusterRoleBinding "e" grants escalate on roles to User "alice" through ClusterRole "escalator"`}
}

test_bind_on_clusterroles if {
	_judge(f.crb("b", "binder", [f.group("devs")])) == {`ClusterRoleBinding "b" grants bind on clusterroles to Group "devs" through ClusterRole "binder"`}
}

test_escalate_on_pods_grants_nothing if {
	count(_judge(f.crb("p", "pod-escalate", [f.user("alice")]))) == 0
}

test_impersonate_users_and_groups if {
	_judge(f.crb("i", "impersonator", [f.user("alice")])) == {`ClusterRoleBinding "i" grants impersonate on users; impersonate on groups to User "alice" through ClusterRole "impersonator"`}
}

test_impersonate_users_through_role_binding_grants_nothing if {
	# Users and groups are not in any namespace: a RoleBinding cannot grant them.
	count(_judge(f.rb("team", "i", "ClusterRole", "impersonator", [f.user("alice")]))) == 0
}

test_impersonate_service_accounts_in_namespace if {
	_judge(f.rb("team", "i", "ClusterRole", "sa-impersonator", [f.user("alice")])) == {`RoleBinding "i" in namespace "team" grants impersonate on serviceaccounts to User "alice" through ClusterRole "sa-impersonator"`}
}

test_impersonate_uids_and_extras if {
	_judge(f.crb("x", "extras", [f.user("alice")])) == {`ClusterRoleBinding "x" grants impersonate on uids; impersonate on userextras/* to User "alice" through ClusterRole "extras"`}
}

test_reading_roles_passes if {
	count(_judge(f.crb("r", "role-reader", [f.user("alice")]))) == 0
}

test_wildcard_verbs_on_rbac if {
	_judge(f.crb("a", "rbac-admin", [f.user("alice")])) == {`ClusterRoleBinding "a" grants escalate, bind on roles; escalate, bind on clusterroles to User "alice" through ClusterRole "rbac-admin"`}
}

test_admission_no_finding if {
	count(escalation.violation) == 0 with input as f.crb("e", "escalator", [f.user("alice")])
}
