# METADATA
# title: Seccomp not disabled
# description: >-
#   Seccomp filters the system calls a container may make. The baseline Pod
#   Security Standard forbids turning it off with an Unconfined profile, on
#   the pod or on any container.
# custom:
#   id: pss-baseline-seccomp
#   severity: medium
#   action: enforce
#   scope: pod
#   controls:
#     - framework: pss
#       id: baseline/seccomp
#     - framework: cis
#       id: "5.7.2"
#     - framework: nsa
#       id: pod-security/hardening
#     - framework: soc2
#       id: CC6.1
#   remediation: Set securityContext.seccompProfile.type to RuntimeDefault (or Localhost with a profile on the node).
package tollgate.pss.baseline.seccomp

import data.tollgate.lib.pods

violation contains {"msg": msg, "path": path} if {
	pods.security_context.seccompProfile.type == "Unconfined"
	path := array.concat(pods.security_context_path, ["seccompProfile", "type"])
	msg := "pod disables seccomp (securityContext.seccompProfile.type: Unconfined)"
}

violation contains {"msg": msg, "path": pods.field_path(c, ["seccompProfile", "type"])} if {
	some c in pods.containers
	pods.security_context_of(c).seccompProfile.type == "Unconfined"
	msg := sprintf("%s disables seccomp (securityContext.seccompProfile.type: Unconfined)", [pods.describe(c)])
}
