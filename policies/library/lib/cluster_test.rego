package tollgate.lib.cluster_test

import data.tollgate.lib.cluster

test_inventory_absent_at_admission if {
	not cluster.inventory with input as {"object": {}}
	not cluster.inventory with input as {"inventory": "junk"}
	not cluster.complete with input as {"object": {}}
	count(cluster.namespaced("networkPolicies", "shop")) == 0 with input as {"object": {}}
}

test_complete_only_when_true if {
	cluster.complete with input as {"inventory": {"complete": true}}
	not cluster.complete with input as {"inventory": {"complete": false}}
	not cluster.complete with input as {"inventory": {"complete": "true"}}
	cluster.where == "" with input as {"inventory": {"complete": true}}
	cluster.where == " in the manifests given" with input as {"inventory": {"complete": false}}
}

test_namespaced_and_cluster_scoped_listings if {
	inv := {"inventory": {
		"networkPolicies": {"shop": {"deny": {"kind": "NetworkPolicy"}}, "junk": ["x"]},
		"clusterRoles": {"admin": {}},
		"roles": "junk",
	}}
	cluster.namespaced("networkPolicies", "shop") == {"deny": {"kind": "NetworkPolicy"}} with input as inv
	cluster.namespaced("networkPolicies", "junk") == {} with input as inv
	cluster.namespaced("networkPolicies", "other") == {} with input as inv
	cluster.namespaced("roles", "shop") == {} with input as inv
	cluster.cluster_scoped("clusterRoles") == {"admin": {}} with input as inv
	cluster.cluster_scoped("roles") == {} with input as inv
}

test_empty_selectors_select_all if {
	cluster.selects_all({})
	cluster.selects_all(null)
	cluster.selects_all({"matchLabels": {}, "matchExpressions": []})
	cluster.selects_all({"matchLabels": null})
	cluster.matches({}, {"app": "web"})
	cluster.matches(null, {})
	not cluster.selects_all({"matchLabels": {"app": "web"}})
	not cluster.selects_all({"matchExpressions": [{"key": "app", "operator": "Exists"}]})
}

test_malformed_selectors_select_nothing if {
	not cluster.valid_selector("app=web")
	not cluster.valid_selector([])
	not cluster.valid_selector({"matchLabels": "app=web"})
	not cluster.valid_selector({"matchLabels": {"app": 1}})
	not cluster.valid_selector({"matchExpressions": {"key": "app"}})
	not cluster.valid_selector({"matchExpressions": [{"key": "app", "operator": "In", "values": []}]})
	not cluster.valid_selector({"matchExpressions": [{"key": "app", "operator": "In"}]})
	not cluster.valid_selector({"matchExpressions": [{"key": "app", "operator": "Exists", "values": ["x"]}]})
	not cluster.valid_selector({"matchExpressions": [{"key": "app", "operator": "Equals", "values": ["x"]}]})
	not cluster.valid_selector({"matchExpressions": ["junk"]})
	not cluster.selects_all("")
	not cluster.matches("app=web", {"app": "web"})
	not cluster.matches({"matchLabels": {"app": ["web"]}}, {"app": "web"})
}

test_match_labels if {
	cluster.matches({"matchLabels": {"app": "web", "tier": "front"}}, {"app": "web", "tier": "front", "x": "y"})
	not cluster.matches({"matchLabels": {"app": "web", "tier": "front"}}, {"app": "web"})
	not cluster.matches({"matchLabels": {"app": "web"}}, {"app": "db"})
}

test_match_expressions if {
	sel := {"matchExpressions": [
		{"key": "env", "operator": "In", "values": ["prod", "staging"]},
		{"key": "team", "operator": "NotIn", "values": ["lab"]},
		{"key": "owner", "operator": "Exists"},
		{"key": "legacy", "operator": "DoesNotExist", "values": null},
	]}
	cluster.matches(sel, {"env": "prod", "owner": "a"})
	cluster.matches(sel, {"env": "staging", "team": "shop", "owner": ""})
	not cluster.matches(sel, {"env": "dev", "owner": "a"})
	not cluster.matches(sel, {"env": "prod", "team": "lab", "owner": "a"})
	not cluster.matches(sel, {"env": "prod"})
	not cluster.matches(sel, {"env": "prod", "owner": "a", "legacy": "true"})
}

