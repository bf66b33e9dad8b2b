package tollgate.cluster.network_policies_test

import data.tollgate.cluster.network_policies

_np(name, spec) := {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": "shop"}, "spec": spec}

_in(policies, complete) := {
	"kind": {"kind": "Namespace"},
	"object": {"kind": "Namespace", "metadata": {"name": "shop"}},
	"inventory": {"complete": complete, "networkPolicies": {"shop": {p.metadata.name: p | some p in policies}}},
}

_deny_all := _np("default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})

test_default_deny_allowed if {
	count(network_policies.violation) == 0 with input as _in([_deny_all], true)
	count(network_policies.violation) == 0 with input as _in([_deny_all, _np("allow-web", {"podSelector": {"matchLabels": {"app": "web"}}})], false)
}

test_ingress_implied_without_policy_types if {
	count(network_policies.violation) == 0 with input as _in([_np("deny", {"podSelector": {}})], true)
	count(network_policies.violation) == 0 with input as _in([_np("deny", {"podSelector": {"matchLabels": {}, "matchExpressions": []}, "egress": [{}]})], true)
	count(network_policies.violation) == 0 with input as _in([_np("deny", {"podSelector": null})], true)
}

test_no_finding_at_admission if {
	count(network_policies.violation) == 0 with input as {"operation": "CREATE", "object": {"kind": "Namespace", "metadata": {"name": "shop"}}}
}

test_no_network_policy_denied if {
	network_policies.violation == {{"msg": `Namespace "shop" has no NetworkPolicy: its pods accept traffic from every pod in the cluster`}} with input as _in([], true)
	network_policies.violation == {{"msg": `Namespace "shop" has no NetworkPolicy in the manifests given: its pods accept traffic from every pod in the cluster`}} with input as _in([], false)
	count(network_policies.violation) == 1 with input as {"object": {"metadata": {"name": "shop"}}, "inventory": {"complete": true}}
}

test_partial_selector_denied if {
	network_policies.violation == {{"msg": `Namespace "shop" has no NetworkPolicy that selects every pod for ingress: NetworkPolicy "allow-web" selects only pods matching app=web`}} with input as _in([_np("allow-web", {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]})], true)
}

test_selector_matching_no_pod_denied if {
	network_policies.violation == {{"msg": `Namespace "shop" has no NetworkPolicy that selects every pod for ingress in the manifests given: NetworkPolicy "deny-all" selects only pods matching role notin (a),!role`}} with input as _in([_np("deny-all", {"podSelector": {"matchExpressions": [
		{"key": "role", "operator": "NotIn", "values": ["a"]},
		{"key": "role", "operator": "DoesNotExist"},
	]}})], false)
}

test_egress_only_default_deny_denied if {
	network_policies.violation == {{"msg": `Namespace "shop" has no NetworkPolicy that selects every pod for ingress: NetworkPolicy "deny-egress" selects every pod but only for Egress, not Ingress`}} with input as _in([_np("deny-egress", {"podSelector": {}, "policyTypes": ["Egress"]})], true)
}

test_every_reason_listed_in_name_order if {
	v := network_policies.violation with input as _in([
		_np("b-egress", {"podSelector": {}, "policyTypes": ["Egress"]}),
		_np("a-web", {"podSelector": {"matchLabels": {"app": "web"}}}),
	], true)
	v == {{"msg": `Namespace "shop" has no NetworkPolicy that selects every pod for ingress: NetworkPolicy "a-web" selects only pods matching app=web, NetworkPolicy "b-egress" selects every pod but only for Egress, not Ingress`}}
}

test_malformed_policies_do_not_pass if {
	v := network_policies.violation with input as _in([
		_np("a-string", {"podSelector": "app=web"}),
		_np("b-types", {"podSelector": {}, "policyTypes": "Ingress"}),
		_np("c-nospec", null),
		_np("d-empty-types", {"podSelector": {}, "policyTypes": []}),
		_np("e-bad-expr", {"podSelector": {"matchExpressions": [{"key": "app", "operator": "In"}]}}),
	], true)
	v == {{"msg": concat("", [
		`Namespace "shop" has no NetworkPolicy that selects every pod for ingress: `,
		`NetworkPolicy "a-string" has a podSelector that is not a label selector ("app=web"), `,
		`NetworkPolicy "b-types" has policyTypes that is not a list ("Ingress"), `,
		`NetworkPolicy "c-nospec" has no spec, `,
		`NetworkPolicy "d-empty-types" selects every pod but only for no traffic, not Ingress, `,
		`NetworkPolicy "e-bad-expr" has a podSelector that is not a label selector (a value of type object)`,
	])}}
}

test_many_policies_are_cut_short if {
	policies := [_np(sprintf("p%03d", [i]), {"podSelector": {"matchLabels": {"app": sprintf("a%d", [i])}}}) | some i in numbers.range(1, 300)]
	v := network_policies.violation with input as _in(policies, true)
	count(v) == 1
	some x in v
	endswith(x.msg, "and 295 more")
}
