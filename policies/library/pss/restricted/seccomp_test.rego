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

_at(version, pod) := {"pod": pod, "config": {"podSecurity": {"version": version}}}

# The control starts at v1.19 (before, the baseline one judges the seccomp
# annotations); Windows pods are exempt from v1.25.
test_versions if {
	linux := {"spec": {"containers": [{"name": "app"}]}}
	windows := {"spec": {"os": {"name": "windows"}, "containers": [{"name": "app"}]}}
	count(seccomp.violation) == 0 with input as _at("v1.18", linux)
	count(seccomp.violation) == 1 with input as _at("v1.19", linux)
	count(seccomp.violation) == 1 with input as _at("v1.24", windows)
	count(seccomp.violation) == 0 with input as _at("v1.25", windows)
}

# A profile without a type is no RuntimeDefault or Localhost profile; a
# null one is no profile.
test_profile_without_type_denied if {
	v := seccomp.violation with input as {"pod": {"spec": {
		"securityContext": {"seccompProfile": {}},
		"containers": [
			{"name": "app", "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}},
			{"name": "side", "securityContext": {"seccompProfile": null}},
		],
	}}}
	v == {
		{
			"msg": `pod sets seccomp profile type "" (securityContext.seccompProfile.type); it must be RuntimeDefault or Localhost`,
			"path": ["spec", "securityContext", "seccompProfile", "type"],
		},
		{
			"msg": `container "side" has no seccomp profile: set securityContext.seccompProfile.type to RuntimeDefault on the container or the pod`,
			"path": ["spec", "containers", 1, "securityContext", "seccompProfile", "type"],
		},
	}
}
