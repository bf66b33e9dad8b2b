# METADATA
# title: Running as non-root user
# description: >-
#   The restricted Pod Security Standard forbids running as UID 0: runAsUser
#   must not be 0, on the pod or on any container (from v1.23). From v1.35 a
#   pod in a user namespace (hostUsers: false) is exempt.
# custom:
#   id: pss-restricted-run-as-user
#   severity: high
#   action: enforce
#   scope: pod
#   controls:
#     - framework: pss
#       id: restricted/running-as-non-root-user
#     - framework: cis
#       id: "5.2.7"
#     - framework: cis
#       id: "5.7.3"
#     - framework: nsa
#       id: pod-security/non-root
#     - framework: soc2
#       id: CC6.1
#   remediation: Set securityContext.runAsUser to a non-zero UID, or remove it and set a non-root USER in the image.
package tollgate.pss.restricted.run_as_user

import data.tollgate.lib.pods
import data.tollgate.lib.pss

violation contains {"msg": msg, "path": path} if {
	pss.at_least(23)
	not _exempt
	pods.security_context.runAsUser == 0
	path := array.concat(pods.security_context_path, ["runAsUser"])
	msg := "pod runs as root (securityContext.runAsUser: 0)"
}

violation contains {"msg": msg, "path": pods.field_path(c, ["runAsUser"])} if {
	pss.at_least(23)
	not _exempt
	some c in pods.containers
	pods.security_context_of(c).runAsUser == 0
	msg := sprintf("%s runs as root (securityContext.runAsUser: 0)", [pods.describe(c)])
}

# From v1.35 a pod in a user namespace (hostUsers: false) is exempt: UID 0
# in the container is not root on the node.
_exempt if {
	pss.at_least(35)
	pods.in_user_namespace
}
