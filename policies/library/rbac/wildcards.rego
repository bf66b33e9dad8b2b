# METADATA
# title: Wildcards in roles
# description: >-
#   A "*" in a rule's verbs, resources or apiGroups grants what exists today
#   and whatever is added later: new verbs, every custom resource an
#   operator installs, subresources such as pods/exec. CIS 5.1.3 asks that
#   roles name what they grant. Each wildcard of a Role or ClusterRole is
#   reported, with the field it is in (wildcard verbs and wildcard resources
#   are different findings); a "*/subresource" resource counts as a wildcard
#   too. The roles the API server creates and reconciles itself (labelled
#   kubernetes.io/bootstrapping: rbac-defaults and named system:* or
#   cluster-admin, admin, edit, view) are left out. An aggregating
#   ClusterRole is judged on the rules stored in it; the roles it picks up
#   are judged themselves.
# custom:
#   id: rbac-wildcards
#   severity: medium
#   action: warn
#   scope: object
#   kinds:
#     - rbac.authorization.k8s.io/ClusterRole
#     - rbac.authorization.k8s.io/Role
#   controls:
#     - framework: cis
#       id: "5.1.3"
#     - framework: nsa
#       id: auth/rbac
#   remediation: >-
#     List the verbs, API groups and resources the role needs in place of
#     "*"; to grant read access, use get, list and watch; for a cluster
#     administrator, bind the built-in cluster-admin instead of a copy.
package tollgate.rbac.wildcards

import data.tollgate.lib.rbac

_builtin := {"cluster-admin", "admin", "edit", "view"}

_skip if input.operation == "DELETE"

_skip if {
	rbac.bootstrap_default(input.object)
}

_skip if {
	input.object.metadata.labels["kubernetes.io/bootstrapping"] == "rbac-defaults"
	input.object.metadata.name in _builtin
}

_role := sprintf("%s %q in namespace %q", [input.kind.kind, object.get(input.object, ["metadata", "name"], ""), object.get(input.object, ["metadata", "namespace"], "")]) if {
	input.kind.kind == "Role"
} else := sprintf("%s %q", [input.kind.kind, object.get(input.object, ["metadata", "name"], "")])

# _rules is each stored rule with its path: rules[i], or the one rule a
# malformed role holds as an object in place of a list.
_rules contains [["rules", i], rule] if {
	is_array(input.object.rules)
	some i, rule in input.object.rules
}

_rules contains [["rules"], input.object.rules] if is_object(input.object.rules)

_what := {"verbs": "every verb", "resources": "every resource", "apiGroups": "every API group"}

violation contains {"msg": msg, "path": array.concat(path, [field])} if {
	not _skip
	some [path, rule] in _rules
	is_object(rule)
	some field, what in _what
	wild := _wildcards(rule[field], field)
	count(wild) > 0
	msg := sprintf("%s grants %s with wildcard %s (%s: %s) in %s", [
		_role, _reach(field, wild), field, field, concat(", ", [sprintf("%q", [w]) | some w in wild]), _path(path),
	])
}

# _wildcards is the wildcard entries of a field: "*" anywhere, and in
# resources "*/subresource" too. A single string where the list belongs is
# read as a list of it.
_wildcards(value, field) := [w |
	some w in _strings(value)
	_wild(w, field)
]

_strings(x) := [s | some s in x; is_string(s)] if is_array(x)

else := [x] if is_string(x)

else := []

_wild("*", _)

_wild(w, "resources") if startswith(w, "*/")

_reach(field, wild) := _what[field] if "*" in wild

else := sprintf("the %s subresource of every resource", [concat(", ", [trim_prefix(w, "*/") | some w in wild])])

_path([_, i]) := sprintf("rules[%d]", [i])

_path([_]) := "rules"
