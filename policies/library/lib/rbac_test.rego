package tollgate.lib.rbac_test

import data.tollgate.lib.rbac

_rule(verbs, groups, resources) := {"verbs": verbs, "apiGroups": groups, "resources": resources}

# grants: verbs, groups and resources, exact and wildcard.

test_grants_exact if {
	rbac.grants([_rule(["get"], [""], ["secrets"])], "get", "", "secrets")
}

test_grants_other_verb_no if {
	not rbac.grants([_rule(["get"], [""], ["secrets"])], "list", "", "secrets")
}

test_grants_other_group_no if {
	not rbac.grants([_rule(["get"], ["apps"], ["secrets"])], "get", "", "secrets")
}

test_grants_wildcard_verb if {
	rbac.grants([_rule(["*"], [""], ["pods"])], "create", "", "pods")
}

test_grants_wildcard_group if {
	rbac.grants([_rule(["create"], ["*"], ["pods"])], "create", "", "pods")
}

test_grants_wildcard_resource_reaches_subresources if {
	rbac.grants([_rule(["get"], [""], ["*"])], "get", "", "nodes/proxy")
}

test_grants_resource_does_not_reach_subresource if {
	not rbac.grants([_rule(["get"], [""], ["nodes"])], "get", "", "nodes/proxy")
}

test_grants_star_subresource if {
	rbac.grants([_rule(["get"], [""], ["*/proxy"])], "get", "", "nodes/proxy")
	rbac.grants([_rule(["create"], [""], ["*/token"])], "create", "", "serviceaccounts/token")
	not rbac.grants([_rule(["get"], [""], ["*/proxy"])], "get", "", "nodes")
	not rbac.grants([_rule(["get"], [""], ["*/status"])], "get", "", "nodes/proxy")
}

test_grants_subresource_exact if {
	rbac.grants([_rule(["update"], ["certificates.k8s.io"], ["certificatesigningrequests/approval"])], "update", "certificates.k8s.io", "certificatesigningrequests/approval")
	not rbac.grants([_rule(["update"], ["certificates.k8s.io"], ["certificatesigningrequests"])], "update", "certificates.k8s.io", "certificatesigningrequests/approval")
}

test_grants_case_sensitive if {
	not rbac.grants([_rule(["GET"], [""], ["Secrets"])], "get", "", "secrets")
}

test_grants_non_resource_rule_grants_no_resource if {
	not rbac.grants([{"verbs": ["*"], "nonResourceURLs": ["*"]}], "get", "", "secrets")
}

test_grants_resource_names_do_not_limit if {
	rbac.grants([object.union(_rule(["get"], [""], ["secrets"]), {"resourceNames": ["one"]})], "get", "", "secrets")
}

test_grants_any_rule_of_several if {
	rbac.grants([_rule(["get"], [""], ["pods"]), _rule(["watch"], [""], ["secrets"])], "watch", "", "secrets")
}

test_grants_malformed_rules if {
	# A non-string verb is ignored, the others still count.
	rbac.grants([_rule([5, null, "get"], [""], ["secrets"])], "get", "", "secrets")
	not rbac.grants([_rule([5, true], [""], ["secrets"])], "get", "", "secrets")

	# A single string where a list belongs is read as that one entry.
	rbac.grants([_rule("*", "", "secrets")], "list", "", "secrets")

	# A single rule object instead of a list is still read.
	rbac.grants(_rule(["get"], [""], ["secrets"]), "get", "", "secrets")

	# Rules that are not objects grant nothing, and do not fail.
	not rbac.grants(["*", 3, null], "get", "", "secrets")
	not rbac.grants("nonsense", "get", "", "secrets")
	not rbac.grants(null, "get", "", "secrets")
}

test_granted_verbs_in_order if {
	rbac.granted_verbs([_rule(["watch", "get"], [""], ["secrets"])], ["get", "list", "watch"], "", "secrets") == ["get", "watch"]
}

test_grants_large_rule_list if {
	rules := [_rule(["get"], [""], [sprintf("r%d", [i])]) | some i in numbers.range(1, 2000)]
	rbac.grants(rules, "get", "", "r1999")
	not rbac.grants(rules, "get", "", "secrets")
}

# role_rules: Roles, ClusterRoles and aggregation.

