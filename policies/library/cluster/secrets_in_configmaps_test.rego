package tollgate.cluster.secrets_in_configmaps_test

import data.tollgate.cluster.secrets_in_configmaps

_cm(fields) := {"kind": {"kind": "ConfigMap"}, "object": object.union({"metadata": {"name": "app"}}, fields)}

test_plain_configuration_allowed if {
	count(secrets_in_configmaps.violation) == 0 with input as _cm({"data": {
		"MODE": "prod",
		"SECRET_NAME": "db",
		"tokenUrl": "https://auth.example.com/token",
		"password": "",
		"DB_PASSWORD": "${DB_PASSWORD}",
	}})
	count(secrets_in_configmaps.violation) == 0 with input as _cm({"data": "junk"})
	count(secrets_in_configmaps.violation) == 0 with input as _cm({})
}

test_credential_keys_denied if {
	v := secrets_in_configmaps.violation with input as _cm({
		"data": {"DB_PASSWORD": "hunter2", "MODE": "prod", "credentials.json": "{\"key\": \"x\"}"},
		"binaryData": {"private.key": "LS0tLS1CRUdJTg=="},
	})
	v == {
		{"msg": `ConfigMap "app" has a value under data key "DB_PASSWORD", whose name says it is a credential`, "path": ["data", "DB_PASSWORD"]},
		{"msg": `ConfigMap "app" has a value under data key "credentials.json", whose name says it is a credential`, "path": ["data", "credentials.json"]},
		{"msg": `ConfigMap "app" has a value under binaryData key "private.key", whose name says it is a credential`, "path": ["binaryData", "private.key"]},
	}
	every x in v {
		not contains(x.msg, "hunter2")
	}
}

test_malformed_values_do_not_pass if {
	v := secrets_in_configmaps.violation with input as {"object": {"metadata": {"name": ["x"]}, "data": {"token": 42}}}
	v == {{"msg": `ConfigMap a value of type array has a value under data key "token", whose name says it is a credential`, "path": ["data", "token"]}}
}

test_deleting_is_not_judged if {
	count(secrets_in_configmaps.violation) == 0 with input as object.union(_cm({"data": {"token": "x"}}), {"operation": "DELETE"})
}
