# METADATA
# title: Windows HostProcess containers
# description: >-
#   Windows HostProcess containers run directly on the node with the access of
#   a node administrator. The baseline Pod Security Standard forbids them, at
#   the pod level and on every container.
# custom:
#   id: pss-baseline-host-process
#   severity: critical
#   action: enforce
#   scope: pod
#   controls:
#     - framework: pss
#       id: baseline/host-process
#     - framework: cis
#       id: "5.2.11"
#     - framework: nsa
#       id: pod-security/privileged
#     - framework: soc2
#       id: CC6.1
#   remediation: >-
#     Remove securityContext.windowsOptions.hostProcess from the pod and its
#     containers, or set it to false. Run node administration tasks outside
#     the cluster's workloads.
package tollgate.pss.baseline.host_process

import data.tollgate.lib.pods

violation contains {"msg": msg, "path": path} if {
	pods.security_context.windowsOptions.hostProcess == true
	path := array.concat(pods.security_context_path, ["windowsOptions", "hostProcess"])
	msg := "pod runs as a Windows HostProcess pod (securityContext.windowsOptions.hostProcess: true)"
}

violation contains {"msg": msg, "path": path} if {
	some c in pods.containers
	pods.security_context_of(c).windowsOptions.hostProcess == true
	path := pods.field_path(c, ["windowsOptions", "hostProcess"])
	msg := sprintf(
		"%s is a Windows HostProcess container (securityContext.windowsOptions.hostProcess: true)",
		[pods.describe(c)],
	)
}
