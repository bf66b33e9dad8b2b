# METADATA
# title: Naming convention
# description: >-
#   Object names must follow the organisation's naming convention:
#   parameters.naming.patterns maps a kind ("Deployment", or "apps/Deployment"
#   to tell groups apart) or "*" for every other kind to an RE2 pattern the
#   whole name must match. Kinds with no pattern, and objects named by
#   generateName, are not checked.
# custom:
#   id: naming-convention
#   severity: low
#   action: warn
#   scope: object
#   remediation: Rename the object to match the pattern configured for its kind in parameters.naming.patterns.
package tollgate.naming.convention

import data.tollgate.lib.labels

_patterns := p if {
	p := input.config.parameters.naming.patterns
	is_object(p)
} else := {}

_kind := object.get(input, ["kind", "kind"], "")

_group := object.get(input, ["kind", "group"], "")

# The most specific pattern configured for the kind: group/Kind, Kind, "*".
_pattern := p if {
	_group != ""
	p := _patterns[concat("/", [_group, _kind])]
} else := p if {
	p := _patterns[_kind]
} else := p if {
	p := _patterns["*"]
}

violation contains {"msg": msg, "path": ["metadata", "name"]} if {
	object.get(input, "operation", "") != "DELETE"
	name := input.object.metadata.name
	is_string(name)
	name != ""
	is_string(_pattern)
	_pattern != ""
	msg := _problem(name)
}

_problem(name) := sprintf(
	"the naming pattern %q configured for %s is not a valid regular expression, so name %q cannot be checked",
	[_pattern, _kind, name],
) if {
	not regex.is_valid(_pattern)
} else := sprintf("%s name %q does not match the naming pattern %q", [_kind, name, _pattern]) if {
	not labels.full_match(_pattern, name)
}
