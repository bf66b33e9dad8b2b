# METADATA
# title: API server TLS
# description: >-
#   Everything the cluster does passes through the API server: its traffic
#   must be encrypted with a current TLS version and its certificate checked,
#   or credentials and Secrets can be read and changed on the way. Judged on
#   the audit's ClusterFacts (what it measured when it connected):
#   apiServer.tls must be present (absent when the API server was reached
#   over plain HTTP), its version 1.2 or 1.3, and verified true (the chain
#   checked against the cluster's CA).
# custom:
#   id: cluster-api-server-tls
#   severity: high
#   action: audit
#   scope: object
#   admission: false
#   kinds: [tollgate.dev/ClusterFacts]
#   controls:
#     - framework: nsa
#       id: network/encryption
#     - framework: nsa
#       id: network/control-plane
#     - framework: soc2
#       id: CC6.7
#   remediation: >-
#     Serve the API server over HTTPS only (no --insecure-port on old
#     releases), with --tls-min-version=VersionTLS12 or later, and give
#     clients the cluster CA to verify it instead of insecure-skip-tls-verify.
package tollgate.cluster.api_server_tls

import data.tollgate.lib.cluster

_api := a if {
	a := input.object.apiServer
	is_object(a)
}

_url := cluster.describe_value(object.get(_api, "url", null))

_versions := {"1.2", "1.3"}

violation contains {"msg": "the cluster facts hold no apiServer measurements, so how the API server is reached cannot be told", "path": ["apiServer"]} if {
	not _api
}

violation contains {"msg": msg, "path": ["apiServer", "tls"]} if {
	object.get(_api, "tls", null) == null
	msg := sprintf("the API server at %s was reached over plain HTTP, without TLS", [_url])
}

violation contains {"msg": msg, "path": ["apiServer", "tls"]} if {
	tls := _api.tls
	tls != null
	not is_object(tls)
	msg := sprintf("apiServer.tls is %s, not an object, so how the API server at %s encrypts cannot be told", [cluster.describe_value(tls), _url])
}

violation contains {"msg": msg, "path": ["apiServer", "tls", "version"]} if {
	tls := _api.tls
	is_object(tls)
	version := object.get(tls, "version", null)
	not _current(version)
	msg := sprintf("the API server at %s answered with TLS version %s; want 1.2 or 1.3", [_url, cluster.describe_value(version)])
}

violation contains {"msg": msg, "path": ["apiServer", "tls", "verified"]} if {
	tls := _api.tls
	is_object(tls)
	not tls.verified == true
	msg := sprintf("the API server at %s has a certificate that was not verified against the cluster's CA", [_url])
}

# A version written as a YAML number (1.3) reads as the string.
_current(v) if v in _versions

_current(v) if {
	is_number(v)
	sprintf("%v", [v]) in _versions
}
