package tollgate.cluster.decision_log_test

import data.tollgate.cluster.decision_log

_facts(log) := {"object": {"kind": "ClusterFacts", "metadata": {"name": "prod"}, "tollgate": {"decisionLog": log}}}

test_chained_log_allowed if {
	count(decision_log.violation) == 0 with input as _facts({"enabled": true, "destination": "stdout", "chained": true})
}

test_disabled_log_denied if {
	decision_log.violation == {{
		"msg": "Tollgate's decision log is not enabled (enabled: false): admission decisions leave no record",
		"path": ["tollgate", "decisionLog", "enabled"],
	}} with input as _facts({"enabled": false})
}

test_unchained_log_denied if {
	decision_log.violation == {{
		"msg": `Tollgate's decision log (to "stdout") is not chained (chained: false): an entry removed or changed afterwards would not show`,
		"path": ["tollgate", "decisionLog", "chained"],
	}} with input as _facts({"enabled": true, "destination": "stdout", "chained": false})
}

test_malformed_facts_do_not_pass if {
	count(decision_log.violation) == 1 with input as {"object": {"kind": "ClusterFacts"}}
	count(decision_log.violation) == 1 with input as _facts("enabled")
	count(decision_log.violation) == 1 with input as _facts({"enabled": "true", "chained": true})
	count(decision_log.violation) == 1 with input as _facts({"enabled": true, "chained": "yes"})
	count(decision_log.violation) == 1 with input as _facts({})
}
