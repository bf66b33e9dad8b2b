# METADATA
# title: /proc mount type
# description: >-
#   The default /proc mount masks paths of the node's /proc that leak
#   information or allow changes to the node. The baseline Pod Security
#   Standard forbids any procMount other than Default; from v1.35 it lets a
#   pod in a user namespace (hostUsers: false) unmask its own /proc, which
#   the restricted standard still forbids (pss-restricted-proc-mount).
# custom:
#   id: pss-baseline-proc-mount
#   severity: medium
#   action: enforce
#   scope: pod
#   controls:
#     - framework: pss
#       id: baseline/proc-mount-type
#     - framework: cis
#       id: "5.7.3"
#     - framework: nsa
#       id: pod-security/privileged
#     - framework: soc2
#       id: CC6.1
#   remediation: Remove securityContext.procMount or set it to Default.
package tollgate.pss.baseline.proc_mount

import data.tollgate.lib.pods
import data.tollgate.lib.pss

violation contains {"msg": msg, "path": pods.field_path(c, ["procMount"])} if {
	not _user_namespace_allowed
	some c in pods.containers
	proc_mount := pods.security_context_of(c).procMount
	not proc_mount in {"Default", null}
	msg := sprintf("%s sets procMount %q (securityContext.procMount); only Default is allowed", [pods.describe(c), proc_mount])
}

_user_namespace_allowed if {
	pss.at_least(35)
	pods.in_user_namespace
}
