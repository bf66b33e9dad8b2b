package tollgate.cluster.api_server_tls_test

import data.tollgate.cluster.api_server_tls

_facts(api) := {"kind": {"group": "tollgate.dev", "kind": "ClusterFacts"}, "object": {"kind": "ClusterFacts", "metadata": {"name": "prod"}, "apiServer": api}}

_url := "https://127.0.0.1:6443"

test_verified_modern_tls_allowed if {
	every version in ["1.2", "1.3", 1.3] {
		count(api_server_tls.violation) == 0 with input as _facts({"url": _url, "tls": {"version": version, "verified": true}})
	}
}

test_plain_http_denied if {
	api_server_tls.violation == {{
		"msg": `the API server at "http://10.0.0.1:8080" was reached over plain HTTP, without TLS`,
		"path": ["apiServer", "tls"],
	}} with input as _facts({"url": "http://10.0.0.1:8080"})
}

test_old_or_unverified_tls_denied if {
	v := api_server_tls.violation with input as _facts({"url": _url, "tls": {"version": "1.1", "verified": false}})
	v == {
		{"msg": `the API server at "https://127.0.0.1:6443" answered with TLS version "1.1"; want 1.2 or 1.3`, "path": ["apiServer", "tls", "version"]},
		{"msg": `the API server at "https://127.0.0.1:6443" has a certificate that was not verified against the cluster's CA`, "path": ["apiServer", "tls", "verified"]},
	}
}

test_malformed_facts_do_not_pass if {
	count(api_server_tls.violation) == 1 with input as {"object": {"kind": "ClusterFacts", "metadata": {"name": "prod"}}}
	count(api_server_tls.violation) == 1 with input as _facts("junk")
	count(api_server_tls.violation) == 1 with input as _facts({"url": _url, "tls": "1.3"})
	count(api_server_tls.violation) == 2 with input as _facts({"url": _url, "tls": {}})
	count(api_server_tls.violation) == 1 with input as _facts({"url": _url, "tls": {"version": ["1.3"], "verified": true}})
	count(api_server_tls.violation) == 1 with input as _facts({"url": _url, "tls": {"version": "1.3", "verified": "true"}})
}
