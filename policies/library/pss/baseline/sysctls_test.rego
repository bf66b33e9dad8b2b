package tollgate.pss.baseline.sysctls_test

import data.tollgate.pss.baseline.sysctls

_pod(names) := {"spec": {
	"securityContext": {"sysctls": [{"name": n, "value": "1"} | some n in names]},
	"containers": [{"name": "app"}],
}}

_at(version, names) := {"pod": _pod(names), "config": {"podSecurity": {"version": version}}}

test_safe_sysctls_allowed if {
	count(sysctls.violation) == 0 with input as {"pod": _pod([
		"net.ipv4.ip_unprivileged_port_start",
		"net.ipv4.tcp_keepalive_time",
		"kernel.shm_rmid_forced",
		"net.ipv4.tcp_rmem",
		"net.ipv4.tcp_wmem",
	])}
	count(sysctls.violation) == 0 with input as {"pod": {"spec": {"containers": [{"name": "app"}]}}}
}

test_unsafe_sysctl_denied if {
	sysctls.violation == {{
		"msg": `pod sets sysctl "net.core.somaxconn", which is not in the safe set of the standard latest (securityContext.sysctls[1].name)`,
		"path": ["spec", "securityContext", "sysctls", 1, "name"],
	}} with input as {"pod": _pod(["net.ipv4.tcp_syncookies", "net.core.somaxconn"])}
}

# The safe set grows: each sysctl is allowed from the release that added it.
test_safe_set_per_version if {
	every version in ["v1.0", "v1.26"] {
		count(sysctls.violation) == 0 with input as _at(version, ["kernel.shm_rmid_forced", "net.ipv4.ping_group_range"])
		count(sysctls.violation) == 1 with input as _at(version, ["net.ipv4.ip_local_reserved_ports"])
	}
	count(sysctls.violation) == 0 with input as _at("v1.27", ["net.ipv4.ip_local_reserved_ports"])
	count(sysctls.violation) == 4 with input as _at("v1.28", [
		"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
		"net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes",
	])
	count(sysctls.violation) == 0 with input as _at("v1.29", [
		"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
		"net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes",
	])
	sysctls.violation == {{
		"msg": `pod sets sysctl "net.ipv4.tcp_wmem", which is not in the safe set of the standard v1.31 (securityContext.sysctls[1].name)`,
		"path": ["spec", "securityContext", "sysctls", 1, "name"],
	}} with input as _at("v1.31", ["net.ipv4.tcp_syncookies", "net.ipv4.tcp_wmem"])
	count(sysctls.violation) == 0 with input as _at("v1.32", ["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"])
}

test_several_unsafe_sysctls_denied if {
	v := sysctls.violation with input as {"pod": {"spec": {"securityContext": {"sysctls": [
		{"name": "kernel.msgmax", "value": "65536"},
		{"name": "vm.overcommit_memory", "value": "1"},
		{"value": "1"},
		null,
	]}}}}
	{x.path | some x in v} == {
		["spec", "securityContext", "sysctls", 0, "name"],
		["spec", "securityContext", "sysctls", 1, "name"],
		["spec", "securityContext", "sysctls", 2, "name"],
		["spec", "securityContext", "sysctls", 3, "name"],
	}
}
