# METADATA
# title: Privilege escalation
# description: >-
#   Unless allowPrivilegeEscalation is false, a process in the container can
#   gain more privileges than its parent, through setuid binaries or file
#   capabilities. The restricted Pod Security Standard requires every
#   container to set it to false (from v1.8). From v1.25 Windows pods are
#   exempt.
# custom:
#   id: pss-restricted-privilege-escalation
#   severity: high
#   action: enforce
#   scope: pod
#   controls:
#     - framework: pss
#       id: restricted/privilege-escalation
#     - framework: cis
#       id: "5.2.6"
#     - framework: cis
#       id: "5.7.3"
#     - framework: nsa
#       id: pod-security/privileged
#     - framework: soc2
#       id: CC6.1
#   remediation: Set securityContext.allowPrivilegeEscalation to false on every container.
package tollgate.pss.restricted.privilege_escalation

import data.tollgate.lib.pods
import data.tollgate.lib.pss

violation contains {"msg": msg, "path": pods.field_path(c, ["allowPrivilegeEscalation"])} if {
	pss.at_least(8)
	not _exempt
	some c in pods.containers
	value := object.get(pods.security_context_of(c), "allowPrivilegeEscalation", null)
	value != false
	msg := _message(c, value)
}

_message(c, null) := sprintf("%s does not set securityContext.allowPrivilegeEscalation to false", [pods.describe(c)])

_message(c, value) := sprintf(
	"%s allows privilege escalation (securityContext.allowPrivilegeEscalation: %v)",
	[pods.describe(c), value],
) if value != null

# From v1.25 the control is Linux-only: Windows pods are exempt.
_exempt if {
	pss.at_least(25)
	pods.is_windows
}
