package tollgate.pss.restricted.capabilities_test

import data.tollgate.pss.restricted.capabilities

test_drop_all_allowed if {
	count(capabilities.violation) == 0 with input as {"pod": {"spec": {
		"initContainers": [{"name": "setup", "securityContext": {"capabilities": {"drop": ["ALL"]}}}],
		"containers": [{"name": "web", "securityContext": {"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}],
	}}}
}

test_missing_drop_denied if {
	capabilities.violation == {{
		"msg": `container "app" does not drop ALL capabilities (securityContext.capabilities.drop must include ALL)`,
		"path": ["spec", "containers", 0, "securityContext", "capabilities", "drop"],
	}} with input as {"pod": {"spec": {"containers": [{"name": "app"}]}}}
}

test_partial_or_lowercase_drop_denied if {
	v := capabilities.violation with input as {"pod": {"spec": {"containers": [
		{"name": "a", "securityContext": {"capabilities": {"drop": ["NET_RAW"]}}},
		{"name": "b", "securityContext": {"capabilities": {"drop": ["all"]}}},
	]}}}
	{x.path | some x in v} == {
		["spec", "containers", 0, "securityContext", "capabilities", "drop"],
		["spec", "containers", 1, "securityContext", "capabilities", "drop"],
	}
}

test_added_capability_denied if {
	capabilities.violation == {{
		"msg": `ephemeral container "debug" adds capability "SYS_PTRACE" (securityContext.capabilities.add); only NET_BIND_SERVICE may be added`,
		"path": ["spec", "ephemeralContainers", 0, "securityContext", "capabilities", "add", 1],
	}} with input as {"pod": {"spec": {
		"containers": [{"name": "app", "securityContext": {"capabilities": {"drop": ["ALL"]}}}],
		"ephemeralContainers": [{"name": "debug", "securityContext": {"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "SYS_PTRACE"]}}}],
	}}}
}

test_windows_pods_exempt if {
	count(capabilities.violation) == 0 with input as {"pod": {"spec": {
		"os": {"name": "windows"},
		"containers": [{"name": "app", "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}],
	}}}
}

_at(version, pod) := {"pod": pod, "config": {"podSecurity": {"version": version}}}

# The control starts at v1.22 (before, only the baseline one judges added
# capabilities); Windows pods are exempt from v1.25.
test_versions if {
	linux := {"spec": {"containers": [{"name": "app"}]}}
	windows := {"spec": {"os": {"name": "windows"}, "containers": [{"name": "app"}]}}
	count(capabilities.violation) == 0 with input as _at("v1.21", linux)
	count(capabilities.violation) == 1 with input as _at("v1.22", linux)
	count(capabilities.violation) == 1 with input as _at("v1.24", windows)
	count(capabilities.violation) == 0 with input as _at("v1.25", windows)
}