_inventory := {
	"complete": true,
	"roles": {"team": {"reader": {"kind": "Role", "metadata": {"name": "reader", "namespace": "team"}, "rules": [_rule(["get"], [""], ["secrets"])]}}},
	"clusterRoles": {
		"deployer": {"metadata": {"name": "deployer"}, "rules": [_rule(["create"], [""], ["pods"])]},
		"monitoring": {
			"metadata": {"name": "monitoring"},
			"aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"example.com/aggregate-to-monitoring": "true"}}]},
			"rules": [],
		},
		"secret-peek": {
			"metadata": {"name": "secret-peek", "labels": {"example.com/aggregate-to-monitoring": "true"}},
			"rules": [_rule(["list"], [""], ["secrets"])],
		},
		"top": {
			"metadata": {"name": "top"},
			"aggregationRule": {"clusterRoleSelectors": [{"matchExpressions": [{"key": "tier", "operator": "In", "values": ["mid"]}]}]},
		},
		"mid": {
			"metadata": {"name": "mid", "labels": {"tier": "mid", "example.com/aggregate-to-monitoring": "false"}},
			"aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"example.com/aggregate-to-monitoring": "true"}}]},
		},
		"loop": {
			"metadata": {"name": "loop", "labels": {"loop": "yes"}},
			"aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"loop": "yes"}}]},
			"rules": [_rule(["get"], [""], ["configmaps"])],
		},
	},
}

_binding(kind, ns, ref_kind, ref_name) := {
	"kind": kind,
	"metadata": {"name": "b", "namespace": ns},
	"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": ref_kind, "name": ref_name},
}

test_role_rules_role_in_namespace if {
	rules := rbac.role_rules(_binding("RoleBinding", "team", "Role", "reader")) with input as {"inventory": _inventory}
	rbac.grants(rules, "get", "", "secrets")
}

test_role_rules_role_other_namespace_undefined if {
	not rbac.role_rules(_binding("RoleBinding", "other", "Role", "reader")) with input as {"inventory": _inventory}
}

test_role_rules_cluster_binding_cannot_name_role if {
	not rbac.role_rules(_binding("ClusterRoleBinding", "", "Role", "reader")) with input as {"inventory": _inventory}
}

test_role_rules_role_binding_to_cluster_role if {
	rules := rbac.role_rules(_binding("RoleBinding", "team", "ClusterRole", "deployer")) with input as {"inventory": _inventory}
	rbac.grants(rules, "create", "", "pods")
}

test_role_rules_missing_role_undefined if {
	not rbac.role_rules(_binding("ClusterRoleBinding", "", "ClusterRole", "nowhere")) with input as {"inventory": _inventory}
}

test_role_rules_no_inventory_undefined if {
	not rbac.role_rules(_binding("ClusterRoleBinding", "", "ClusterRole", "deployer")) with input as {}
}

test_role_rules_aggregated_empty_rules if {
	rules := rbac.role_rules(_binding("ClusterRoleBinding", "", "ClusterRole", "monitoring")) with input as {"inventory": _inventory}
	rbac.grants(rules, "list", "", "secrets")
}

test_role_rules_aggregation_through_another_aggregating_role if {
	rules := rbac.role_rules(_binding("ClusterRoleBinding", "", "ClusterRole", "top")) with input as {"inventory": _inventory}
	rbac.grants(rules, "list", "", "secrets")
	not rbac.grants(rules, "create", "", "pods")
}

test_role_rules_aggregation_cycle_terminates if {
	rules := rbac.role_rules(_binding("ClusterRoleBinding", "", "ClusterRole", "loop")) with input as {"inventory": _inventory}
	rbac.grants(rules, "get", "", "configmaps")
}

test_role_rules_not_aggregating_has_own_rules_only if {
	rules := rbac.role_rules(_binding("ClusterRoleBinding", "", "ClusterRole", "secret-peek")) with input as {"inventory": _inventory}
	count(rules) == 1
}

# selects: label selectors.

