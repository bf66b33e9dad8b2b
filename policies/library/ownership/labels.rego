# METADATA
# title: Ownership labels
# description: >-
#   Namespaces and workloads must carry the ownership labels of the
#   configured schema (input.config.labels; by default team, owner and
#   cost-center, and an optional environment), so that every workload can be
#   traced to the people who answer for it and the budget it is charged to.
#   Each required label must have a non-empty, valid value that matches the
#   label's pattern and is one of its allowed values when those are set; an
#   optional label must be valid when present. A workload missing a label
#   passes when its namespace carries a valid value and
#   parameters.ownership.inheritFromNamespace is on (the default), since
#   Tollgate's mutating webhook copies it. Pods, ReplicaSets and Jobs are
#   judged at their controller only when Tollgate found that controller
#   (input.controller: of a kind that makes them, in the same namespace, with
#   the UID the ownerReference names); an ownerReference alone proves nothing.
#   The kinds the config's governedKinds lists (Crossplane claims and
#   composite resources) are judged like workloads.
# custom:
#   id: ownership-labels
#   severity: medium
#   action: enforce
#   scope: object
#   kinds:
#     - Namespace
#     - Pod
#     - apps/Deployment
#     - apps/StatefulSet
#     - apps/DaemonSet
#     - apps/ReplicaSet
#     - batch/Job
#     - batch/CronJob
#     - ReplicationController
#   governedKinds: true
#   controls:
#     - framework: soc2
#       id: CC8.1
#   remediation: >-
#     Add the label to metadata.labels (or to the namespace, for workloads)
#     with a value the label schema allows.
package tollgate.ownership.labels

import data.tollgate.lib.labels
import data.tollgate.lib.owners

_default_schema := {
	"team": {"key": "team", "required": true, "pattern": "", "allowed": []},
	"owner": {"key": "owner", "required": true, "pattern": "", "allowed": []},
	"costCenter": {"key": "cost-center", "required": true, "pattern": "", "allowed": []},
	"environment": {"key": "environment", "required": false, "pattern": "", "allowed": []},
}

_schema := s if {
	s := input.config.labels
	is_object(s)
} else := _default_schema

# One entry per configured label, with absent fields defaulted: the key
# defaults to the entry's name, required to false.
_specs contains {"key": key, "required": required, "pattern": pattern, "allowed": allowed} if {
	some name, entry in _schema
	is_object(entry)
	key := _string_or(entry, "key", name)
	required := object.get(entry, "required", false) == true
	pattern := _string_or(entry, "pattern", "")
	allowed := _array_or(entry, "allowed", [])
}

_string_or(obj, field, fallback) := v if {
	v := obj[field]
	is_string(v)
	v != ""
} else := fallback

_array_or(obj, field, fallback) := v if {
	v := obj[field]
	is_array(v)
} else := fallback

_object_labels := l if {
	l := input.object.metadata.labels
	is_object(l)
} else := {}

_namespace_labels := l if {
	l := input.namespace.metadata.labels
	is_object(l)
} else := {}

_namespace_name := object.get(input, ["namespace", "metadata", "name"], "")

_is_namespace if input.kind.kind == "Namespace"

_inherit if {
	not _is_namespace
	object.get(input, ["config", "parameters", "ownership", "inheritFromNamespace"], true) != false
}

_skip if input.operation == "DELETE"

# Pods, ReplicaSets and Jobs made by a controller Tollgate found are judged
# at the controller.
_skip if owners.controlled

# A required label missing from the object, and not inherited.
violation contains {"msg": msg, "path": ["metadata", "labels"]} if {
	not _skip
	some spec in _specs
	spec.required
	not _has_label(spec.key)
	not _inherited_ok(spec)
	msg := _missing_message(spec)
}

# A label present on the object with a value the schema does not allow.
violation contains {"msg": msg, "path": ["metadata", "labels", spec.key]} if {
	not _skip
	some spec in _specs
	value := _object_labels[spec.key]
	problem := _problem(spec, value)
	msg := sprintf("label %q: %s", [spec.key, problem])
}

_inherited_ok(spec) if {
	_inherit
	value := _namespace_labels[spec.key]
	not _problem(spec, value)
}

_missing_message(spec) := sprintf(
	"required label %q is missing, and the value namespace %q would pass on is not allowed: %s",
	[spec.key, _namespace_name, _problem(spec, _namespace_labels[spec.key])],
) if {
	_inherit
	_namespace_labels[spec.key]
} else := sprintf(
	"required label %q is missing; set it on the object or on namespace %q",
	[spec.key, _namespace_name],
) if {
	_inherit
	_namespace_name != ""
} else := sprintf("required label %q is missing", [spec.key])

# _problem says what is wrong with a label value, and is undefined when the
# value is fine.
_problem(spec, value) := "the value is not a string" if {
	not is_string(value)
} else := "the value is empty" if {
	value == ""
	spec.required
} else := sprintf(
	"%q is not a valid label value (at most 63 letters, digits, '-', '_' or '.', beginning and ending with a letter or digit)",
	[value],
) if {
	not labels.valid_value(value)
} else := sprintf("the configured pattern %q is not a valid regular expression", [spec.pattern]) if {
	spec.pattern != ""
	not regex.is_valid(spec.pattern)
} else := sprintf("%q does not match the pattern %q", [value, spec.pattern]) if {
	spec.pattern != ""
	not labels.full_match(spec.pattern, value)
} else := sprintf("%q is not one of the allowed values (%s)", [value, concat(", ", [sprintf("%v", [a]) | some a in spec.allowed])]) if {
	count(spec.allowed) > 0
	not value in spec.allowed
}

_has_label(key) if _object_labels[key] != null

_has_label(key) if _object_labels[key] == null
