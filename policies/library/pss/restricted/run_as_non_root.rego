# METADATA
# title: Running as non-root
# description: >-
#   The restricted Pod Security Standard requires containers to run as a
#   non-root user: runAsNonRoot must be true on the pod or on every container,
#   and no container may set it to false. The kubelet then refuses to start a
#   container whose image would run as UID 0. From v1.35 a pod in a user
#   namespace (hostUsers: false) is exempt.
# custom:
#   id: pss-restricted-run-as-non-root
#   severity: high
#   action: enforce
#   scope: pod
#   controls:
#     - framework: pss
#       id: restricted/running-as-non-root
#     - framework: cis
#       id: "5.2.7"
#     - framework: cis
#       id: "5.7.3"
#     - framework: nsa
#       id: pod-security/non-root
#     - framework: soc2
#       id: CC6.1
#   remediation: >-
#     Set spec.securityContext.runAsNonRoot to true (or set it on every
#     container) and build the image to run as a non-root user (USER 65532).
package tollgate.pss.restricted.run_as_non_root

import data.tollgate.lib.pods
import data.tollgate.lib.pss

_pod_value := object.get(pods.security_context, "runAsNonRoot", null)

violation contains {"msg": msg, "path": path} if {
	not _exempt
	_pod_value == false
	path := array.concat(pods.security_context_path, ["runAsNonRoot"])
	msg := "pod allows running as root (securityContext.runAsNonRoot: false)"
}

violation contains {"msg": msg, "path": pods.field_path(c, ["runAsNonRoot"])} if {
	not _exempt
	some c in pods.containers
	object.get(pods.security_context_of(c), "runAsNonRoot", null) == false
	msg := sprintf("%s allows running as root (securityContext.runAsNonRoot: false)", [pods.describe(c)])
}

violation contains {"msg": msg, "path": pods.field_path(c, ["runAsNonRoot"])} if {
	not _exempt
	_pod_value != true
	some c in pods.containers
	object.get(pods.security_context_of(c), "runAsNonRoot", null) == null
	msg := sprintf(
		"%s may run as root: set securityContext.runAsNonRoot to true on the container or the pod",
		[pods.describe(c)],
	)
}

# From v1.35 a pod in a user namespace (hostUsers: false) is exempt: UID 0
# in the container is not root on the node.
_exempt if {
	pss.at_least(35)
	pods.in_user_namespace
}
