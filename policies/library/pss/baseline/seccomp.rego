# METADATA
# title: Seccomp not disabled
# description: >-
#   Seccomp filters the system calls a container may make. The baseline Pod
#   Security Standard forbids turning it off: a seccomp profile set on the
#   pod or on any container must be RuntimeDefault or Localhost (an
#   Unconfined profile, or one without a type, is not). Up to v1.18 the
#   standard reads the seccomp annotations of the time instead, which must
#   be runtime/default, docker/default or localhost/<profile>.
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
import data.tollgate.lib.pss

_allowed := {"RuntimeDefault", "Localhost"}

violation contains {"msg": _message("pod", profile_type), "path": path} if {
	pss.at_least(19)
	profile_type := _profile_type(pods.security_context)
	not profile_type in _allowed
	path := array.concat(pods.security_context_path, ["seccompProfile", "type"])
}

violation contains {"msg": _message(pods.describe(c), profile_type), "path": pods.field_path(c, ["seccompProfile", "type"])} if {
	pss.at_least(19)
	some c in pods.containers
	profile_type := _profile_type(pods.security_context_of(c))
	not profile_type in _allowed
}

# Up to v1.18 seccomp profiles were set by annotations, and the standard
# reads those.
_pod_annotation := "seccomp.security.alpha.kubernetes.io/pod"

_container_annotation_prefix := "container.seccomp.security.alpha.kubernetes.io/"

violation contains {"msg": msg, "path": ["metadata", "annotations", _pod_annotation]} if {
	not pss.at_least(19)
	value := pods.annotations[_pod_annotation]
	not _allowed_annotation_value(value)
	msg := sprintf(
		"annotation %q sets seccomp profile %q for the pod; only runtime/default, docker/default and localhost/<profile> are allowed",
		[_pod_annotation, value],
	)
}

violation contains {"msg": msg, "path": ["metadata", "annotations", key]} if {
	not pss.at_least(19)
	some c in pods.containers
	key := concat("", [_container_annotation_prefix, pods.name(c)])
	value := pods.annotations[key]
	not _allowed_annotation_value(value)
	msg := sprintf(
		"annotation %q sets seccomp profile %q for %s; only runtime/default, docker/default and localhost/<profile> are allowed",
		[key, value, pods.describe(c)],
	)
}

# _profile_type is the type of a securityContext's seccompProfile, "" when
# the profile leaves it out; undefined when there is no profile.
_profile_type(sc) := t if {
	profile := sc.seccompProfile
	is_object(profile)
	t := _string(object.get(profile, "type", ""))
}

_string(s) := s if is_string(s) else := ""

_message(who, "Unconfined") := sprintf("%s disables seccomp (securityContext.seccompProfile.type: Unconfined)", [who])

_message(who, profile_type) := sprintf(
	"%s sets seccomp profile type %q (securityContext.seccompProfile.type); only RuntimeDefault and Localhost are allowed",
	[who, profile_type],
) if profile_type != "Unconfined"

_allowed_annotation_value("runtime/default")

_allowed_annotation_value("docker/default")

_allowed_annotation_value(value) if {
	is_string(value)
	startswith(value, "localhost/")
}
