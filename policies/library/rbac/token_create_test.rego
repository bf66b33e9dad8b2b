package tollgate.rbac.token_create_test

import data.tollgate.rbac.fixtures_test as f
import data.tollgate.rbac.token_create

_inv := f.inventory(
	{"token-maker": [f.rule(["create"], [""], ["serviceaccounts/token"])], "sa-admin": [f.rule(["create"], [""], ["serviceaccounts"])]},
	{"ci": {"tokens": [f.rule(["create"], [""], ["*/token"])]}},
)

test_cluster_binding if {
	token_create.violation == {{
		"msg": `ClusterRoleBinding "t" grants create on serviceaccounts/token to User "alice" through ClusterRole "token-maker"`,
		"path": ["subjects", 0],
	}} with input as f.with_inventory(f.crb("t", "token-maker", [f.user("alice")]), _inv)
}

test_role_binding_star_subresource if {
	some v in token_create.violation with input as f.with_inventory(f.rb("ci", "t", "Role", "tokens", [f.sa("ci", "runner")]), _inv)
	v.msg == `RoleBinding "t" in namespace "ci" grants create on serviceaccounts/token to ServiceAccount "ci/runner" through Role "tokens"`
}

test_creating_service_accounts_passes if {
	count(token_create.violation) == 0 with input as f.with_inventory(f.crb("t", "sa-admin", [f.user("alice")]), _inv)
}
