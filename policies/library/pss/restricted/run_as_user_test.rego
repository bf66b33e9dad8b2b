package tollgate.pss.restricted.run_as_user_test

import data.tollgate.pss.restricted.run_as_user

test_non_zero_and_unset_allowed if {
	count(run_as_user.violation) == 0 with input as {"pod": {"spec": {
		"securityContext": {"runAsUser": 65532},
		"containers": [{"name": "app"}, {"name": "side", "securityContext": {"runAsUser": 1000}}],
	}}}
	count(run_as_user.violation) == 0 with input as {"pod": {"spec": {"containers": [{"name": "app"}]}}}
}

test_pod_root_denied if {
	run_as_user.violation == {{
		"msg": "pod runs as root (securityContext.runAsUser: 0)",
		"path": ["spec", "securityContext", "runAsUser"],
	}} with input as {"pod": {"spec": {
		"securityContext": {"runAsUser": 0},
		"containers": [{"name": "app"}],
	}}}
}

test_container_root_denied_even_if_pod_is_not if {
	v := run_as_user.violation with input as {"pod": {"spec": {
		"securityContext": {"runAsUser": 1000},
		"initContainers": [{"name": "chown", "securityContext": {"runAsUser": 0}}],
		"containers": [{"name": "app", "securityContext": {"runAsUser": 0}}],
	}}}
	v == {
		{
			"msg": `init container "chown" runs as root (securityContext.runAsUser: 0)`,
			"path": ["spec", "initContainers", 0, "securityContext", "runAsUser"],
		},
		{
			"msg": `container "app" runs as root (securityContext.runAsUser: 0)`,
			"path": ["spec", "containers", 0, "securityContext", "runAsUser"],
		},
	}
}

_at(version, pod) := {"pod": pod, "config": {"podSecurity": {"version": version}}}

# The control starts at v1.23; from v1.35 pods in a user namespace are
# exempt.
test_versions if {
	root := {"spec": {"securityContext": {"runAsUser": 0}, "containers": [{"name": "app"}]}}
	userns := {"spec": {"hostUsers": false, "securityContext": {"runAsUser": 0}, "containers": [{"name": "app"}]}}
	count(run_as_user.violation) == 0 with input as _at("v1.22", root)
	count(run_as_user.violation) == 1 with input as _at("v1.23", root)
	count(run_as_user.violation) == 1 with input as _at("v1.34", userns)
	count(run_as_user.violation) == 0 with input as _at("v1.35", userns)
	count(run_as_user.violation) == 1 with input as _at("v1.35", root)
}
