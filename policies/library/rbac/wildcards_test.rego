package tollgate.rbac.wildcards_test

import data.tollgate.rbac.fixtures_test as f
import data.tollgate.rbac.wildcards

_role(kind, name, ns, labels, rules) := {
	"kind": {"group": "rbac.authorization.k8s.io", "version": "v1", "kind": kind},
	"object": {"kind": kind, "metadata": {"name": name, "namespace": ns, "labels": labels}, "rules": rules},
}

_cr(name, rules) := _role("ClusterRole", name, "", {}, rules)

_defaults := {"kubernetes.io/bootstrapping": "rbac-defaults"}

test_wildcard_verbs if {
	wildcards.violation == {{
		"msg": `ClusterRole "ops" grants every verb with wildcard verbs (verbs: "*") in rules[0]`,
		"path": ["rules", 0, "verbs"],
	}} with input as _cr("ops", [f.rule(["*"], [""], ["pods"])])
}

test_wildcard_resources if {
	wildcards.violation == {{
		"msg": `ClusterRole "ops" grants every resource with wildcard resources (resources: "*") in rules[1]`,
		"path": ["rules", 1, "resources"],
	}} with input as _cr("ops", [f.rule(["get"], [""], ["pods"]), f.rule(["get"], [""], ["*"])])
}

test_wildcard_api_groups if {
	wildcards.violation == {{
		"msg": `Role "ops" in namespace "team" grants every API group with wildcard apiGroups (apiGroups: "*") in rules[0]`,
		"path": ["rules", 0, "apiGroups"],
	}} with input as _role("Role", "ops", "team", {}, [f.rule(["get"], ["*"], ["pods"])])
}

test_all_three_are_three_findings if {
	paths := {v.path | some v in wildcards.violation} with input as _cr("root", [f.rule(["*"], ["*"], ["*"])])
	paths == {["rules", 0, "verbs"], ["rules", 0, "resources"], ["rules", 0, "apiGroups"]}
}

test_star_subresource if {
	some v in wildcards.violation with input as _cr("scaler", [f.rule(["update"], ["apps"], ["*/scale"])])
	v.msg == `ClusterRole "scaler" grants the scale subresource of every resource with wildcard resources (resources: "*/scale") in rules[0]`
}

test_named_rules_pass if {
	count(wildcards.violation) == 0 with input as _cr("reader", [f.rule(["get", "list"], ["", "apps"], ["pods", "deployments", "pods/log"])])
}

test_bootstrap_defaults_skipped if {
	count(wildcards.violation) == 0 with input as _role("ClusterRole", "cluster-admin", "", _defaults, [f.rule(["*"], ["*"], ["*"])])
	count(wildcards.violation) == 0 with input as _role("ClusterRole", "system:controller:x", "", _defaults, [f.rule(["*"], ["*"], ["*"])])
}

test_lookalikes_reported if {
	count(wildcards.violation) == 3 with input as _cr("cluster-admin", [f.rule(["*"], ["*"], ["*"])])
	count(wildcards.violation) == 3 with input as _role("ClusterRole", "my-admin", "", _defaults, [f.rule(["*"], ["*"], ["*"])])
}

test_aggregating_role_judged_on_stored_rules if {
	agg := object.union(_cr("monitoring", []), {"object": {"aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]}}})
	count(wildcards.violation) == 0 with input as agg
	count(wildcards.violation) == 1 with input as object.union(agg, {"object": {"rules": [f.rule(["*"], [""], ["pods"])]}})
}

test_non_resource_url_verbs if {
	some v in wildcards.violation with input as _cr("health", [{"verbs": ["*"], "nonResourceURLs": ["/healthz"]}])
	v.path == ["rules", 0, "verbs"]
}

test_malformed_rules_not_silent if {
	# verbs as a single string, a rule that is an object rather than a list,
	# non-string entries and rules that are not objects.
	count(wildcards.violation) == 1 with input as _cr("odd", [{"verbs": "*", "apiGroups": [""], "resources": ["pods"]}, "junk", 5])
	count(wildcards.violation) == 1 with input as _cr("odd", [f.rule([1, {"a": "*"}, "*"], [""], ["pods"])])
	wildcards.violation == {{
		"msg": `ClusterRole "odd" grants every verb with wildcard verbs (verbs: "*") in rules`,
		"path": ["rules", "verbs"],
	}} with input as _cr("odd", f.rule(["*"], [""], ["pods"]))
	count(wildcards.violation) == 0 with input as _cr("odd", "*")
}

test_deleted_passes if {
	count(wildcards.violation) == 0 with input as f.deleted(_cr("ops", [f.rule(["*"], [""], ["pods"])]))
}

test_bindings_ignored if {
	count(wildcards.violation) == 0 with input as f.crb("x", "cluster-admin", [f.user("a")])
}
