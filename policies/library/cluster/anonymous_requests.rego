# METADATA
# title: Anonymous requests to the API server
# description: >-
#   With anonymous authentication on and RBAC granting system:anonymous or
#   system:unauthenticated anything beyond health and version endpoints,
#   anyone who can reach the API server can read the cluster. The audit
#   probes it with an unauthenticated GET of a resource list (ClusterFacts
#   apiServer.anonymous): 401 (anonymous requests refused) and 403 (accepted
#   but denied) pass; a 2xx answer means anonymous clients can read it; any
#   other status, and a probe that failed (status 0), is reported with what
#   happened, as it proves nothing either way.
# custom:
#   id: cluster-anonymous-requests
#   severity: critical
#   action: audit
#   scope: object
#   admission: false
#   kinds: [tollgate.dev/ClusterFacts]
#   controls:
#     - framework: nsa
#       id: network/control-plane
#     - framework: nsa
#       id: auth/authentication
#   remediation: >-
#     Start the API server with --anonymous-auth=false (or, from v1.32, an
#     AuthenticationConfiguration that allows anonymous requests only to
#     /healthz, /readyz and /livez), and remove RBAC bindings to
#     system:anonymous and system:unauthenticated.
package tollgate.cluster.anonymous_requests

import data.tollgate.lib.cluster

_probe := p if {
	p := input.object.apiServer.anonymous
	is_object(p)
}

_path := cluster.describe_value(object.get(_probe, "path", null))

_status := object.get(_probe, "status", null)

_path_of_status := ["apiServer", "anonymous", "status"]

violation contains {"msg": "the cluster facts hold no anonymous probe (apiServer.anonymous), so whether the API server answers anonymous requests cannot be told", "path": ["apiServer", "anonymous"]} if {
	not _probe
}

violation contains {"msg": msg, "path": _path_of_status} if {
	is_number(_status)
	_status >= 200
	_status < 300
	msg := sprintf("the API server answered an anonymous GET %s with %d: clients without credentials can read the cluster", [_path, _status])
}

violation contains {"msg": msg, "path": _path_of_status} if {
	_status == 0
	msg := sprintf("the anonymous probe (GET %s) failed: %s; whether the API server answers anonymous requests cannot be told", [
		_path, _error,
	])
}

violation contains {"msg": msg, "path": _path_of_status} if {
	_probe
	not _status in {0, 401, 403}
	not _success
	msg := sprintf("the API server answered an anonymous GET %s with %s, neither 401 nor 403, so anonymous access cannot be ruled out", [
		_path, cluster.describe_value(_status),
	])
}

_success if {
	is_number(_status)
	_status >= 200
	_status < 300
}

_error := cluster.describe_value(e) if {
	e := _probe.error
	is_string(e)
	e != ""
} else := "no error recorded"
