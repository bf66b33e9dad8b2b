package tollgate.cluster.cluster_version_test

import data.tollgate.cluster.cluster_version

_facts(version) := {"object": {"kind": "ClusterFacts", "metadata": {"name": "prod"}, "apiServer": {"version": version}}}

test_supported_versions_allowed if {
	every v in ["v1.34.3", "v1.35.0", "v1.36.1-gke.1200", "v1.38.0"] {
		count(cluster_version.violation) == 0 with input as _facts(v)
	}
}

test_old_version_denied if {
	cluster_version.violation == {{
		"msg": `the API server's version "v1.30.14" is older than v1.34, the oldest minor release supported (supported: v1.34 to v1.36)`,
		"path": ["apiServer", "version"],
	}} with input as _facts("v1.30.14")
	count(cluster_version.violation) == 0 with input as object.union(_facts("v1.30.14"), {"config": {"parameters": {"cluster": {"supportedMinors": 7}}}})
}

test_malformed_versions_do_not_pass if {
	cluster_version.violation == {{
		"msg": `the API server's version "v1.x" is not a Kubernetes version`,
		"path": ["apiServer", "version"],
	}} with input as _facts("v1.x")
	every v in ["", null, 36, {"major": "1"}] {
		count(cluster_version.violation) == 1 with input as _facts(v)
	}
	count(cluster_version.violation) == 1 with input as {"object": {"kind": "ClusterFacts", "apiServer": "junk"}}
}

test_bad_window_parameter_reported if {
	v := cluster_version.violation with input as object.union(_facts("v1.35.0"), {"config": {"parameters": {"cluster": {"supportedMinors": "all"}}}})
	{x.path | some x in v} == {["parameters", "cluster", "supportedMinors"]}
}