test_selects if {
	rbac.selects({}, {"a": "1"})
	rbac.selects({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"})
	not rbac.selects({"matchLabels": {"a": "1"}}, {"a": "2"})
	rbac.selects({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "3"]}]}, {"a": "3"})
	not rbac.selects({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]}, {})
	rbac.selects({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {})
	rbac.selects({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {"a": "2"})
	not rbac.selects({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {"a": "1"})
	rbac.selects({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""})
	not rbac.selects({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"b": ""})
	rbac.selects({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"b": ""})
	not rbac.selects({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": ""})
	not rbac.selects({"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "Exists"}]}, {"a": "1"})
}

test_selects_malformed_matches_nothing if {
	not rbac.selects({"matchExpressions": [{"key": "a", "operator": "Like"}]}, {"a": "1"})
	not rbac.selects({"matchExpressions": "a=1"}, {"a": "1"})
	not rbac.selects({"matchLabels": ["a"]}, {"a": "1"})
	not rbac.selects("a=1", {"a": "1"})
}

# subjects and risky_subjects.

_crb(name, labels, subjects) := {
	"kind": "ClusterRoleBinding",
	"metadata": {"name": name, "labels": labels},
	"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
	"subjects": subjects,
}

_defaults := {"kubernetes.io/bootstrapping": "rbac-defaults"}

test_risky_subjects_described if {
	b := {
		"kind": "RoleBinding", "metadata": {"name": "b", "namespace": "team"},
		"subjects": [
			{"kind": "User", "name": "alice"},
			{"kind": "Group", "name": "devs"},
			{"kind": "ServiceAccount", "name": "deployer"},
			{"kind": "ServiceAccount", "name": "bot", "namespace": "ci"},
		],
	}
	{s.desc | some s in rbac.risky_subjects(b)} == {`User "alice"`, `Group "devs"`, `ServiceAccount "team/deployer"`, `ServiceAccount "ci/bot"`}
	{s.path | some s in rbac.risky_subjects(b)} == {["subjects", 0], ["subjects", 1], ["subjects", 2], ["subjects", 3]}
}

test_bootstrap_default_skipped if {
	count(rbac.risky_subjects(_crb("system:basic-user", _defaults, [{"kind": "Group", "name": "system:authenticated"}]))) == 0
}

test_bootstrap_needs_label_and_name if {
	count(rbac.risky_subjects(_crb("system:basic-user", {}, [{"kind": "Group", "name": "system:authenticated"}]))) == 1
	count(rbac.risky_subjects(_crb("basic-user", _defaults, [{"kind": "Group", "name": "system:authenticated"}]))) == 1
}

test_bootstrap_lookalike_with_a_person_reported if {
	s := rbac.risky_subjects(_crb("system:sneaky", _defaults, [{"kind": "Group", "name": "system:nodes"}, {"kind": "User", "name": "mallory"}]))
	{x.desc | some x in s} == {`User "mallory"`}
}

test_cluster_admin_bootstrap_binding if {
	b := object.union(_crb("cluster-admin", _defaults, [{"kind": "Group", "name": "system:masters"}, {"kind": "User", "name": "bob"}]), {"roleRef": {"kind": "ClusterRole", "name": "cluster-admin"}})
	{x.desc | some x in rbac.risky_subjects(b)} == {`User "bob"`}
}

test_allowed_subjects if {
	b := _crb("ops", {}, [{"kind": "Group", "name": "breakglass"}, {"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "argo", "namespace": "argocd"}])
	cfg := {"config": {"parameters": {"rbac": {"allowedSubjects": ["Group:breakglass", "ServiceAccount:argocd/argo", 7]}}}}
	{x.desc | some x in rbac.risky_subjects(b)} == {`User "alice"`} with input as cfg
}

test_allowed_subjects_malformed_config_ignored if {
	b := _crb("ops", {}, [{"kind": "User", "name": "alice"}])
	count(rbac.risky_subjects(b)) == 1 with input as {"config": {"parameters": {"rbac": {"allowedSubjects": {"User:alice": true}}}}}
}

test_subjects_not_a_list if {
	s := rbac.risky_subjects(_crb("x", {}, "alice"))
	s == {{"path": ["subjects"], "desc": "subjects that cannot be read (subjects is not a list)", "kind": "", "name": "", "namespace": "", "own": false}}
}

test_subjects_single_object_read if {
	{x.desc | some x in rbac.risky_subjects(_crb("x", {}, {"kind": "User", "name": "alice"}))} == {`User "alice"`}
}

test_subjects_unreadable_entries_reported if {
	s := rbac.risky_subjects(_crb("x", {}, [{"kind": "User", "name": 5}, "bob", {"kind": "Robot", "name": "r2"}]))
	count(s) == 3
	every x in s {
		startswith(x.desc, "a subject that cannot be read")
	}
}

test_no_subjects if {
	count(rbac.risky_subjects(_crb("x", {}, null))) == 0
	count(rbac.risky_subjects(_crb("x", {}, []))) == 0
	count(rbac.risky_subjects(object.remove(_crb("x", {}, []), ["subjects"]))) == 0
}

test_subject_odd_names if {
	{x.desc | some x in rbac.risky_subjects(_crb("x", {}, [{"kind": "User", "name": "a\"b\n"}]))} == {`User "a\"b\n"`}
}

test_describe_binding if {
	rbac.describe_binding({"kind": "RoleBinding", "metadata": {"name": "r", "namespace": "team"}}) == `RoleBinding "r" in namespace "team"`
	rbac.describe_binding({"kind": "ClusterRoleBinding", "metadata": {"name": "c"}}) == `ClusterRoleBinding "c"`
}
