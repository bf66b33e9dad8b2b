package tollgate.pss.baseline.capabilities_test

import data.tollgate.pss.baseline.capabilities

test_default_capabilities_allowed if {
	count(capabilities.violation) == 0 with input as {"pod": {"spec": {"containers": [
		{"name": "app", "securityContext": {"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "CHOWN", "SETUID", "SETGID"]}}},
		{"name": "plain"},
		{"name": "drops", "securityContext": {"capabilities": {"drop": ["NET_RAW"]}}},
	]}}}
}

test_added_capability_denied if {
	capabilities.violation == {{
		"msg": `container "app" adds capability "SYS_ADMIN", which the baseline Pod Security Standard does not allow (securityContext.capabilities.add)`,
		"path": ["spec", "containers", 0, "securityContext", "capabilities", "add", 1],
	}} with input as {"pod": {"spec": {"containers": [
		{"name": "app", "securityContext": {"capabilities": {"add": ["CHOWN", "SYS_ADMIN"]}}},
	]}}}
}

test_each_capability_reported if {
	v := capabilities.violation with input as {"pod": {"spec": {
		"initContainers": [{"name": "net", "securityContext": {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}}}],
		"containers": [{"name": "app"}],
		"ephemeralContainers": [{"name": "debug", "securityContext": {"capabilities": {"add": ["SYS_PTRACE"]}}}],
	}}}
	{x.path | some x in v} == {
		["spec", "initContainers", 0, "securityContext", "capabilities", "add", 0],
		["spec", "initContainers", 0, "securityContext", "capabilities", "add", 1],
		["spec", "ephemeralContainers", 0, "securityContext", "capabilities", "add", 0],
	}
}

test_prefixed_and_lowercase_names_denied if {
	# The standard compares names exactly; CAP_ prefixes and lowercase names are not in the list.
	v := capabilities.violation with input as {"pod": {"spec": {"containers": [
		{"name": "app", "securityContext": {"capabilities": {"add": ["CAP_CHOWN", "chown"]}}},
	]}}}
	count(v) == 2
}
