package tollgate.cluster.secrets_in_plain_env_test

import data.tollgate.cluster.secrets_in_plain_env

test_references_and_harmless_names_allowed if {
	count(secrets_in_plain_env.violation) == 0 with input as {"pod": {"spec": {"containers": [{
		"name": "app",
		"env": [
			{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
			{"name": "DB_PASSWORD_FILE", "value": "/var/run/secrets/db/password"},
			{"name": "SECRET_NAME", "value": "db"},
			{"name": "TOKENIZERS_PARALLELISM", "value": "false"},
			{"name": "API_TOKEN", "value": "$(DB_PASSWORD)"},
			{"name": "EMPTY_TOKEN", "value": ""},
			{"name": "NULL_TOKEN", "value": null},
		],
	}]}}}
}

test_literal_credential_denied_without_its_value if {
	v := secrets_in_plain_env.violation with input as {"pod": {"spec": {
		"containers": [{"name": "app", "env": [
			{"name": "MODE", "value": "prod"},
			{"name": "DB_PASSWORD", "value": "hunter2"},
		]}],
		"initContainers": [{"name": "seed", "env": [{"name": "apiKey", "value": "AKIA-not-real"}]}],
	}}}
	v == {
		{
			"msg": `container "app" sets environment variable "DB_PASSWORD" to a literal value, and its name says it holds a credential`,
			"path": ["spec", "containers", 0, "env", 1, "value"],
		},
		{
			"msg": `init container "seed" sets environment variable "apiKey" to a literal value, and its name says it holds a credential`,
			"path": ["spec", "initContainers", 0, "env", 0, "value"],
		},
	}
	every x in v {
		not contains(x.msg, "hunter2")
		not contains(x.msg, "AKIA")
	}
}

test_malformed_values_do_not_pass if {
	v := secrets_in_plain_env.violation with input as {"pod": {"spec": {"containers": [{
		"name": "app",
		"env": [
			{"name": "PIN_PASSWORD", "value": 1234},
			{"name": "TOKEN", "value": ["a", "b"]},
			{"name": "a\"odd\nsecret", "value": "x"},
			"junk",
			{"name": 7, "value": "x"},
		],
	}]}}}
	{x.path | some x in v} == {
		["spec", "containers", 0, "env", 0, "value"],
		["spec", "containers", 0, "env", 1, "value"],
		["spec", "containers", 0, "env", 2, "value"],
	}
}

test_many_variables if {
	env := [{"name": sprintf("TOKEN_%d", [i]), "value": "x"} | some i in numbers.range(1, 500)]
	count(secrets_in_plain_env.violation) == 500 with input as {"pod": {"spec": {"containers": [{"name": "app", "env": env}]}}}
}
