package tollgate.pss.baseline.seccomp_test

import data.tollgate.pss.baseline.seccomp

test_runtime_default_localhost_and_unset_allowed if {
	count(seccomp.violation) == 0 with input as {"pod": {"spec": {
		"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
		"containers": [
			{"name": "a"},
			{"name": "b", "securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/b.json"}}},
		],
	}}}
	count(seccomp.violation) == 0 with input as {"pod": {"spec": {"containers": [{"name": "a"}]}}}
}

test_unconfined_pod_denied if {
	seccomp.violation == {{
		"msg": "pod disables seccomp (securityContext.seccompProfile.type: Unconfined)",
		"path": ["spec", "securityContext", "seccompProfile", "type"],
	}} with input as {"pod": {"spec": {
		"securityContext": {"seccompProfile": {"type": "Unconfined"}},
		"containers": [{"name": "a"}],
	}}}
}

test_unconfined_containers_denied if {
	v := seccomp.violation with input as {"pod": {"spec": {
		"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
		"containers": [{"name": "a", "securityContext": {"seccompProfile": {"type": "Unconfined"}}}],
		"ephemeralContainers": [{"name": "debug", "securityContext": {"seccompProfile": {"type": "Unconfined"}}}],
	}}}
	v == {
		{
			"msg": `container "a" disables seccomp (securityContext.seccompProfile.type: Unconfined)`,
			"path": ["spec", "containers", 0, "securityContext", "seccompProfile", "type"],
		},
		{
			"msg": `ephemeral container "debug" disables seccomp (securityContext.seccompProfile.type: Unconfined)`,
			"path": ["spec", "ephemeralContainers", 0, "securityContext", "seccompProfile", "type"],
		},
	}
}
