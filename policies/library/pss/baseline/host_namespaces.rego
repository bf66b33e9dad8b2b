# METADATA
# title: Host namespaces
# description: >-
#   A pod that shares the node's network, process or IPC namespace can see and
#   reach the node's other processes and traffic. The baseline Pod Security
#   Standard forbids hostNetwork, hostPID and hostIPC.
# custom:
#   id: pss-baseline-host-namespaces
#   severity: high
#   action: enforce
#   scope: pod
#   controls:
#     - framework: pss
#       id: baseline/host-namespaces
#     - framework: cis
#       id: "5.2.3"
#     - framework: cis
#       id: "5.2.4"
#     - framework: cis
#       id: "5.2.5"
#     - framework: nsa
#       id: pod-security/privileged
#     - framework: soc2
#       id: CC6.1
#   remediation: >-
#     Remove spec.hostNetwork, spec.hostPID and spec.hostIPC or set them to
#     false. Expose network services through a Service instead of the host
#     network.
package tollgate.pss.baseline.host_namespaces

import data.tollgate.lib.pods

_namespaces := {
	"hostNetwork": "network",
	"hostPID": "process (PID)",
	"hostIPC": "IPC",
}

violation contains {"msg": msg, "path": ["spec", field]} if {
	some field, namespace in _namespaces
	pods.spec[field] == true
	msg := sprintf("pod shares the host's %s namespace (spec.%s: true)", [namespace, field])
}
