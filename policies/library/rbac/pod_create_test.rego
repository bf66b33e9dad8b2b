package tollgate.rbac.pod_create_test

import data.tollgate.rbac.fixtures_test as f
import data.tollgate.rbac.pod_create

_inv := f.inventory({
	"deployer": [f.rule(["create", "get"], [""], ["pods", "services"])],
	"exec": [f.rule(["create"], [""], ["pods/exec"])],
	"everything": [f.rule(["*"], ["*"], ["*"])],
	"apps": [f.rule(["create"], ["apps"], ["deployments"])],
}, {})

test_cluster_binding_service_account if {
	pod_create.violation == {{
		"msg": `ClusterRoleBinding "ci-deployer" grants create on pods to ServiceAccount "ci/deployer" through ClusterRole "deployer"`,
		"path": ["subjects", 0],
	}} with input as f.with_inventory(f.crb("ci-deployer", "deployer", [f.sa("ci", "deployer")]), _inv)
}

test_wildcards_grant_create if {
	count(pod_create.violation) == 1 with input as f.with_inventory(f.crb("x", "everything", [f.user("a")]), _inv)
}

test_subresource_is_not_pods if {
	count(pod_create.violation) == 0 with input as f.with_inventory(f.crb("x", "exec", [f.user("a")]), _inv)
}

test_deployments_pass if {
	count(pod_create.violation) == 0 with input as f.with_inventory(f.crb("x", "apps", [f.user("a")]), _inv)
}

test_role_binding_counts if {
	count(pod_create.violation) == 1 with input as f.with_inventory(f.rb("team", "x", "ClusterRole", "deployer", [f.user("a")]), _inv)
}

test_admission_no_finding if {
	count(pod_create.violation) == 0 with input as f.crb("ci-deployer", "deployer", [f.sa("ci", "deployer")])
}
