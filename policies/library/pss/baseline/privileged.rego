# METADATA
# title: Privileged containers
# description: >-
#   A privileged container has every capability and access to all of the
#   node's devices: it is root on the node. The baseline Pod Security Standard
#   forbids privileged containers of every kind.
# custom:
#   id: pss-baseline-privileged
#   severity: critical
#   action: enforce
#   scope: pod
#   controls:
#     - framework: pss
#       id: baseline/privileged-containers
#     - framework: cis
#       id: "5.2.2"
#     - framework: nsa
#       id: pod-security/privileged
#     - framework: soc2
#       id: CC6.1
#   remediation: >-
#     Remove securityContext.privileged or set it to false; grant the specific
#     capability the container needs instead.
package tollgate.pss.baseline.privileged

import data.tollgate.lib.pods

violation contains {"msg": msg, "path": pods.field_path(c, ["privileged"])} if {
	some c in pods.containers
	pods.security_context_of(c).privileged == true
	msg := sprintf("%s is privileged (securityContext.privileged: true)", [pods.describe(c)])
}
