# METADATA
# title: SELinux
# description: >-
#   SELinux labels confine a container. The baseline Pod Security Standard
#   allows only the container types (container_t, container_init_t,
#   container_kvm_t, and from v1.31 container_engine_t) and forbids setting a
#   custom SELinux user or role, on the pod and on every container.
# custom:
#   id: pss-baseline-selinux
#   severity: medium
#   action: enforce
#   scope: pod
#   controls:
#     - framework: pss
#       id: baseline/selinux
#     - framework: cis
#       id: "5.7.3"
#     - framework: nsa
#       id: pod-security/hardening
#     - framework: soc2
#       id: CC6.1
#   remediation: >-
#     Remove securityContext.seLinuxOptions.user and .role, and leave
#     seLinuxOptions.type unset or set it to container_t, container_init_t,
#     container_kvm_t or (from v1.31) container_engine_t.
package tollgate.pss.baseline.selinux

import data.tollgate.lib.pods
import data.tollgate.lib.pss

_allowed_types := {"", "container_t", "container_init_t", "container_kvm_t"}

_allowed_type(t) if t in _allowed_types

_allowed_type("container_engine_t") if pss.at_least(31)

# Each target is a securityContext with the path of its seLinuxOptions and a
# name for messages.
_targets contains {"options": options, "path": array.concat(pods.security_context_path, ["seLinuxOptions"]), "who": "pod"} if {
	options := pods.security_context.seLinuxOptions
	is_object(options)
}

_targets contains {"options": options, "path": pods.field_path(c, ["seLinuxOptions"]), "who": pods.describe(c)} if {
	some c in pods.containers
	options := pods.security_context_of(c).seLinuxOptions
	is_object(options)
}

violation contains {"msg": msg, "path": array.concat(t.path, ["type"])} if {
	some t in _targets
	selinux_type := t.options.type
	selinux_type != null
	not _allowed_type(selinux_type)
	msg := sprintf(
		"%s sets SELinux type %q (securityContext.seLinuxOptions.type); only container_t, container_init_t, container_kvm_t and container_engine_t (from v1.31) are allowed",
		[t.who, selinux_type],
	)
}

violation contains {"msg": msg, "path": array.concat(t.path, [field])} if {
	some t in _targets
	some field in ["user", "role"]
	value := t.options[field]
	not value in {"", null}
	msg := sprintf("%s sets SELinux %s %q (securityContext.seLinuxOptions.%s); it must be unset", [t.who, field, value, field])
}
