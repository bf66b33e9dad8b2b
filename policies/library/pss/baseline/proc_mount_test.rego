package tollgate.pss.baseline.proc_mount_test

import data.tollgate.pss.baseline.proc_mount

test_default_allowed if {
	count(proc_mount.violation) == 0 with input as {"pod": {"spec": {"containers": [
		{"name": "a", "securityContext": {"procMount": "Default"}},
		{"name": "b"},
	]}}}
}

test_unmasked_denied if {
	proc_mount.violation == {{
		"msg": `container "b" sets procMount "Unmasked" (securityContext.procMount); only Default is allowed`,
		"path": ["spec", "containers", 1, "securityContext", "procMount"],
	}} with input as {"pod": {"spec": {"containers": [
		{"name": "a"},
		{"name": "b", "securityContext": {"procMount": "Unmasked"}},
	]}}}
}

test_init_container_denied if {
	v := proc_mount.violation with input as {"pod": {"spec": {
		"initContainers": [{"name": "setup", "securityContext": {"procMount": "Unmasked"}}],
		"containers": [{"name": "app"}],
	}}}
	{x.path | some x in v} == {["spec", "initContainers", 0, "securityContext", "procMount"]}
}

# From v1.35 a pod in a user namespace may unmask /proc.
test_user_namespace_allowed_from_v1_35 if {
	pod := {"spec": {"hostUsers": false, "containers": [{"name": "a", "securityContext": {"procMount": "Unmasked"}}]}}
	count(proc_mount.violation) == 0 with input as {"pod": pod}
	count(proc_mount.violation) == 0 with input as {"pod": pod, "config": {"podSecurity": {"version": "v1.35"}}}
	count(proc_mount.violation) == 1 with input as {"pod": pod, "config": {"podSecurity": {"version": "v1.34"}}}
	count(proc_mount.violation) == 1 with input as {"pod": json.patch(pod, [{"op": "replace", "path": "/spec/hostUsers", "value": true}])}
}
