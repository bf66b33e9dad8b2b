# METADATA
# title: /proc mount type (restricted)
# description: >-
#   The default /proc mount masks paths of the node's /proc that leak
#   information or allow changes to the node. From v1.35 the baseline Pod
#   Security Standard lets a pod in a user namespace (hostUsers: false)
#   unmask /proc; the restricted standard does not: every container's
#   procMount must be Default. Before v1.35 the baseline control
#   (pss-baseline-proc-mount) forbids it for every pod.
# custom:
#   id: pss-restricted-proc-mount
#   severity: medium
#   action: enforce
#   scope: pod
#   controls:
#     - framework: pss
#       id: restricted/proc-mount-type
#     - framework: cis
#       id: "5.7.3"
#     - framework: nsa
#       id: pod-security/privileged
#     - framework: soc2
#       id: CC6.1
#   remediation: Remove securityContext.procMount or set it to Default, in user namespaces too.
package tollgate.pss.restricted.proc_mount

import data.tollgate.lib.pods
import data.tollgate.lib.pss

violation contains {"msg": msg, "path": pods.field_path(c, ["procMount"])} if {
	pss.at_least(35)
	some c in pods.containers
	proc_mount := pods.security_context_of(c).procMount
	not proc_mount in {"Default", null}
	msg := sprintf("%s sets procMount %q (securityContext.procMount); only Default is allowed", [pods.describe(c), proc_mount])
}
