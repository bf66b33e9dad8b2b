package tollgate.ownership.record_test

import data.tollgate.ownership.record

_ns := {"metadata": {"name": "payments", "labels": {"team": "payments", "owner": "alice", "cost-center": "cc-1234"}}}

_deployment(labels, template_labels) := {
	"kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
	"namespace": _ns,
	"object": {
		"metadata": {"name": "api", "namespace": "payments", "labels": labels},
		"spec": {"template": {"metadata": {"labels": template_labels}, "spec": {}}},
	},
}

test_matching_labels_pass if {
	count(record.violation) == 0 with input as _deployment({"team": "payments", "cost-center": "cc-1234"}, {"cost-center": "cc-1234"})
}

test_absent_labels_pass if {
	count(record.violation) == 0 with input as _deployment({}, {})
}

test_other_cost_center_on_template if {
	v := record.violation with input as _deployment({}, {"cost-center": "cc-9999"})
	v == {{
		"msg": `label "cost-center" is "cc-9999", but namespace "payments" sets it to "cc-1234": spend is charged to the namespace's value, so this label names someone else`,
		"path": ["spec", "template", "metadata", "labels", "cost-center"],
	}}
}

test_other_team_on_object if {
	v := record.violation with input as _deployment({"team": "search"}, {})
	{x.path | some x in v} == {["metadata", "labels", "team"]}
}

# Look-alikes, case and stray characters are other values.
test_look_alikes_are_mismatches if {
	every value in ["PAYMENTS", "payments-", "pаyments", "payments\u200b", " payments", ""] {
		count(record.violation) == 1 with input as _deployment({"team": value}, {})
	}
}

test_non_string_value if {
	v := record.violation with input as _deployment({"cost-center": 1234}, {})
	{x.msg | some x in v} == {`label "cost-center" is 1234 (not a string), but namespace "payments" sets it to "cc-1234": spend is charged to the namespace's value, so this label names someone else`}
}

test_keys_the_namespace_does_not_set_are_free if {
	inp := json.patch(_deployment({"team": "search", "environment": "dev"}, {}), [{
		"op": "replace", "path": "/namespace",
		"value": {"metadata": {"name": "shared", "labels": {"cost-center": "cc-1"}}},
	}])
	count(record.violation) == 0 with input as inp
}

test_configured_keys if {
	inp := object.union(
		json.patch(_deployment({"team": "search", "billing/cc": "cc-2", "cost-center": "cc-other"}, {}), [{
			"op": "replace", "path": "/namespace",
			"value": {"metadata": {"name": "payments", "labels": {"team": "payments", "billing/cc": "cc-1", "cost-center": "cc-1"}}},
		}]),
		{"config": {"labels": {"costCenter": {"key": "billing/cc"}}}},
	)
	{x.path | some x in record.violation} == {["metadata", "labels", "team"], ["metadata", "labels", "billing/cc"]} with input as inp
}

test_cronjob_templates if {
	inp := {
		"kind": {"group": "batch", "version": "v1", "kind": "CronJob"},
		"namespace": _ns,
		"object": {
			"metadata": {"name": "nightly"},
			"spec": {"jobTemplate": {
				"metadata": {"labels": {"team": "search"}},
				"spec": {"template": {"metadata": {"labels": {"cost-center": "cc-1"}}}},
			}},
		},
	}
	{x.path | some x in record.violation} == {
		["spec", "jobTemplate", "metadata", "labels", "team"],
		["spec", "jobTemplate", "spec", "template", "metadata", "labels", "cost-center"],
	} with input as inp
}

test_claim if {
	inp := {
		"kind": {"group": "", "version": "v1", "kind": "PersistentVolumeClaim"},
		"namespace": _ns,
		"object": {"metadata": {"name": "data", "labels": {"cost-center": "cc-9"}}, "spec": {}},
	}
	count(record.violation) == 1 with input as inp
}

test_found_controller_skipped_claim_alone_not if {
	ref := {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "api-1", "uid": "u-1", "controller": true}
	pod := {
		"kind": {"group": "", "version": "v1", "kind": "Pod"},
		"namespace": _ns,
		"object": {"metadata": {"name": "api-1-x", "labels": {"team": "search"}, "ownerReferences": [ref]}, "spec": {}},
	}
	count(record.violation) == 1 with input as pod
	found := object.union(pod, {"controller": {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "api-1", "uid": "u-1"}})
	count(record.violation) == 0 with input as found
}

test_delete_skipped if {
	count(record.violation) == 0 with input as object.union(_deployment({"team": "search"}, {}), {"operation": "DELETE"})
}

test_statefulset_claim_templates if {
	inp := {
		"kind": {"group": "apps", "version": "v1", "kind": "StatefulSet"},
		"namespace": _ns,
		"object": {
			"metadata": {"name": "db"},
			"spec": {
				"template": {"metadata": {"labels": {"app": "db"}}},
				"volumeClaimTemplates": [
					{"metadata": {"name": "data", "labels": {"cost-center": "cc-1234"}}},
					{"metadata": {"name": "logs", "labels": {"cost-center": "cc-9"}}},
				],
			},
		},
	}
	{x.path | some x in record.violation} == {["spec", "volumeClaimTemplates", 1, "metadata", "labels", "cost-center"]} with input as inp
}
