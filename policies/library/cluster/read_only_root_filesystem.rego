# METADATA
# title: Read-only root filesystem
# description: >-
#   A container whose root filesystem is writable lets whoever runs code in
#   it change its binaries and libraries, or drop tools to use later, and
#   the change lives as long as the container. With
#   securityContext.readOnlyRootFilesystem: true the image stays as built,
#   and what the application must write goes to volumes it names (an
#   emptyDir for /tmp). Every container is judged: init, ephemeral and
#   regular ones. Windows pods (spec.os.name: windows) are not: Windows
#   does not support the field, and the API server rejects it there.
# custom:
#   id: containers-read-only-root-filesystem
#   severity: low
#   action: audit
#   scope: pod
#   controls:
#     - framework: nsa
#       id: pod-security/immutable-filesystem
#   remediation: >-
#     Set securityContext.readOnlyRootFilesystem: true on the container and
#     mount an emptyDir (or another volume) where the application writes,
#     such as /tmp or a cache directory.
package tollgate.cluster.read_only_root_filesystem

import data.tollgate.lib.cluster
import data.tollgate.lib.pods

violation contains {"msg": msg, "path": pods.field_path(c, ["readOnlyRootFilesystem"])} if {
	not pods.is_windows
	some c in pods.containers
	setting := object.get(pods.security_context_of(c), "readOnlyRootFilesystem", null)
	setting != true
	msg := sprintf("%s has a writable root filesystem (securityContext.readOnlyRootFilesystem is %s, not true)", [
		pods.describe(c),
		_described(setting),
	])
}

_described(null) := "unset"

_described(v) := cluster.describe_value(v) if v != null
