package tollgate.pss.restricted.privilege_escalation_test

import data.tollgate.pss.restricted.privilege_escalation

test_false_everywhere_allowed if {
	count(privilege_escalation.violation) == 0 with input as {"pod": {"spec": {
		"initContainers": [{"name": "setup", "securityContext": {"allowPrivilegeEscalation": false}}],
		"containers": [{"name": "app", "securityContext": {"allowPrivilegeEscalation": false}}],
		"ephemeralContainers": [{"name": "debug", "securityContext": {"allowPrivilegeEscalation": false}}],
	}}}
}

test_unset_denied_at_the_field_to_set if {
	privilege_escalation.violation == {{
		"msg": `container "app" does not set securityContext.allowPrivilegeEscalation to false`,
		"path": ["spec", "containers", 0, "securityContext", "allowPrivilegeEscalation"],
	}} with input as {"pod": {"spec": {"containers": [{"name": "app"}]}}}
}

test_true_denied if {
	privilege_escalation.violation == {{
		"msg": `init container "setup" allows privilege escalation (securityContext.allowPrivilegeEscalation: true)`,
		"path": ["spec", "initContainers", 0, "securityContext", "allowPrivilegeEscalation"],
	}} with input as {"pod": {"spec": {
		"initContainers": [{"name": "setup", "securityContext": {"allowPrivilegeEscalation": true}}],
		"containers": [{"name": "app", "securityContext": {"allowPrivilegeEscalation": false}}],
	}}}
}

test_every_container_reported if {
	v := privilege_escalation.violation with input as {"pod": {"spec": {
		"containers": [{"name": "a"}, {"name": "b", "securityContext": {}}],
		"ephemeralContainers": [{"name": "debug", "securityContext": null}],
	}}}
	{x.path | some x in v} == {
		["spec", "containers", 0, "securityContext", "allowPrivilegeEscalation"],
		["spec", "containers", 1, "securityContext", "allowPrivilegeEscalation"],
		["spec", "ephemeralContainers", 0, "securityContext", "allowPrivilegeEscalation"],
	}
}

test_windows_pods_exempt if {
	count(privilege_escalation.violation) == 0 with input as {"pod": {"spec": {
		"os": {"name": "windows"},
		"containers": [{"name": "app"}],
	}}}
}

_at(version, pod) := {"pod": pod, "config": {"podSecurity": {"version": version}}}

# The control starts at v1.8; Windows pods are exempt from v1.25.
test_versions if {
	linux := {"spec": {"containers": [{"name": "app"}]}}
	windows := {"spec": {"os": {"name": "windows"}, "containers": [{"name": "app"}]}}
	count(privilege_escalation.violation) == 0 with input as _at("v1.7", linux)
	count(privilege_escalation.violation) == 1 with input as _at("v1.8", linux)
	count(privilege_escalation.violation) == 1 with input as _at("v1.24", windows)
	count(privilege_escalation.violation) == 0 with input as _at("v1.25", windows)
}
