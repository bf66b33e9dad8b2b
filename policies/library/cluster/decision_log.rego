# METADATA
# title: Tollgate decision log
# description: >-
#   Admission decisions are evidence: who asked for what, which policy
#   allowed or denied it, under which exception. Tollgate's decision log
#   records each one; chained, every entry carries the hash of the one
#   before it, so an entry removed or changed afterwards shows. Judged on
#   the audit's ClusterFacts (tollgate.decisionLog): the log must be enabled
#   and chained.
# custom:
#   id: cluster-decision-log
#   severity: medium
#   action: audit
#   scope: object
#   admission: false
#   kinds: [tollgate.dev/ClusterFacts]
#   controls:
#     - framework: nsa
#       id: logging/audit
#     - framework: soc2
#       id: CC7.2
#   remediation: >-
#     Enable Tollgate's decision log with its hash chain (decisionLog.enabled
#     and decisionLog.chained in the chart's values) and ship it to storage
#     the cluster's administrators cannot rewrite.
package tollgate.cluster.decision_log

import data.tollgate.lib.cluster

_log := l if {
	l := input.object.tollgate.decisionLog
	is_object(l)
}

violation contains {"msg": "the cluster facts say nothing of Tollgate's decision log (tollgate.decisionLog), so whether decisions are recorded cannot be told", "path": ["tollgate", "decisionLog"]} if {
	not _log
}

violation contains {"msg": msg, "path": ["tollgate", "decisionLog", "enabled"]} if {
	not _log.enabled == true
	_log
	msg := sprintf("Tollgate's decision log is not enabled (enabled: %s): admission decisions leave no record", [
		cluster.describe_value(object.get(_log, "enabled", null)),
	])
}

violation contains {"msg": msg, "path": ["tollgate", "decisionLog", "chained"]} if {
	_log.enabled == true
	not _log.chained == true
	msg := sprintf("Tollgate's decision log (to %s) is not chained (chained: %s): an entry removed or changed afterwards would not show", [
		cluster.describe_value(object.get(_log, "destination", null)),
		cluster.describe_value(object.get(_log, "chained", null)),
	])
}
