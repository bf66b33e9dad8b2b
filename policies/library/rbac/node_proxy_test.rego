package tollgate.rbac.node_proxy_test

import data.tollgate.rbac.fixtures_test as f
import data.tollgate.rbac.node_proxy

_inv := f.inventory({
	"proxy-get": [f.rule(["get"], [""], ["nodes/proxy"])],
	"any-proxy": [f.rule(["*"], [""], ["*/proxy"])],
	"metrics": [f.rule(["get"], [""], ["nodes/metrics", "nodes/stats", "nodes"])],
	"proxy-list": [f.rule(["list"], [""], ["nodes/proxy"])],
}, {})

test_get_on_nodes_proxy if {
	node_proxy.violation == {{
		"msg": `ClusterRoleBinding "mon" grants get on nodes/proxy to ServiceAccount "monitoring/agent" through ClusterRole "proxy-get"`,
		"path": ["subjects", 0],
	}} with input as f.with_inventory(f.crb("mon", "proxy-get", [f.sa("monitoring", "agent")]), _inv)
}

test_wildcard_verbs_and_star_subresource if {
	some v in node_proxy.violation with input as f.with_inventory(f.crb("mon", "any-proxy", [f.user("a")]), _inv)
	v.msg == `ClusterRoleBinding "mon" grants get, create on nodes/proxy to User "a" through ClusterRole "any-proxy"`
}

test_metrics_and_nodes_pass if {
	count(node_proxy.violation) == 0 with input as f.with_inventory(f.crb("mon", "metrics", [f.user("a")]), _inv)
	count(node_proxy.violation) == 0 with input as f.with_inventory(f.crb("mon", "proxy-list", [f.user("a")]), _inv)
}

test_role_binding_cannot_grant_nodes if {
	count(node_proxy.violation) == 0 with input as f.with_inventory(f.rb("team", "mon", "ClusterRole", "proxy-get", [f.user("a")]), _inv)
}
