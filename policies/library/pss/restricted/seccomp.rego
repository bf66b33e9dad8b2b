# METADATA
# title: Seccomp profile required
# description: >-
#   The restricted Pod Security Standard requires a seccomp profile:
#   RuntimeDefault or Localhost, set on the pod or on every container, and no
#   container may set another type. Windows pods are exempt.
# custom:
#   id: pss-restricted-seccomp
#   severity: medium
#   action: enforce
#   scope: pod
#   controls:
#     - framework: pss
#       id: restricted/seccomp
#     - framework: cis
#       id: "5.7.2"
#     - framework: nsa
#       id: pod-security/hardening
#     - framework: soc2
#       id: CC6.1
#   remediation: Set spec.securityContext.seccompProfile.type to RuntimeDefault (or Localhost with localhostProfile).
package tollgate.pss.restricted.seccomp

import data.tollgate.lib.pods

_allowed := {"RuntimeDefault", "Localhost"}

_pod_type := object.get(pods.security_context, ["seccompProfile", "type"], null)

violation contains {"msg": msg, "path": path} if {
	not pods.is_windows
	_pod_type != null
	not _pod_type in _allowed
	path := array.concat(pods.security_context_path, ["seccompProfile", "type"])
	msg := sprintf(
		"pod sets seccomp profile type %q (securityContext.seccompProfile.type); it must be RuntimeDefault or Localhost",
		[_pod_type],
	)
}

violation contains {"msg": msg, "path": pods.field_path(c, ["seccompProfile", "type"])} if {
	not pods.is_windows
	some c in pods.containers
	profile_type := object.get(pods.security_context_of(c), ["seccompProfile", "type"], null)
	profile_type != null
	not profile_type in _allowed
	msg := sprintf(
		"%s sets seccomp profile type %q (securityContext.seccompProfile.type); it must be RuntimeDefault or Localhost",
		[pods.describe(c), profile_type],
	)
}

violation contains {"msg": msg, "path": pods.field_path(c, ["seccompProfile", "type"])} if {
	not pods.is_windows
	not _pod_type in _allowed
	some c in pods.containers
	object.get(pods.security_context_of(c), ["seccompProfile", "type"], null) == null
	msg := sprintf(
		"%s has no seccomp profile: set securityContext.seccompProfile.type to RuntimeDefault on the container or the pod",
		[pods.describe(c)],
	)
}
