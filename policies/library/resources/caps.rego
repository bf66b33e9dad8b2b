# METADATA
# title: Resource caps
# description: >-
#   Caps the CPU and memory one container may request or be limited to, and
#   the CPU and memory a whole pod may request, so that a typo ("64" for
#   "64Mi") or an oversized workload does not reach the cluster without
#   approval. The caps are parameters.resources.container and
#   parameters.resources.pod (by default 8 CPU and 32Gi per container, 16 CPU
#   and 64Gi per pod); an empty cap turns it off. The pod's request is what
#   the scheduler reserves: the sum of its containers and sidecars, or the
#   largest init container if that is more.
# custom:
#   id: resources-caps
#   severity: medium
#   action: enforce
#   scope: pod
#   controls:
#     - framework: nsa
#       id: resource-policies
#   remediation: >-
#     Lower the request or limit, split the workload across more replicas, or
#     get an exception approved for this workload.
package tollgate.resources.caps

import data.tollgate.lib.pods
import data.tollgate.lib.quantities

_default_caps := {
	"container": {"cpu": "8", "memory": "32Gi"},
	"pod": {"cpu": "16", "memory": "64Gi"},
}

_units := {"cpu": "CPU", "memory": "memory"}

# _caps holds, once per evaluation, each cap that is on: its value as
# written (for messages) and as a number.
_caps[scope][resource] := {"written": written, "amount": quantities.parse(written)} if {
	some scope, defaults in _default_caps
	some resource, default_cap in defaults
	written := object.get(input, ["config", "parameters", "resources", scope, resource], default_cap)
	not written in {"", null}
}

_format("cpu", amount) := quantities.format_cpu(amount)

_format("memory", amount) := quantities.format_memory(amount)

violation contains {"msg": msg, "path": array.concat(c.path, ["resources", kind, resource])} if {
	some c in pods.resource_containers
	some kind in ["requests", "limits"]
	some resource, written in c.container.resources[kind]
	cap := _caps.container[resource]
	quantities.parse(written) > cap.amount
	msg := _container_message(c, kind, resource, written, cap.written)
}

_container_message(c, "requests", resource, written, cap) := sprintf(
	"%s requests %v %s, above the %v %s cap without approval",
	[pods.describe(c), written, _units[resource], cap, _units[resource]],
)

_container_message(c, "limits", resource, written, cap) := sprintf(
	"%s has a limit of %v %s, above the %v %s cap without approval",
	[pods.describe(c), written, _units[resource], cap, _units[resource]],
)

# The pod's effective request, as the scheduler computes it: pod-level
# resources when set; otherwise the larger of the containers plus sidecars
# (init containers with restartPolicy Always), and of the peak while each
# init container runs beside the sidecars started before it. A missing
# request is taken from the limit. tollgate.pod_requests is the Go code
# FinOps charges with, so caps and cost agree.
violation contains {"msg": msg, "path": path} if {
	some resource, cap in _caps.pod
	total := tollgate.pod_requests(pods.spec)[resource]
	total > cap.amount
	path := _pod_path(resource)
	msg := sprintf(
		"pod requests %s %s in total, above the %v %s pod cap without approval",
		[_format(resource, total), _units[resource], cap.written, _units[resource]],
	)
}

_pod_path(resource) := ["spec", "resources", "requests", resource] if {
	pods.spec.resources.requests[resource]
} else := ["spec", "containers"]
