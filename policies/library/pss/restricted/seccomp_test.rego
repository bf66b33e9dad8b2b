package tollgate.pss.restricted.seccomp_test

import data.tollgate.pss.restricted.seccomp

test_pod_level_allowed if {
	count(seccomp.violation) == 0 with input as {"pod": {"spec": {
		"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
		"containers": [{"name": "app"}, {"name": "side", "securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}}}],
		"initContainers": [{"name": "setup"}],
	}}}
}

test_every_container_allowed if {
	count(seccomp.violation) == 0 with input as {"pod": {"spec": {"containers": [
		{"name": "app", "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}},
	]}}}
}

test_unset_denied if {
	seccomp.violation == {{
		"msg": `container "app" has no seccomp profile: set securityContext.seccompProfile.type to RuntimeDefault on the container or the pod`,
		"path": ["spec", "containers", 0, "securityContext", "seccompProfile", "type"],
	}} with input as {"pod": {"spec": {"containers": [{"name": "app"}]}}}
}

test_container_unconfined_denied_despite_pod if {
	seccomp.violation == {{
		"msg": `container "app" sets seccomp profile type "Unconfined" (securityContext.seccompProfile.type); it must be RuntimeDefault or Localhost`,
		"path": ["spec", "containers", 0, "securityContext", "seccompProfile", "type"],
	}} with input as {"pod": {"spec": {
		"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
		"containers": [{"name": "app", "securityContext": {"seccompProfile": {"type": "Unconfined"}}}],
	}}}
}

test_pod_unconfined_denied if {
	v := seccomp.violation with input as {"pod": {"spec": {
		"securityContext": {"seccompProfile": {"type": "Unconfined"}},
		"containers": [{"name": "app"}, {"name": "ok", "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}}],
		"ephemeralContainers": [{"name": "debug"}],
	}}}
	{x.path | some x in v} == {
		["spec", "securityContext", "seccompProfile", "type"],
		["spec", "containers", 0, "securityContext", "seccompProfile", "type"],
		["spec", "ephemeralContainers", 0, "securityContext", "seccompProfile", "type"],
	}
}

test_windows_pods_exempt if {
	count(seccomp.violation) == 0 with input as {"pod": {"spec": {
		"os": {"name": "windows"},
		"containers": [{"name": "app"}],
	}}}
}
