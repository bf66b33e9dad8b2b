package tollgate.ownership.labels_test

import data.tollgate.ownership.labels

_schema := {
	"team": {"key": "team", "required": true, "pattern": "", "allowed": []},
	"owner": {"key": "owner", "required": true, "pattern": "", "allowed": []},
	"costCenter": {"key": "cost-center", "required": true, "pattern": "", "allowed": []},
	"environment": {"key": "environment", "required": false, "pattern": "", "allowed": []},
}

_config := {"labels": _schema, "parameters": {"ownership": {"inheritFromNamespace": true}}}

_owned := {"team": "payments", "owner": "alice", "cost-center": "cc-1234"}

_deployment(labels) := {
	"kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
	"object": {"metadata": {"name": "api", "namespace": "payments", "labels": labels}},
}

_namespace_object(labels) := {
	"kind": {"group": "", "version": "v1", "kind": "Namespace"},
	"object": {"metadata": {"name": "payments", "labels": labels}},
}

test_labelled_deployment_allowed if {
	count(labels.violation) == 0 with input as object.union(_deployment(_owned), {"config": _config})
}

test_missing_labels_denied if {
	v := labels.violation with input as object.union(_deployment({"team": "payments"}), {"config": _config})
	v == {
		{"msg": `required label "owner" is missing`, "path": ["metadata", "labels"]},
		{"msg": `required label "cost-center" is missing`, "path": ["metadata", "labels"]},
	}
}

test_missing_message_names_namespace if {
	inp := object.union(_deployment({}), {
		"config": _config,
		"namespace": {"metadata": {"name": "payments", "labels": {"team": "payments", "owner": "alice"}}},
	})
	v := labels.violation with input as inp
	v == {{
		"msg": `required label "cost-center" is missing; set it on the object or on namespace "payments"`,
		"path": ["metadata", "labels"],
	}}
}

test_inherited_from_namespace if {
	count(labels.violation) == 0 with input as object.union(_deployment({"team": "payments"}), {
		"config": _config,
		"namespace": {"metadata": {"name": "payments", "labels": {"owner": "alice", "cost-center": "cc-1"}}},
	})
}

test_no_inheritance_when_off if {
	config := {"labels": _schema, "parameters": {"ownership": {"inheritFromNamespace": false}}}
	v := labels.violation with input as object.union(_deployment(_owned), {
		"config": config,
		"namespace": {"metadata": {"name": "payments", "labels": _owned}},
	})
	count(v) == 0
	v2 := labels.violation with input as object.union(_deployment({"team": "payments"}), {
		"config": config,
		"namespace": {"metadata": {"name": "payments", "labels": _owned}},
	})
	{x.msg | some x in v2} == {`required label "owner" is missing`, `required label "cost-center" is missing`}
}

test_invalid_namespace_value_is_not_inherited if {
	config := {"labels": {"team": {"key": "team", "required": true, "allowed": ["payments", "search"]}}}
	v := labels.violation with input as object.union(_deployment({}), {
		"config": config,
		"namespace": {"metadata": {"name": "legacy", "labels": {"team": "ops"}}},
	})
	v == {{
		"msg": `required label "team" is missing, and the value namespace "legacy" would pass on is not allowed: "ops" is not one of the allowed values (payments, search)`,
		"path": ["metadata", "labels"],
	}}
}

test_namespace_never_inherits if {
	v := labels.violation with input as object.union(_namespace_object({"team": "payments"}), {
		"config": _config,
		"namespace": {"metadata": {"name": "payments", "labels": _owned}},
	})
	{x.msg | some x in v} == {`required label "owner" is missing`, `required label "cost-center" is missing`}
}

test_empty_required_value_denied if {
	labels.violation == {{
		"msg": `label "owner": the value is empty`,
		"path": ["metadata", "labels", "owner"],
	}} with input as object.union(_deployment(object.union(_owned, {"owner": ""})), {"config": _config})
}

test_invalid_syntax_denied if {
	v := labels.violation with input as object.union(
		_deployment(object.union(_owned, {"team": "Payments Team", "environment": "-prod"})),
		{"config": _config},
	)
	v == {
		{
			"msg": `label "team": "Payments Team" is not a valid label value (at most 63 letters, digits, '-', '_' or '.', beginning and ending with a letter or digit)`,
			"path": ["metadata", "labels", "team"],
		},
		{
			"msg": `label "environment": "-prod" is not a valid label value (at most 63 letters, digits, '-', '_' or '.', beginning and ending with a letter or digit)`,
			"path": ["metadata", "labels", "environment"],
		},
	}
}

