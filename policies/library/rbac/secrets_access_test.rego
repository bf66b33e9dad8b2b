package tollgate.rbac.secrets_access_test

import data.tollgate.rbac.fixtures_test as f
import data.tollgate.rbac.secrets_access

_inv := f.inventory(
	{
		"secret-reader": [f.rule(["get", "list", "watch"], [""], ["secrets"])],
		"configmap-reader": [f.rule(["get", "list"], [""], ["configmaps"])],
		"apps-secrets": [f.rule(["get"], ["apps"], ["secrets"])],
		"writer": [f.rule(["create", "update"], [""], ["secrets"])],
		"named-secret": [{"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["tls"]}],
		"monitoring": [],
		"peek": [f.rule(["list"], [""], ["secrets"])],
	},
	{"team": {"local-reader": [f.rule(["watch"], [""], ["secrets"])]}},
)

# An aggregating ClusterRole with empty rules that picks up a role granting
# secrets.
_aggregating := object.union(_inv, {"clusterRoles": {
	"monitoring": {"metadata": {"name": "monitoring"}, "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"aggregate-to-monitoring": "true"}}]}, "rules": []},
	"peek": {"metadata": {"name": "peek", "labels": {"aggregate-to-monitoring": "true"}}, "rules": [f.rule(["list"], [""], ["secrets"])]},
}})

test_cluster_binding_to_group if {
	secrets_access.violation == {{
		"msg": `ClusterRoleBinding "readers" grants get, list, watch on secrets to Group "devs" through ClusterRole "secret-reader"`,
		"path": ["subjects", 0],
	}} with input as f.with_inventory(f.crb("readers", "secret-reader", [f.group("devs")]), _inv)
}

test_role_binding_to_cluster_role_scoped_to_namespace if {
	secrets_access.violation == {{
		"msg": `RoleBinding "readers" in namespace "team" grants get, list, watch on secrets to ServiceAccount "team/app" through ClusterRole "secret-reader"`,
		"path": ["subjects", 0],
	}} with input as f.with_inventory(f.rb("team", "readers", "ClusterRole", "secret-reader", [{"kind": "ServiceAccount", "name": "app"}]), _inv)
}

test_role_binding_to_role if {
	some v in secrets_access.violation with input as f.with_inventory(f.rb("team", "r", "Role", "local-reader", [f.user("alice")]), _inv)
	v.msg == `RoleBinding "r" in namespace "team" grants watch on secrets to User "alice" through Role "local-reader"`
}

test_role_of_other_namespace_not_used if {
	count(secrets_access.violation) == 0 with input as f.with_inventory(f.rb("other", "r", "Role", "local-reader", [f.user("alice")]), _inv)
}

test_aggregated_cluster_role if {
	secrets_access.violation == {{
		"msg": `ClusterRoleBinding "mon" grants list on secrets to ServiceAccount "monitoring/prometheus" through ClusterRole "monitoring"`,
		"path": ["subjects", 0],
	}} with input as f.with_inventory(f.crb("mon", "monitoring", [f.sa("monitoring", "prometheus")]), _aggregating)
}

test_aggregating_role_without_sources_passes if {
	count(secrets_access.violation) == 0 with input as f.with_inventory(f.crb("mon", "monitoring", [f.sa("monitoring", "prometheus")]), _inv)
}

test_resource_names_still_reported if {
	count(secrets_access.violation) == 1 with input as f.with_inventory(f.crb("tls", "named-secret", [f.user("alice")]), _inv)
}

test_other_rights_pass if {
	count(secrets_access.violation) == 0 with input as f.with_inventory(f.crb("c", "configmap-reader", [f.user("alice")]), _inv)
	count(secrets_access.violation) == 0 with input as f.with_inventory(f.crb("c", "apps-secrets", [f.user("alice")]), _inv)
	count(secrets_access.violation) == 0 with input as f.with_inventory(f.crb("c", "writer", [f.user("alice")]), _inv)
}

test_missing_role_no_finding if {
	# What a role the inventory does not hold grants cannot be told.
	count(secrets_access.violation) == 0 with input as f.with_inventory(f.crb("c", "not-there", [f.user("alice")]), _inv)
}

test_admission_no_finding if {
	count(secrets_access.violation) == 0 with input as f.crb("readers", "secret-reader", [f.group("devs")])
}

test_system_default_binding_passes if {
	b := f.crb("system:controller:x", "secret-reader", [f.sa("kube-system", "x")])
	count(secrets_access.violation) == 0 with input as f.with_inventory(
		object.union(b, {"object": {"metadata": {"labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}}}}),
		_inv,
	)
}

test_malformed_subjects_not_silent if {
	secrets_access.violation == {{
		"msg": `ClusterRoleBinding "r" grants get, list, watch on secrets to subjects that cannot be read (subjects is not a list) through ClusterRole "secret-reader"`,
		"path": ["subjects"],
	}} with input as f.with_inventory(f.crb("r", "secret-reader", "devs"), _inv)
}

test_malformed_rules_not_silent if {
	inv := f.inventory({"odd": [f.rule([7, "get"], [""], ["secrets"]), "junk", {"verbs": "list", "apiGroups": "", "resources": "secrets"}]}, {})
	some v in secrets_access.violation with input as f.with_inventory(f.crb("r", "odd", [f.user("alice")]), inv)
	v.msg == `ClusterRoleBinding "r" grants get, list on secrets to User "alice" through ClusterRole "odd"`
}

test_many_subjects if {
	# The engine judges a binding of 500 subjects in well under a second
	# (tollgate check); the test keeps to 200, as Rego tests run under
	# the race detector in CI.
	subjects := [f.user(sprintf("user-%d", [i])) | some i in numbers.range(1, 200)]
	count(secrets_access.violation) == 200 with input as f.with_inventory(f.crb("r", "secret-reader", subjects), _inv)
}
