package tollgate.rbac.persistent_volume_create_test

import data.tollgate.rbac.fixtures_test as f
import data.tollgate.rbac.persistent_volume_create as pv

_inv := f.inventory({
	"pv-maker": [f.rule(["create", "delete"], [""], ["persistentvolumes"])],
	"pvc-maker": [f.rule(["create"], [""], ["persistentvolumeclaims"])],
}, {})

test_cluster_binding if {
	pv.violation == {{
		"msg": `ClusterRoleBinding "storage" grants create on persistentvolumes to User "alice" through ClusterRole "pv-maker"`,
		"path": ["subjects", 0],
	}} with input as f.with_inventory(f.crb("storage", "pv-maker", [f.user("alice")]), _inv)
}

test_role_binding_cannot_grant_cluster_scoped if {
	count(pv.violation) == 0 with input as f.with_inventory(f.rb("team", "storage", "ClusterRole", "pv-maker", [f.user("alice")]), _inv)
}

test_claims_pass if {
	count(pv.violation) == 0 with input as f.with_inventory(f.crb("storage", "pvc-maker", [f.user("alice")]), _inv)
}
