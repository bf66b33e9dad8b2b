package tollgate.pss.baseline.privileged_test

import data.tollgate.pss.baseline.privileged

test_unprivileged_allowed if {
	count(privileged.violation) == 0 with input as {"pod": {"spec": {"containers": [
		{"name": "app", "securityContext": {"privileged": false}},
		{"name": "sidecar"},
		{"name": "nulls", "securityContext": null},
	]}}}
}

test_privileged_container_denied if {
	privileged.violation == {{
		"msg": `container "app" is privileged (securityContext.privileged: true)`,
		"path": ["spec", "containers", 1, "securityContext", "privileged"],
	}} with input as {"pod": {"spec": {"containers": [
		{"name": "proxy"},
		{"name": "app", "securityContext": {"privileged": true}},
	]}}}
}

test_privileged_init_and_ephemeral_denied if {
	v := privileged.violation with input as {"pod": {"spec": {
		"initContainers": [{"name": "sysctl", "securityContext": {"privileged": true}}],
		"containers": [{"name": "app"}],
		"ephemeralContainers": [{"name": "debug", "securityContext": {"privileged": true}}],
	}}}
	{x.path | some x in v} == {
		["spec", "initContainers", 0, "securityContext", "privileged"],
		["spec", "ephemeralContainers", 0, "securityContext", "privileged"],
	}
	{x.msg | some x in v} == {
		`init container "sysctl" is privileged (securityContext.privileged: true)`,
		`ephemeral container "debug" is privileged (securityContext.privileged: true)`,
	}
}

test_string_true_is_not_privileged if {
	# The API server rejects a string; only a real boolean makes a container privileged.
	count(privileged.violation) == 0 with input as {"pod": {"spec": {"containers": [
		{"name": "app", "securityContext": {"privileged": "true"}},
	]}}}
}
