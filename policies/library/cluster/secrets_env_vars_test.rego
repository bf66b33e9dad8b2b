package tollgate.cluster.secrets_env_vars_test

import data.tollgate.cluster.secrets_env_vars

test_literal_and_config_map_env_allowed if {
	count(secrets_env_vars.violation) == 0 with input as {"pod": {"spec": {"containers": [{
		"name": "app",
		"env": [
			{"name": "MODE", "value": "prod"},
			{"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "level"}}},
			{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
			{"name": "NULLREF", "valueFrom": {"secretKeyRef": null}},
		],
		"envFrom": [{"configMapRef": {"name": "cfg"}}],
	}]}}}
}

test_secret_key_ref_denied if {
	secrets_env_vars.violation == {{
		"msg": `container "app" takes key "password" of Secret "db" as environment variable "DB_PASSWORD"`,
		"path": ["spec", "containers", 1, "env", 1, "valueFrom", "secretKeyRef"],
	}} with input as {"pod": {"spec": {"containers": [
		{"name": "proxy"},
		{"name": "app", "env": [
			{"name": "MODE", "value": "prod"},
			{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
		]},
	]}}}
}

test_env_from_secret_denied_in_every_container_kind if {
	v := secrets_env_vars.violation with input as {"pod": {"spec": {
		"initContainers": [{"name": "migrate", "envFrom": [{"prefix": "DB_", "secretRef": {"name": "db"}}]}],
		"containers": [{"name": "app"}],
		"ephemeralContainers": [{"name": "debug", "env": [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "tok", "key": "t"}}}]}],
	}}}
	v == {
		{
			"msg": `init container "migrate" takes every key of Secret "db" as environment variables (envFrom)`,
			"path": ["spec", "initContainers", 0, "envFrom", 0, "secretRef"],
		},
		{
			"msg": `ephemeral container "debug" takes key "t" of Secret "tok" as environment variable "T"`,
			"path": ["spec", "ephemeralContainers", 0, "env", 0, "valueFrom", "secretKeyRef"],
		},
	}
}

test_malformed_references_are_still_found if {
	v := secrets_env_vars.violation with input as {"pod": {"spec": {"containers": [{
		"name": "app",
		"env": [
			{"name": ["x"], "valueFrom": {"secretKeyRef": "db"}},
			"junk",
			{"name": "A", "valueFrom": {"secretKeyRef": {"name": 5, "key": {"k": 1}}}},
		],
		"envFrom": [{"secretRef": {}}],
	}]}}}
	{x.msg | some x in v} == {
		`container "app" takes a Secret as environment variable a value of type array`,
		`container "app" takes a Secret as environment variable "A"`,
		`container "app" takes every key of a Secret as environment variables (envFrom)`,
	}
}

test_env_not_a_list_is_reported if {
	secrets_env_vars.violation == {
		{
			"msg": `container "app" has env that is not a list, so whether it takes a Secret cannot be told`,
			"path": ["spec", "containers", 0, "env"],
		},
		{
			"msg": `container "app" has envFrom that is not a list, so whether it takes a Secret cannot be told`,
			"path": ["spec", "containers", 0, "envFrom"],
		},
	} with input as {"pod": {"spec": {"containers": [
		{"name": "app", "env": {"DB_PASSWORD": {"valueFrom": {"secretKeyRef": {"name": "db"}}}}, "envFrom": "db"},
		{"name": "sidecar", "env": null},
	]}}}
}
