# METADATA
# title: Seccomp profile required
# description: >-
#   The restricted Pod Security Standard requires a seccomp profile:
#   RuntimeDefault or Localhost, set on the pod or on every container, and no
#   container may set another type (from v1.19; before, the baseline control
#   judges the seccomp annotations). From v1.25 Windows pods are exempt.
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
import data.tollgate.lib.pss

_allowed := {"RuntimeDefault", "Localhost"}

_pod_type := _profile_type(pods.security_context)

violation contains {"msg": msg, "path": path} if {
	pss.at_least(19)
	not _exempt
	profile_type := _pod_type
	not profile_type in _allowed
	path := array.concat(pods.security_context_path, ["seccompProfile", "type"])
	msg := sprintf(
		"pod sets seccomp profile type %q (securityContext.seccompProfile.type); it must be RuntimeDefault or Localhost",
		[profile_type],
	)
}

violation contains {"msg": msg, "path": pods.field_path(c, ["seccompProfile", "type"])} if {
	pss.at_least(19)
	not _exempt
	some c in pods.containers
	profile_type := _profile_type(pods.security_context_of(c))
	not profile_type in _allowed
	msg := sprintf(
		"%s sets seccomp profile type %q (securityContext.seccompProfile.type); it must be RuntimeDefault or Localhost",
		[pods.describe(c), profile_type],
	)
}

violation contains {"msg": msg, "path": pods.field_path(c, ["seccompProfile", "type"])} if {
	pss.at_least(19)
	not _exempt
	not _pod_profile_allowed
	some c in pods.containers
	sc := pods.security_context_of(c)
	not _profile_type(sc)
	msg := sprintf(
		"%s has no seccomp profile: set securityContext.seccompProfile.type to RuntimeDefault on the container or the pod",
		[pods.describe(c)],
	)
}

_pod_profile_allowed if _pod_type in _allowed

# _profile_type is the type of a securityContext's seccompProfile, "" when
# the profile leaves it out; undefined when there is no profile.
_profile_type(sc) := t if {
	profile := sc.seccompProfile
	is_object(profile)
	t := _string(object.get(profile, "type", ""))
}

_string(s) := s if is_string(s) else := ""

# From v1.25 the control is Linux-only: Windows pods are exempt.
_exempt if {
	pss.at_least(25)
	pods.is_windows
}
