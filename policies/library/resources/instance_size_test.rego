package tollgate.resources.cloud_instance_size_test

import data.tollgate.resources.cloud_instance_size as size

_config := {
	"parameters": {"cloud": {"instanceClasses": ["db.t3.micro", "db.m5.large", "db.m5.xlarge", "db.m5.4xlarge"]}},
	"governedKinds": [{
		"group": "database.example.org", "kind": "PostgreSQLInstance",
		"pricing": [{"class": "instance", "key": "spec.parameters.instanceClass"}, {"class": "storage", "key": "spec.parameters.storageClass"}],
	}],
}

_profile(cap) := {"name": "golden", "parameters": {"cloud": {
	"instanceClasses": ["db.t3.micro", "db.m5.large", "db.m5.xlarge", "db.m5.4xlarge"],
	"maxInstanceClass": cap,
}}}

_claim(class) := {
	"kind": {"group": "database.example.org", "version": "v1alpha1", "kind": "PostgreSQLInstance"},
	"operation": "CREATE",
	"config": _config,
	"profile": _profile("db.m5.large"),
	"object": {"metadata": {"name": "orders"}, "spec": {"parameters": {"instanceClass": class, "storageClass": "gp3"}}},
}

_prices := {"currency": "USD", "instanceClasses": {"db.m5.4xlarge": 1.368}}

test_at_cap_allowed if {
	count(size.violation) == 0 with input as _claim("db.m5.large")
}

test_below_cap_allowed if {
	count(size.violation) == 0 with input as _claim("db.t3.micro")
}

test_above_cap_denied_with_price if {
	size.violation == {{
		"msg": `instance class "db.m5.4xlarge", USD 998.64 a month is above the "db.m5.large" cap of profile "golden" without approval`,
		"path": ["spec", "parameters", "instanceClass"],
	}} with input as _claim("db.m5.4xlarge") with data.tollgate.prices as _prices
}

test_above_cap_denied_without_catalogue if {
	size.violation == {{
		"msg": `instance class "db.m5.xlarge" is above the "db.m5.large" cap of profile "golden" without approval`,
		"path": ["spec", "parameters", "instanceClass"],
	}} with input as _claim("db.m5.xlarge")
}

test_unknown_class_denied if {
	some v in size.violation with input as _claim("db.x9.mega")
	contains(v.msg, `instance class "db.x9.mega" is not one the platform offers`)
}

test_missing_class_denied if {
	claim := object.remove(_claim("x"), ["object"])
	some v in size.violation with input as object.union(claim, {"object": {"metadata": {"name": "orders"}, "spec": {}}})
	v.msg == `PostgreSQLInstance "orders" has no instance class at spec.parameters.instanceClass, so its size against the "db.m5.large" cap of profile "golden" cannot be told`
}

test_no_cap_no_finding if {
	claim := object.remove(_claim("db.m5.4xlarge"), ["profile"])
	count(size.violation) == 0 with input as object.union(claim, {"profile": {"name": "innovation", "parameters": {}}})
}

test_config_cap_without_profiles if {
	claim := object.remove(_claim("db.m5.xlarge"), ["profile"])
	cfg := object.union(_config, {"parameters": {"cloud": {"maxInstanceClass": "db.t3.micro"}}})
	some v in size.violation with input as object.union(claim, {"config": cfg})
	contains(v.msg, `above the "db.t3.micro" cap of the config`)
}

test_unknown_cap_reported if {
	claim := object.remove(_claim("db.m5.large"), ["profile"])
	some v in size.violation with input as object.union(claim, {"profile": _profile("db.huge")})
	v.path == ["parameters", "cloud", "maxInstanceClass"]
}

test_other_kind_ignored if {
	count(size.violation) == 0 with input as object.union(_claim("db.m5.4xlarge"), {"kind": {"group": "", "version": "v1", "kind": "ConfigMap"}})
}

test_delete_ignored if {
	count(size.violation) == 0 with input as object.union(_claim("db.m5.4xlarge"), {"operation": "DELETE"})
}