test_unicode_value_denied if {
	v := labels.violation with input as object.union(_deployment(object.union(_owned, {"owner": "zoë"})), {"config": _config})
	{x.path | some x in v} == {["metadata", "labels", "owner"]}
}

test_non_string_value_denied if {
	v := labels.violation with input as object.union(_deployment(object.union(_owned, {"cost-center": 1234})), {"config": _config})
	v == {{"msg": `label "cost-center": the value is not a string`, "path": ["metadata", "labels", "cost-center"]}}
}

test_pattern_must_match_whole_value if {
	config := {"labels": {"costCenter": {"key": "cost-center", "required": true, "pattern": "cc-[0-9]{4}"}}}
	count(labels.violation) == 0 with input as object.union(_deployment({"cost-center": "cc-1234"}), {"config": config})
	v := labels.violation with input as object.union(_deployment({"cost-center": "cc-12345"}), {"config": config})
	v == {{
		"msg": `label "cost-center": "cc-12345" does not match the pattern "cc-[0-9]{4}"`,
		"path": ["metadata", "labels", "cost-center"],
	}}
}

test_invalid_pattern_reported if {
	config := {"labels": {"team": {"key": "team", "required": true, "pattern": "team-(["}}}
	v := labels.violation with input as object.union(_deployment({"team": "x"}), {"config": config})
	{x.msg | some x in v} == {`label "team": the configured pattern "team-([" is not a valid regular expression`}
}

test_allowed_values if {
	config := {"labels": {"environment": {"key": "environment", "required": false, "allowed": ["dev", "staging", "prod"]}}}
	count(labels.violation) == 0 with input as object.union(_deployment({"environment": "prod"}), {"config": config})
	count(labels.violation) == 0 with input as object.union(_deployment({}), {"config": config})
	v := labels.violation with input as object.union(_deployment({"environment": "production"}), {"config": config})
	{x.msg | some x in v} == {`label "environment": "production" is not one of the allowed values (dev, staging, prod)`}
}

test_optional_empty_value_allowed if {
	count(labels.violation) == 0 with input as object.union(_deployment(object.union(_owned, {"environment": ""})), {"config": _config})
}

test_absent_config_uses_default_schema if {
	v := labels.violation with input as _deployment({"team": "payments"})
	{x.msg | some x in v} == {`required label "owner" is missing`, `required label "cost-center" is missing`}
}

test_entry_key_defaults_to_name if {
	config := {"labels": {"project": {"required": true}}}
	v := labels.violation with input as object.union(_deployment({}), {"config": config})
	{x.msg | some x in v} == {`required label "project" is missing`}
}

test_controlled_objects_skipped if {
	pod := {
		"kind": {"group": "", "version": "v1", "kind": "Pod"},
		"object": {"metadata": {"name": "api-7d9f-x", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "api-7d9f", "uid": "u-1", "controller": true}]}},
		"controller": {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "api-7d9f", "uid": "u-1"},
		"config": _config,
	}
	count(labels.violation) == 0 with input as pod
	job := {
		"kind": {"group": "batch", "version": "v1", "kind": "Job"},
		"object": {"metadata": {"name": "nightly-1", "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "nightly", "uid": "u-2", "controller": true}]}},
		"controller": {"apiVersion": "batch/v1", "kind": "CronJob", "name": "nightly", "uid": "u-2"},
		"config": _config,
	}
	count(labels.violation) == 0 with input as job
}

# A controller reference Tollgate did not find (input.controller unset, or
# another UID) is a claim anyone can write: the pod is judged as a bare pod.
test_claimed_controller_not_trusted if {
	ref := {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "u-9", "controller": true}
	pod := {
		"kind": {"group": "", "version": "v1", "kind": "Pod"},
		"object": {"metadata": {"name": "p", "labels": {"cost-center": "CC 1"}, "ownerReferences": [ref]}},
		"config": _config,
	}
	{x.path | some x in labels.violation} == {["metadata", "labels"], ["metadata", "labels", "cost-center"]} with input as pod
	forged := object.union(pod, {"controller": {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "x", "uid": "u-1"}})
	count(labels.violation) == 3 with input as forged
}

test_non_controller_owner_not_skipped if {
	pod := {
		"kind": {"group": "", "version": "v1", "kind": "Pod"},
		"object": {"metadata": {"name": "p", "ownerReferences": [{"kind": "ConfigMap", "name": "x"}]}},
		"config": _config,
	}
	count(labels.violation) == 3 with input as pod
}

test_delete_skipped if {
	count(labels.violation) == 0 with input as object.union(_deployment({}), {"operation": "DELETE", "config": _config})
}