test_not_in_excludes_by_name if {
	sel := {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", "shop"]}]}
	not cluster.matches(sel, cluster.namespace_labels({"metadata": {"name": "shop"}}))
	cluster.matches(sel, cluster.namespace_labels({"metadata": {"name": "web", "labels": {"a": "b"}}}))
}

test_namespace_labels if {
	cluster.namespace_labels({"metadata": {"name": "shop", "labels": {"team": "a", "bad": 3}}}) == {
		"team": "a",
		"kubernetes.io/metadata.name": "shop",
	}
	cluster.namespace_labels({"metadata": {"name": "shop", "labels": "junk"}}) == {"kubernetes.io/metadata.name": "shop"}
	not cluster.namespace_labels({"metadata": {"name": 7}})
}

test_describe_selector if {
	cluster.describe_selector({"matchLabels": {"app": "web"}}) == "app=web"
	cluster.describe_selector({
		"matchLabels": {"app": "web", "tier": "front"},
		"matchExpressions": [
			{"key": "env", "operator": "In", "values": ["prod", "staging"]},
			{"key": "team", "operator": "NotIn", "values": ["lab"]},
			{"key": "owner", "operator": "Exists"},
			{"key": "legacy", "operator": "DoesNotExist"},
		],
	}) == "app=web,tier=front,env in (prod,staging),team notin (lab),owner,!legacy"
}

test_describe_value if {
	cluster.describe_value("v1.x") == `"v1.x"`
	cluster.describe_value(3) == "3"
	cluster.describe_value(null) == "null"
	cluster.describe_value(["a"]) == "a value of type array"
	cluster.describe_value(concat("", ["a" | some _ in numbers.range(1, 100)])) == sprintf("%q...", [concat("", ["a" | some _ in numbers.range(1, 64)])])
}

test_list if {
	cluster.list(["a", "b"], 3) == "a, b"
	cluster.list(["a", "b", "c", "d"], 2) == "a, b and 2 more"
	cluster.list([], 3) == ""
}

test_parse_version if {
	cluster.parse_version("v1.35.2") == {"major": 1, "minor": 35}
	cluster.parse_version("v1.34.1-eks-4b5f7c1") == {"major": 1, "minor": 34}
	cluster.parse_version("v1.33.4+k3s1") == {"major": 1, "minor": 33}
	cluster.parse_version("1.36") == {"major": 1, "minor": 36}
	not cluster.parse_version("v1.x")
	not cluster.parse_version("v1")
	not cluster.parse_version("1.36 ")
	not cluster.parse_version("v01.36.0")
	not cluster.parse_version(1.36)
	not cluster.parse_version(null)
}

test_default_window_is_three_newest if {
	cluster.oldest_minor == 34
	cluster.window == "v1.34 to v1.36"
	not cluster.supported_minors_problem
	not cluster.version_problem("v1.34.0")
	not cluster.version_problem("v1.36.1")
	not cluster.version_problem("v1.37.0-alpha.1")
	cluster.version_problem("v1.33.9") == `"v1.33.9" is older than v1.34, the oldest minor release supported (supported: v1.34 to v1.36)`
	cluster.version_problem("v1.x") == `"v1.x" is not a Kubernetes version`
	cluster.version_problem("v2.1.0") == `"v2.1.0" is not a Kubernetes 1.x version (supported: v1.34 to v1.36)`
	cluster.version_problem(["v1.35.0"]) == "a value of type array is not a Kubernetes version"
}

test_window_from_parameter if {
	cfg := {"config": {"parameters": {"cluster": {"supportedMinors": 5}}}}
	cluster.window == "v1.32 to v1.36" with input as cfg
	not cluster.version_problem("v1.32.0") with input as cfg
	cluster.version_problem("v1.31.0") with input as cfg
	cluster.window == "v1.36" with input as {"config": {"parameters": {"cluster": {"supportedMinors": 1}}}}
}

test_malformed_parameter_is_reported_and_defaulted if {
	every bad in [0, 2.5, "3", -1, []] {
		cluster.supported_minors == 3 with input as {"config": {"parameters": {"cluster": {"supportedMinors": bad}}}}
		cluster.supported_minors_problem with input as {"config": {"parameters": {"cluster": {"supportedMinors": bad}}}}
	}
	cluster.supported_minors_problem == "parameters.cluster.supportedMinors is \"3\", not a whole number of minor releases from 1; judged with 3" with input as {"config": {"parameters": {"cluster": {"supportedMinors": "3"}}}}
}

test_credential_names if {
	every n in [
		"DB_PASSWORD", "dbPassword", "PASSWD", "ssh-passphrase", "JWT_SECRET", "jwtSecret",
		"SECRET_KEY_BASE", "GITHUB_TOKEN", "apiKey", "API_KEY", "X-Api-Keys", "APIKEY",
		"private.key", "privateKey", "credentials.json", "AWS_SECRET_ACCESS_KEY", "Client Secret",
	] {
		cluster.credential_name(n)
	}
	every n in [
		"TOKENIZERS_PARALLELISM", "SECRET_NAME", "secretName", "DB_PASSWORD_FILE", "passwordPath",
		"TOKEN_URL", "token-endpoint", "API_KEY_HEADER_NAME", "MODE", "tls.key", "KEYCLOAK_HOST",
		"AWS_ACCESS_KEY_ID", "PRIVATE", "", "secrets_dir",
	] {
		not cluster.credential_name(n)
	}
	not cluster.credential_name(["PASSWORD"])
	not cluster.credential_name(null)
}

test_words if {
	cluster.words("dbPassword_FILE") == ["db", "password", "file"]
	cluster.words("--a..b--") == ["a", "b"]
	cluster.words("") == []
}

test_literal_values if {
	cluster.literal("hunter2")
	cluster.literal("user:$(DB_PASSWORD)")
	cluster.literal(12345)
	cluster.literal(["a"])
	cluster.literal(false)
	not cluster.literal("")
	not cluster.literal("  ")
	not cluster.literal("$(DB_PASSWORD)")
	not cluster.literal("${DB_PASSWORD}")
	not cluster.literal(" $(A)${B} ")
	not cluster.literal(null)
}
