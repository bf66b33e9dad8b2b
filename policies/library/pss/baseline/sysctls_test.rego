package tollgate.pss.baseline.sysctls_test

import data.tollgate.pss.baseline.sysctls

test_safe_sysctls_allowed if {
	count(sysctls.violation) == 0 with input as {"pod": {"spec": {
		"securityContext": {"sysctls": [
			{"name": "net.ipv4.ip_unprivileged_port_start", "value": "80"},
			{"name": "net.ipv4.tcp_keepalive_time", "value": "600"},
			{"name": "kernel.shm_rmid_forced", "value": "1"},
		]},
		"containers": [{"name": "app"}],
	}}}
	count(sysctls.violation) == 0 with input as {"pod": {"spec": {"containers": [{"name": "app"}]}}}
}

test_unsafe_sysctl_denied if {
	sysctls.violation == {{
		"msg": `pod sets sysctl "net.core.somaxconn", which is not in the safe set (securityContext.sysctls[1].name)`,
		"path": ["spec", "securityContext", "sysctls", 1, "name"],
	}} with input as {"pod": {"spec": {
		"securityContext": {"sysctls": [
			{"name": "net.ipv4.tcp_syncookies", "value": "1"},
			{"name": "net.core.somaxconn", "value": "1024"},
		]},
		"containers": [{"name": "app"}],
	}}}
}

test_several_unsafe_sysctls_denied if {
	v := sysctls.violation with input as {"pod": {"spec": {"securityContext": {"sysctls": [
		{"name": "kernel.msgmax", "value": "65536"},
		{"name": "vm.overcommit_memory", "value": "1"},
		{"value": "1"},
	]}}}}
	{x.path | some x in v} == {
		["spec", "securityContext", "sysctls", 0, "name"],
		["spec", "securityContext", "sysctls", 1, "name"],
		["spec", "securityContext", "sysctls", 2, "name"],
	}
}
