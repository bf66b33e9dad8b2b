# METADATA
# title: Ownership of record
# description: >-
#   A workload's team and cost-center are its namespace's. Spend is charged,
#   and Budgets are scoped, by the namespace's team and cost-center labels
#   (the labels of record) wherever the namespace sets them, so a workload,
#   pod template or claim that carries a different value for one of those
#   keys is labelled as belonging to someone else: it would mislead anyone
#   reading its labels, and before this rule it moved the workload's spend to
#   another team's cost-center or out of a Budget's selector. The keys are the
#   label schema's team and costCenter (input.config.labels). Values are
#   compared exactly: a look-alike character, a different case or a stray
#   character is another value. Labels the namespace does not set are the
#   workload's own. Pods, ReplicaSets and Jobs are judged at the controller
#   Tollgate found for them (see ownership-labels). The kinds the config's
#   governedKinds lists are judged like workloads.
# custom:
#   id: ownership-of-record
#   severity: high
#   action: enforce
#   scope: object
#   kinds:
#     - Pod
#     - apps/Deployment
#     - apps/StatefulSet
#     - apps/DaemonSet
#     - apps/ReplicaSet
#     - batch/Job
#     - batch/CronJob
#     - ReplicationController
#     - PersistentVolumeClaim
#   governedKinds: true
#   controls:
#     - framework: soc2
#       id: CC8.1
#   remediation: >-
#     Remove the label from the workload (Tollgate's mutating webhook copies
#     the namespace's value) or set it to the namespace's value. A workload
#     that another team pays for belongs in that team's namespace; where that
#     cannot be, the platform team can approve a TollgateException for
#     ownership-of-record (its spend is still charged to the namespace).
package tollgate.ownership.record

import data.tollgate.lib.owners

_default_keys := {"team": "team", "costCenter": "cost-center"}

# The label keys of record: the schema's team and costCenter keys.
_keys contains key if {
	some name, fallback in _default_keys
	key := _key(name, fallback)
}

_key(name, _) := k if {
	k := input.config.labels[name].key
	is_string(k)
	k != ""
} else := fallback if {
	fallback := _default_keys[name]
}

_namespace_labels := l if {
	l := input.namespace.metadata.labels
	is_object(l)
} else := {}

_namespace_name := object.get(input, ["namespace", "metadata", "name"], "")

# Where an object carries labels that become a pod's or a claim's: its own
# metadata, each template on the way to its pod, and a StatefulSet's claim
# templates; each with the labels found there. The labels are read by
# constant paths, so the engine keys this policy's cached verdict on them
# alone (not on the whole object, as a path computed at run time would).
_label_sets contains {"path": ["metadata", "labels"], "labels": l} if {
	l := input.object.metadata.labels
	is_object(l)
}

_label_sets contains {"path": ["spec", "template", "metadata", "labels"], "labels": l} if {
	input.kind.kind != "CronJob"
	is_object(input.object.spec.template)
	l := input.object.spec.template.metadata.labels
	is_object(l)
}

_label_sets contains {"path": ["spec", "jobTemplate", "metadata", "labels"], "labels": l} if {
	input.kind.kind == "CronJob"
	is_object(input.object.spec.jobTemplate)
	l := input.object.spec.jobTemplate.metadata.labels
	is_object(l)
}

_label_sets contains {"path": ["spec", "jobTemplate", "spec", "template", "metadata", "labels"], "labels": l} if {
	input.kind.kind == "CronJob"
	is_object(input.object.spec.jobTemplate.spec.template)
	l := input.object.spec.jobTemplate.spec.template.metadata.labels
	is_object(l)
}

_label_sets contains {"path": ["spec", "volumeClaimTemplates", i, "metadata", "labels"], "labels": l} if {
	input.kind.kind == "StatefulSet"
	some i, t in input.object.spec.volumeClaimTemplates
	is_object(t)
	l := t.metadata.labels
	is_object(l)
}

_skip if input.operation == "DELETE"

_skip if owners.controlled

violation contains {"msg": msg, "path": array.concat(s.path, [key])} if {
	not _skip
	some key in _keys
	want := _namespace_labels[key]
	is_string(want)
	want != ""
	some s in _label_sets
	got := object.get(s.labels, key, null)
	got != null
	got != want
	msg := sprintf(
		"label %q is %s, but namespace %q sets it to %q: spend is charged to the namespace's value, so this label names someone else",
		[key, _shown(got), _namespace_name, want],
	)
}

_shown(v) := sprintf("%q", [v]) if is_string(v)

else := sprintf("%v (not a string)", [v])
