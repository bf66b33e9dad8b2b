# METADATA
# title: Added capabilities
# description: >-
#   Containers may add only the Linux capabilities a container runtime grants
#   by default. The baseline Pod Security Standard forbids adding any other
#   (SYS_ADMIN, NET_ADMIN, NET_RAW, SYS_PTRACE and the like).
# custom:
#   id: pss-baseline-capabilities
#   severity: high
#   action: enforce
#   scope: pod
#   controls:
#     - framework: pss
#       id: baseline/capabilities
#     - framework: cis
#       id: "5.2.9"
#     - framework: nsa
#       id: pod-security/privileged
#     - framework: soc2
#       id: CC6.1
#   remediation: >-
#     Remove the capability from securityContext.capabilities.add. Allowed are
#     AUDIT_WRITE, CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, MKNOD,
#     NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID and SYS_CHROOT.
package tollgate.pss.baseline.capabilities

import data.tollgate.lib.pods

# The capabilities container runtimes grant by default.
_allowed := {
	"AUDIT_WRITE",
	"CHOWN",
	"DAC_OVERRIDE",
	"FOWNER",
	"FSETID",
	"KILL",
	"MKNOD",
	"NET_BIND_SERVICE",
	"SETFCAP",
	"SETGID",
	"SETPCAP",
	"SETUID",
	"SYS_CHROOT",
}

violation contains {"msg": msg, "path": pods.field_path(c, ["capabilities", "add", i])} if {
	some c in pods.containers
	added := pods.security_context_of(c).capabilities.add
	is_array(added)
	some i, capability in added
	not capability in _allowed
	msg := sprintf(
		"%s adds capability %q, which the baseline Pod Security Standard does not allow (securityContext.capabilities.add)",
		[pods.describe(c), capability],
	)
}
