package tollgate.pss.restricted.run_as_non_root_test

import data.tollgate.pss.restricted.run_as_non_root

test_pod_level_true_allowed if {
	count(run_as_non_root.violation) == 0 with input as {"pod": {"spec": {
		"securityContext": {"runAsNonRoot": true},
		"initContainers": [{"name": "setup"}],
		"containers": [{"name": "app"}, {"name": "side", "securityContext": {"runAsNonRoot": true}}],
		"ephemeralContainers": [{"name": "debug"}],
	}}}
}

test_every_container_true_allowed if {
	count(run_as_non_root.violation) == 0 with input as {"pod": {"spec": {
		"initContainers": [{"name": "setup", "securityContext": {"runAsNonRoot": true}}],
		"containers": [{"name": "app", "securityContext": {"runAsNonRoot": true}}],
	}}}
}

test_unset_denied_per_container if {
	run_as_non_root.violation == {{
		"msg": `container "app" may run as root: set securityContext.runAsNonRoot to true on the container or the pod`,
		"path": ["spec", "containers", 0, "securityContext", "runAsNonRoot"],
	}} with input as {"pod": {"spec": {"containers": [{"name": "app"}]}}}
}

test_container_false_overrides_pod_true if {
	run_as_non_root.violation == {{
		"msg": `container "app" allows running as root (securityContext.runAsNonRoot: false)`,
		"path": ["spec", "containers", 1, "securityContext", "runAsNonRoot"],
	}} with input as {"pod": {"spec": {
		"securityContext": {"runAsNonRoot": true},
		"containers": [{"name": "side"}, {"name": "app", "securityContext": {"runAsNonRoot": false}}],
	}}}
}

test_pod_false_denied if {
	v := run_as_non_root.violation with input as {"pod": {"spec": {
		"securityContext": {"runAsNonRoot": false},
		"containers": [{"name": "app", "securityContext": {"runAsNonRoot": true}}, {"name": "side"}],
	}}}
	v == {
		{
			"msg": "pod allows running as root (securityContext.runAsNonRoot: false)",
			"path": ["spec", "securityContext", "runAsNonRoot"],
		},
		{
			"msg": `container "side" may run as root: set securityContext.runAsNonRoot to true on the container or the pod`,
			"path": ["spec", "containers", 1, "securityContext", "runAsNonRoot"],
		},
	}
}

test_init_and_ephemeral_unset_denied if {
	v := run_as_non_root.violation with input as {"pod": {"spec": {
		"initContainers": [{"name": "setup"}],
		"containers": [{"name": "app", "securityContext": {"runAsNonRoot": true}}],
		"ephemeralContainers": [{"name": "debug"}],
	}}}
	{x.path | some x in v} == {
		["spec", "initContainers", 0, "securityContext", "runAsNonRoot"],
		["spec", "ephemeralContainers", 0, "securityContext", "runAsNonRoot"],
	}
}

test_windows_pods_are_not_exempt if {
	count(run_as_non_root.violation) == 1 with input as {"pod": {"spec": {
		"os": {"name": "windows"},
		"containers": [{"name": "app"}],
	}}}
}

_at(version, pod) := {"pod": pod, "config": {"podSecurity": {"version": version}}}

# From v1.35 pods in a user namespace are exempt.
test_user_namespace_from_v1_35 if {
	userns := {"spec": {"hostUsers": false, "securityContext": {"runAsNonRoot": false}, "containers": [{"name": "app"}]}}
	count(run_as_non_root.violation) == 2 with input as _at("v1.34", userns)
	count(run_as_non_root.violation) == 0 with input as _at("v1.35", userns)
	count(run_as_non_root.violation) == 0 with input as {"pod": userns}
}
