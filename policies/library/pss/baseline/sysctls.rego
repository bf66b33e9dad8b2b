# METADATA
# title: Unsafe sysctls
# description: >-
#   Most sysctls are not namespaced and change the whole node. The baseline
#   Pod Security Standard allows only the namespaced, safe set.
# custom:
#   id: pss-baseline-sysctls
#   severity: medium
#   action: enforce
#   scope: pod
#   controls:
#     - framework: pss
#       id: baseline/sysctls
#     - framework: nsa
#       id: pod-security/privileged
#     - framework: soc2
#       id: CC6.1
#   remediation: >-
#     Remove the sysctl from spec.securityContext.sysctls. Allowed are
#     kernel.shm_rmid_forced, net.ipv4.ip_local_port_range,
#     net.ipv4.ip_unprivileged_port_start, net.ipv4.tcp_syncookies,
#     net.ipv4.ping_group_range, net.ipv4.ip_local_reserved_ports,
#     net.ipv4.tcp_keepalive_time, net.ipv4.tcp_fin_timeout,
#     net.ipv4.tcp_keepalive_intvl and net.ipv4.tcp_keepalive_probes.
package tollgate.pss.baseline.sysctls

import data.tollgate.lib.pods

_safe := {
	"kernel.shm_rmid_forced",
	"net.ipv4.ip_local_port_range",
	"net.ipv4.ip_unprivileged_port_start",
	"net.ipv4.tcp_syncookies",
	"net.ipv4.ping_group_range",
	"net.ipv4.ip_local_reserved_ports",
	"net.ipv4.tcp_keepalive_time",
	"net.ipv4.tcp_fin_timeout",
	"net.ipv4.tcp_keepalive_intvl",
	"net.ipv4.tcp_keepalive_probes",
}

violation contains {"msg": msg, "path": path} if {
	sysctls := pods.security_context.sysctls
	is_array(sysctls)
	some i, sysctl in sysctls
	name := object.get(sysctl, "name", "")
	not name in _safe
	path := array.concat(pods.security_context_path, ["sysctls", i, "name"])
	msg := sprintf("pod sets sysctl %q, which is not in the safe set (securityContext.sysctls[%d].name)", [name, i])
}
