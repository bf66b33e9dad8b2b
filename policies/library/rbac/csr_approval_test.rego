package tollgate.rbac.csr_approval_test

import data.tollgate.rbac.csr_approval
import data.tollgate.rbac.fixtures_test as f

_g := "certificates.k8s.io"

_inv := f.inventory({
	"approver": [f.rule(["update"], [_g], ["certificatesigningrequests/approval"])],
	"csr-admin": [f.rule(["*"], [_g], ["*"])],
	"requester": [f.rule(["create", "get", "update"], [_g], ["certificatesigningrequests"])],
}, {})

test_update_approval if {
	csr_approval.violation == {{
		"msg": `ClusterRoleBinding "approvers" grants update on certificatesigningrequests/approval to Group "pki" through ClusterRole "approver"`,
		"path": ["subjects", 0],
	}} with input as f.with_inventory(f.crb("approvers", "approver", [f.group("pki")]), _inv)
}

test_wildcards if {
	some v in csr_approval.violation with input as f.with_inventory(f.crb("a", "csr-admin", [f.group("pki")]), _inv)
	contains(v.msg, "grants update, patch on certificatesigningrequests/approval")
}

test_requesting_passes if {
	count(csr_approval.violation) == 0 with input as f.with_inventory(f.crb("r", "requester", [f.group("pki")]), _inv)
}
