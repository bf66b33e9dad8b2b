# METADATA
# title: AppArmor
# description: >-
#   AppArmor confines what a container's processes may do. The baseline Pod
#   Security Standard forbids turning it off: a profile, set on the pod, on a
#   container or through the legacy per-container annotation, must be the
#   runtime's default or a profile loaded on the node. A profile without a
#   type sets none of these; an empty annotation sets no profile.
# custom:
#   id: pss-baseline-apparmor
#   severity: medium
#   action: enforce
#   scope: pod
#   controls:
#     - framework: pss
#       id: baseline/apparmor
#     - framework: cis
#       id: "5.7.3"
#     - framework: nsa
#       id: pod-security/hardening
#     - framework: soc2
#       id: CC6.1
#   remediation: >-
#     Set securityContext.appArmorProfile.type to RuntimeDefault or Localhost,
#     or remove it; set legacy container.apparmor.security.beta.kubernetes.io
#     annotations to runtime/default or localhost/<profile>, or remove them.
package tollgate.pss.baseline.apparmor

import data.tollgate.lib.pods

_allowed_types := {"RuntimeDefault", "Localhost"}

_annotation_prefix := "container.apparmor.security.beta.kubernetes.io/"

violation contains {"msg": msg, "path": path} if {
	profile_type := _profile_type(pods.security_context)
	not profile_type in _allowed_types
	path := array.concat(pods.security_context_path, ["appArmorProfile", "type"])
	msg := sprintf(
		"pod sets AppArmor profile type %q (securityContext.appArmorProfile.type); only RuntimeDefault and Localhost are allowed",
		[profile_type],
	)
}

violation contains {"msg": msg, "path": pods.field_path(c, ["appArmorProfile", "type"])} if {
	some c in pods.containers
	profile_type := _profile_type(pods.security_context_of(c))
	not profile_type in _allowed_types
	msg := sprintf(
		"%s sets AppArmor profile type %q (securityContext.appArmorProfile.type); only RuntimeDefault and Localhost are allowed",
		[pods.describe(c), profile_type],
	)
}

violation contains {"msg": msg, "path": ["metadata", "annotations", key]} if {
	some key, value in pods.annotations
	startswith(key, _annotation_prefix)
	not _allowed_annotation_value(value)
	container := substring(key, count(_annotation_prefix), -1)
	msg := sprintf(
		"annotation %q sets AppArmor profile %q for container %q; only runtime/default and localhost/<profile> are allowed",
		[key, value, container],
	)
}

# _profile_type is the type of a securityContext's appArmorProfile, "" when
# the profile leaves it out; undefined when there is no profile.
_profile_type(sc) := t if {
	profile := sc.appArmorProfile
	is_object(profile)
	t := _string(object.get(profile, "type", ""))
}

_string(s) := s if is_string(s) else := ""

# An empty annotation sets no profile: the runtime's default applies.
_allowed_annotation_value("")

_allowed_annotation_value("runtime/default")

_allowed_annotation_value(value) if startswith(value, "localhost/")
