# METADATA
# title: Capabilities dropped
# description: >-
#   The restricted Pod Security Standard requires every container to drop all
#   Linux capabilities and to add back at most NET_BIND_SERVICE. Dropping ALL
#   also removes NET_RAW, which runtimes grant by default. The control starts
#   at v1.22 (before, the baseline control judges added capabilities); from
#   v1.25 Windows pods are exempt.
# custom:
#   id: pss-restricted-capabilities
#   severity: medium
#   action: enforce
#   scope: pod
#   controls:
#     - framework: pss
#       id: restricted/capabilities
#     - framework: cis
#       id: "5.2.8"
#     - framework: cis
#       id: "5.2.9"
#     - framework: cis
#       id: "5.2.10"
#     - framework: nsa
#       id: pod-security/privileged
#     - framework: soc2
#       id: CC6.1
#   remediation: >-
#     Set securityContext.capabilities.drop to ["ALL"] on every container and
#     add back only NET_BIND_SERVICE, if the container binds a port below 1024.
package tollgate.pss.restricted.capabilities

import data.tollgate.lib.pods
import data.tollgate.lib.pss

violation contains {"msg": msg, "path": pods.field_path(c, ["capabilities", "drop"])} if {
	pss.at_least(22)
	not _exempt
	some c in pods.containers
	not _drops_all(c)
	msg := sprintf("%s does not drop ALL capabilities (securityContext.capabilities.drop must include ALL)", [pods.describe(c)])
}

violation contains {"msg": msg, "path": pods.field_path(c, ["capabilities", "add", i])} if {
	pss.at_least(22)
	not _exempt
	some c in pods.containers
	added := pods.security_context_of(c).capabilities.add
	is_array(added)
	some i, capability in added
	capability != "NET_BIND_SERVICE"
	msg := sprintf(
		"%s adds capability %q (securityContext.capabilities.add); only NET_BIND_SERVICE may be added",
		[pods.describe(c), capability],
	)
}

_drops_all(c) if {
	dropped := pods.security_context_of(c).capabilities.drop
	is_array(dropped)
	"ALL" in dropped
}

# From v1.25 the control is Linux-only: Windows pods are exempt.
_exempt if {
	pss.at_least(25)
	pods.is_windows
}
