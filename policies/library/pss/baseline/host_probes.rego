# METADATA
# title: Probe and lifecycle hook hosts
# description: >-
#   The kubelet runs HTTP and TCP probes and lifecycle hooks from the node,
#   against the host they name, or the pod's own IP when they name none. A
#   host lets a pod make the node connect wherever the node can reach: the
#   cloud metadata address (169.254.169.254), the node's own services, other
#   tenants' pods. The baseline Pod Security Standard (from v1.34) forbids
#   a host in the httpGet and tcpSocket handlers of probes and lifecycle
#   hooks.
# custom:
#   id: pss-baseline-host-probes
#   severity: high
#   action: enforce
#   scope: pod
#   controls:
#     - framework: pss
#       id: baseline/host-probes
#     - framework: nsa
#       id: pod-security/privileged
#     - framework: soc2
#       id: CC6.1
#   remediation: >-
#     Remove host from the httpGet and tcpSocket handlers of livenessProbe,
#     readinessProbe, startupProbe and lifecycle.postStart and preStop: they
#     then reach the pod's own IP.
package tollgate.pss.baseline.host_probes

import data.tollgate.lib.pods
import data.tollgate.lib.pss

_probes := ["livenessProbe", "readinessProbe", "startupProbe"]

_hooks := ["postStart", "preStop"]

# The handlers that reach a host: httpGet and tcpSocket.
_kinds := ["httpGet", "tcpSocket"]

violation contains _violation(c, [probe, kind, "host"], host) if {
	pss.at_least(34)
	some c in pods.containers
	some probe in _probes
	some kind in _kinds
	host := c.container[probe][kind].host
	not host in {"", null}
}

violation contains _violation(c, ["lifecycle", hook, kind, "host"], host) if {
	pss.at_least(34)
	some c in pods.containers
	some hook in _hooks
	some kind in _kinds
	host := c.container.lifecycle[hook][kind].host
	not host in {"", null}
}

_violation(c, field, host) := {
	"msg": sprintf(
		"%s sets %s to %q; probes and lifecycle hooks may not name a host (without one they reach the pod)",
		[pods.describe(c), concat(".", field), host],
	),
	"path": array.concat(c.path, field),
}
