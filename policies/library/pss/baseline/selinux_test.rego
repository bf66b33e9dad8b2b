package tollgate.pss.baseline.selinux_test

import data.tollgate.pss.baseline.selinux

test_container_types_and_level_allowed if {
	count(selinux.violation) == 0 with input as {"pod": {"spec": {
		"securityContext": {"seLinuxOptions": {"level": "s0:c123,c456"}},
		"containers": [
			{"name": "app", "securityContext": {"seLinuxOptions": {"type": "container_t"}}},
			{"name": "kvm", "securityContext": {"seLinuxOptions": {"type": "container_kvm_t", "user": "", "role": ""}}},
			{"name": "engine", "securityContext": {"seLinuxOptions": {"type": "container_engine_t"}}},
		],
		"initContainers": [{"name": "init", "securityContext": {"seLinuxOptions": {"type": "container_init_t"}}}],
	}}}
}

test_unset_allowed if {
	count(selinux.violation) == 0 with input as {"pod": {"spec": {"containers": [{"name": "app", "securityContext": {}}]}}}
}

test_spc_t_denied if {
	selinux.violation == {{
		"msg": `container "app" sets SELinux type "spc_t" (securityContext.seLinuxOptions.type); only container_t, container_init_t, container_kvm_t and container_engine_t (from v1.31) are allowed`,
		"path": ["spec", "containers", 0, "securityContext", "seLinuxOptions", "type"],
	}} with input as {"pod": {"spec": {"containers": [
		{"name": "app", "securityContext": {"seLinuxOptions": {"type": "spc_t"}}},
	]}}}
}

test_pod_user_and_role_denied if {
	v := selinux.violation with input as {"pod": {"spec": {
		"securityContext": {"seLinuxOptions": {"user": "system_u", "role": "system_r", "type": "unconfined_t"}},
		"containers": [{"name": "app"}],
	}}}
	v == {
		{
			"msg": `pod sets SELinux type "unconfined_t" (securityContext.seLinuxOptions.type); only container_t, container_init_t, container_kvm_t and container_engine_t (from v1.31) are allowed`,
			"path": ["spec", "securityContext", "seLinuxOptions", "type"],
		},
		{
			"msg": `pod sets SELinux user "system_u" (securityContext.seLinuxOptions.user); it must be unset`,
			"path": ["spec", "securityContext", "seLinuxOptions", "user"],
		},
		{
			"msg": `pod sets SELinux role "system_r" (securityContext.seLinuxOptions.role); it must be unset`,
			"path": ["spec", "securityContext", "seLinuxOptions", "role"],
		},
	}
}

test_ephemeral_container_role_denied if {
	v := selinux.violation with input as {"pod": {"spec": {
		"containers": [{"name": "app"}],
		"ephemeralContainers": [{"name": "debug", "securityContext": {"seLinuxOptions": {"role": "sysadm_r"}}}],
	}}}
	{x.path | some x in v} == {["spec", "ephemeralContainers", 0, "securityContext", "seLinuxOptions", "role"]}
}

# container_engine_t is a container type from v1.31.
test_container_engine_t_from_v1_31 if {
	pod := {"spec": {"containers": [{"name": "app", "securityContext": {"seLinuxOptions": {"type": "container_engine_t"}}}]}}
	count(selinux.violation) == 1 with input as {"pod": pod, "config": {"podSecurity": {"version": "v1.30"}}}
	count(selinux.violation) == 0 with input as {"pod": pod, "config": {"podSecurity": {"version": "v1.31"}}}
}
