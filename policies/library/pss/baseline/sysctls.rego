# METADATA
# title: Unsafe sysctls
# description: >-
#   Most sysctls are not namespaced and change the whole node. The baseline
#   Pod Security Standard allows only the namespaced, safe set, which grows
#   from one Kubernetes release to the next.
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
#     net.ipv4.ip_unprivileged_port_start, net.ipv4.tcp_syncookies and
#     net.ipv4.ping_group_range; from v1.27 net.ipv4.ip_local_reserved_ports;
#     from v1.29 net.ipv4.tcp_keepalive_time, net.ipv4.tcp_fin_timeout,
#     net.ipv4.tcp_keepalive_intvl and net.ipv4.tcp_keepalive_probes; from
#     v1.32 net.ipv4.tcp_rmem and net.ipv4.tcp_wmem.
package tollgate.pss.baseline.sysctls

import data.tollgate.lib.pods
import data.tollgate.lib.pss

# The safe sysctls, each with the minor release of the standard that
# allowed it (v1.0, v1.27, ...).
_safe_since := {
	"kernel.shm_rmid_forced": 0,
	"net.ipv4.ip_local_port_range": 0,
	"net.ipv4.ip_unprivileged_port_start": 0,
	"net.ipv4.tcp_syncookies": 0,
	"net.ipv4.ping_group_range": 0,
	"net.ipv4.ip_local_reserved_ports": 27,
	"net.ipv4.tcp_keepalive_time": 29,
	"net.ipv4.tcp_fin_timeout": 29,
	"net.ipv4.tcp_keepalive_intvl": 29,
	"net.ipv4.tcp_keepalive_probes": 29,
	"net.ipv4.tcp_rmem": 32,
	"net.ipv4.tcp_wmem": 32,
}

violation contains {"msg": msg, "path": path} if {
	sysctls := pods.security_context.sysctls
	is_array(sysctls)
	some i, sysctl in sysctls
	name := _name(sysctl)
	not _safe(name)
	path := array.concat(pods.security_context_path, ["sysctls", i, "name"])
	msg := sprintf(
		"pod sets sysctl %q, which is not in the safe set of the standard %s (securityContext.sysctls[%d].name)",
		[name, pss.judged, i],
	)
}

_safe(name) if pss.at_least(_safe_since[name])

_name(sysctl) := n if {
	n := sysctl.name
	is_string(n)
} else := ""
