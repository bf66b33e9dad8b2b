# METADATA
# title: DNS-compatible names
# description: >-
#   Object names must be DNS-1123 subdomains (lowercase alphanumerics, '-' and
#   '.', at most 253 characters); Namespace names must be DNS-1123 labels (no
#   '.', at most 63) and Service names DNS-1035 labels (a label that begins
#   with a letter), as they become DNS names. The API server rejects other
#   names; this policy reports them in pull requests, before they reach it.
#   RBAC objects, whose names may hold ':' (system:auth-delegator), and
#   objects named by generateName are skipped.
# custom:
#   id: naming-dns1123
#   severity: low
#   action: enforce
#   scope: object
#   remediation: >-
#     Rename the object with lowercase letters, digits and '-' (and '.' where
#     a subdomain is allowed), beginning and ending with a letter or digit.
package tollgate.naming.dns1123

import data.tollgate.lib.labels

_name := n if {
	n := input.object.metadata.name
	is_string(n)
	n != ""
}

_core if object.get(input, ["kind", "group"], "") == ""

violation contains {"msg": msg, "path": ["metadata", "name"]} if {
	object.get(input, "operation", "") != "DELETE"
	object.get(input, ["kind", "group"], "") != "rbac.authorization.k8s.io"
	msg := _problem(object.get(input, ["kind", "kind"], ""), _name)
}

_problem("Namespace", name) := sprintf(
	"Namespace name %q is not a DNS-1123 label: at most 63 lowercase letters, digits and '-', beginning and ending with a letter or digit",
	[name],
) if {
	_core
	not labels.dns1123_label(name)
}

_problem("Service", name) := sprintf(
	"Service name %q is not a DNS-1035 label: at most 63 lowercase letters, digits and '-', beginning with a letter and ending with a letter or digit",
	[name],
) if {
	_core
	not labels.dns1035_label(name)
}

_problem(kind, name) := sprintf(
	"%s name %q is not a DNS-1123 subdomain: at most 253 lowercase letters, digits, '-' and '.', each dot-separated part beginning and ending with a letter or digit",
	[kind, name],
) if {
	not _label_kind(kind)
	not labels.dns1123_subdomain(name)
}

_label_kind(kind) if {
	_core
	kind in {"Namespace", "Service"}
}
