package tollgate.naming.dns1123_test

import data.tollgate.naming.dns1123

_input(group, kind, name) := {
	"kind": {"group": group, "version": "v1", "kind": kind},
	"object": {"metadata": {"name": name}},
}

test_valid_names_allowed if {
	count(dns1123.violation) == 0 with input as _input("apps", "Deployment", "payments-api")
	count(dns1123.violation) == 0 with input as _input("", "ConfigMap", "payments.api.v2")
	count(dns1123.violation) == 0 with input as _input("", "Namespace", "payments")
	count(dns1123.violation) == 0 with input as _input("", "Service", "payments-api")
}

test_invalid_subdomain_denied if {
	dns1123.violation == {{
		"msg": `Deployment name "Payments_API" is not a DNS-1123 subdomain: at most 253 lowercase letters, digits, '-' and '.', each dot-separated part beginning and ending with a letter or digit`,
		"path": ["metadata", "name"],
	}} with input as _input("apps", "Deployment", "Payments_API")
}

test_long_subdomain_denied if {
	name := concat(".", [concat("", ["a" | some _ in numbers.range(1, 60)]) | some _ in numbers.range(1, 5)])
	count(dns1123.violation) == 1 with input as _input("", "ConfigMap", name)
}

test_namespace_must_be_a_label if {
	dns1123.violation == {{
		"msg": `Namespace name "team.payments" is not a DNS-1123 label: at most 63 lowercase letters, digits and '-', beginning and ending with a letter or digit`,
		"path": ["metadata", "name"],
	}} with input as _input("", "Namespace", "team.payments")
}

test_service_must_be_a_dns1035_label if {
	v := dns1123.violation with input as _input("", "Service", "1api")
	{x.msg | some x in v} == {`Service name "1api" is not a DNS-1035 label: at most 63 lowercase letters, digits and '-', beginning with a letter and ending with a letter or digit`}
	count(dns1123.violation) == 1 with input as _input("", "Service", "api.v1")
}

test_service_of_other_group_is_a_subdomain if {
	count(dns1123.violation) == 0 with input as _input("serving.knative.dev", "Service", "api.v1")
}

test_rbac_names_skipped if {
	count(dns1123.violation) == 0 with input as _input("rbac.authorization.k8s.io", "ClusterRole", "system:aggregate-to-edit")
}

test_generate_name_skipped if {
	count(dns1123.violation) == 0 with input as {
		"kind": {"group": "batch", "version": "v1", "kind": "Job"},
		"object": {"metadata": {"generateName": "Migrate-"}},
	}
}

test_delete_skipped if {
	count(dns1123.violation) == 0 with input as object.union(_input("", "ConfigMap", "Bad_Name"), {"operation": "DELETE"})
}
