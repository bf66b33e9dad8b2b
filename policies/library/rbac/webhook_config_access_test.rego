package tollgate.rbac.webhook_config_access_test

import data.tollgate.rbac.fixtures_test as f
import data.tollgate.rbac.webhook_config_access as webhooks

_g := "admissionregistration.k8s.io"

_inv := f.inventory({
	"webhook-admin": [f.rule(["create", "delete"], [_g], ["validatingwebhookconfigurations"]), f.rule(["patch"], [_g], ["mutatingwebhookconfigurations"])],
	"webhook-reader": [f.rule(["get", "list", "watch"], [_g], ["*"])],
}, {})

test_write_access if {
	webhooks.violation == {{
		"msg": `ClusterRoleBinding "w" grants create, delete on validatingwebhookconfigurations; patch on mutatingwebhookconfigurations to ServiceAccount "ops/operator" through ClusterRole "webhook-admin"`,
		"path": ["subjects", 0],
	}} with input as f.with_inventory(f.crb("w", "webhook-admin", [f.sa("ops", "operator")]), _inv)
}

test_read_access_passes if {
	count(webhooks.violation) == 0 with input as f.with_inventory(f.crb("w", "webhook-reader", [f.sa("ops", "operator")]), _inv)
}
