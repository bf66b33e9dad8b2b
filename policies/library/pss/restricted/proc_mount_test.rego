package tollgate.pss.restricted.proc_mount_test

import data.tollgate.pss.restricted.proc_mount

_pod(host_users) := {"spec": {
	"hostUsers": host_users,
	"initContainers": [{"name": "setup", "securityContext": {"procMount": "Default"}}],
	"containers": [{"name": "app"}, {"name": "build", "securityContext": {"procMount": "Unmasked"}}],
}}

test_default_and_unset_allowed if {
	count(proc_mount.violation) == 0 with input as {"pod": {"spec": {
		"hostUsers": false,
		"containers": [{"name": "a", "securityContext": {"procMount": "Default"}}, {"name": "b"}],
	}}}
}

# User namespaces do not matter to the restricted control.
test_unmasked_denied_in_user_namespaces_too if {
	every host_users in [false, true, null] {
		proc_mount.violation == {{
			"msg": `container "build" sets procMount "Unmasked" (securityContext.procMount); only Default is allowed`,
			"path": ["spec", "containers", 1, "securityContext", "procMount"],
		}} with input as {"pod": _pod(host_users)}
	}
}

# Before v1.35 the baseline control judges every pod's procMount.
test_from_v1_35 if {
	count(proc_mount.violation) == 0 with input as {"pod": _pod(false), "config": {"podSecurity": {"version": "v1.34"}}}
	count(proc_mount.violation) == 1 with input as {"pod": _pod(false), "config": {"podSecurity": {"version": "v1.35"}}}
}
