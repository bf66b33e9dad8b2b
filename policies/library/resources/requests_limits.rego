# METADATA
# title: Resource requests and limits
# description: >-
#   Every container and init container must declare the resource requests
#   the scheduler needs to place it and the limits that keep it from starving
#   its neighbours. Which ones is configured in parameters.resources
#   (requireRequests, requireLimits; by default cpu and memory requests and a
#   memory limit). A limit also counts as the request, as Kubernetes then
#   defaults the request to it, and pod-level resources cover every
#   container.
# custom:
#   id: resources-requests-limits
#   severity: medium
#   action: enforce
#   scope: pod
#   controls:
#     - framework: nsa
#       id: resource-policies
#   remediation: >-
#     Set resources.requests (and resources.limits) for the named resource on
#     every container, sized from observed usage.
package tollgate.resources.requests_limits

import data.tollgate.lib.pods

_params := p if {
	p := input.config.parameters.resources
	is_object(p)
} else := {}

_require_requests := r if {
	r := _params.requireRequests
	is_array(r)
} else := ["cpu", "memory"]

_require_limits := r if {
	r := _params.requireLimits
	is_array(r)
} else := ["memory"]

violation contains {"msg": msg, "path": array.concat(c.path, ["resources", "requests", resource])} if {
	some c in pods.resource_containers
	some resource in _require_requests
	not _set(c.container, "requests", resource)
	not _set(c.container, "limits", resource)
	not _set(pods.spec, "requests", resource)
	msg := sprintf("%s sets no %s request (resources.requests.%s)", [pods.describe(c), resource, resource])
}

violation contains {"msg": msg, "path": array.concat(c.path, ["resources", "limits", resource])} if {
	some c in pods.resource_containers
	some resource in _require_limits
	not _set(c.container, "limits", resource)
	not _set(pods.spec, "limits", resource)
	msg := sprintf("%s sets no %s limit (resources.limits.%s)", [pods.describe(c), resource, resource])
}

# _set holds when obj.resources[kind][resource] is set; obj is a container,
# or the pod spec for pod-level resources.
_set(obj, kind, resource) if {
	v := obj.resources[kind][resource]
	v != ""
	v != null
}
