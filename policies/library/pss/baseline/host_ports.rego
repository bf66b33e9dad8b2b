# METADATA
# title: Host ports
# description: >-
#   A host port binds a container port on the node's own network interfaces,
#   bypassing network policies and limiting where the pod can be scheduled.
#   The baseline Pod Security Standard forbids any host port other than 0.
# custom:
#   id: pss-baseline-host-ports
#   severity: medium
#   action: enforce
#   scope: pod
#   controls:
#     - framework: pss
#       id: baseline/host-ports
#     - framework: cis
#       id: "5.2.13"
#     - framework: nsa
#       id: pod-security/privileged
#     - framework: soc2
#       id: CC6.1
#   remediation: >-
#     Remove ports[].hostPort and expose the port through a Service (NodePort
#     or LoadBalancer if it must be reachable from outside the cluster).
package tollgate.pss.baseline.host_ports

import data.tollgate.lib.pods

violation contains {"msg": msg, "path": array.concat(c.path, ["ports", i, "hostPort"])} if {
	some c in pods.containers
	ports := c.container.ports
	is_array(ports)
	some i, port in ports
	host_port := port.hostPort
	host_port != null
	host_port != 0
	msg := sprintf("%s binds host port %v (ports[%d].hostPort: %v)", [pods.describe(c), host_port, i, host_port])
}
