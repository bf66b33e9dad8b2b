package tollgate.cluster.anonymous_requests_test

import data.tollgate.cluster.anonymous_requests

_facts(probe) := {"object": {"kind": "ClusterFacts", "metadata": {"name": "prod"}, "apiServer": {"url": "https://127.0.0.1:6443", "anonymous": probe}}}

test_refused_or_forbidden_allowed if {
	count(anonymous_requests.violation) == 0 with input as _facts({"path": "/api/v1/namespaces", "status": 401})
	count(anonymous_requests.violation) == 0 with input as _facts({"path": "/api/v1/namespaces", "status": 403})
}

test_anonymous_read_denied if {
	anonymous_requests.violation == {{
		"msg": `the API server answered an anonymous GET "/api/v1/namespaces" with 200: clients without credentials can read the cluster`,
		"path": ["apiServer", "anonymous", "status"],
	}} with input as _facts({"path": "/api/v1/namespaces", "status": 200})
}

test_failed_probe_is_never_a_pass if {
	anonymous_requests.violation == {{
		"msg": `the anonymous probe (GET "/api/v1/namespaces") failed: "dial tcp 127.0.0.1:6443: connect: connection refused"; whether the API server answers anonymous requests cannot be told`,
		"path": ["apiServer", "anonymous", "status"],
	}} with input as _facts({"path": "/api/v1/namespaces", "status": 0, "error": "dial tcp 127.0.0.1:6443: connect: connection refused"})
	count(anonymous_requests.violation) == 1 with input as _facts({"path": "/api/v1/namespaces", "status": 0})
}

test_other_answers_reported if {
	anonymous_requests.violation == {{
		"msg": `the API server answered an anonymous GET "/api/v1/namespaces" with 500, neither 401 nor 403, so anonymous access cannot be ruled out`,
		"path": ["apiServer", "anonymous", "status"],
	}} with input as _facts({"path": "/api/v1/namespaces", "status": 500})
	every probe in [{"status": "403"}, {"status": null}, {}, {"status": 302}] {
		count(anonymous_requests.violation) == 1 with input as _facts(probe)
	}
}

test_missing_probe_reported if {
	count(anonymous_requests.violation) == 1 with input as _facts("junk")
	count(anonymous_requests.violation) == 1 with input as {"object": {"kind": "ClusterFacts"}}
}
