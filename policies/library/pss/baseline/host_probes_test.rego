package tollgate.pss.baseline.host_probes_test

import data.tollgate.pss.baseline.host_probes

test_probes_without_host_allowed if {
	count(host_probes.violation) == 0 with input as {"pod": {"spec": {"containers": [{
		"name": "app",
		"livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
		"readinessProbe": {"tcpSocket": {"port": 8080, "host": ""}},
		"startupProbe": {"grpc": {"port": 9090}},
		"lifecycle": {
			"postStart": {"exec": {"command": ["/bin/warm-up"]}},
			"preStop": {"httpGet": {"path": "/drain", "port": 8080, "host": null}},
		},
	}]}}}
	count(host_probes.violation) == 0 with input as {"pod": {"spec": {"containers": [{"name": "app"}]}}}
}

test_metadata_address_denied if {
	host_probes.violation == {{
		"msg": `container "app" sets livenessProbe.httpGet.host to "169.254.169.254"; probes and lifecycle hooks may not name a host (without one they reach the pod)`,
		"path": ["spec", "containers", 0, "livenessProbe", "httpGet", "host"],
	}} with input as {"pod": {"spec": {"containers": [{
		"name": "app",
		"livenessProbe": {"httpGet": {"path": "/latest/meta-data/", "port": 80, "host": "169.254.169.254"}},
	}]}}}
}

test_every_handler_of_every_container if {
	v := host_probes.violation with input as {"pod": {"spec": {
		"initContainers": [{"name": "setup", "startupProbe": {"tcpSocket": {"port": 22, "host": "10.0.0.1"}}}],
		"containers": [{"name": "app", "lifecycle": {
			"postStart": {"httpGet": {"port": 80, "host": "localhost"}},
			"preStop": {"tcpSocket": {"port": 80, "host": "node.internal"}},
		}}],
		"ephemeralContainers": [{"name": "debug", "readinessProbe": {"httpGet": {"port": 80, "host": "kubernetes.default"}}}],
	}}}
	{x.path | some x in v} == {
		["spec", "initContainers", 0, "startupProbe", "tcpSocket", "host"],
		["spec", "containers", 0, "lifecycle", "postStart", "httpGet", "host"],
		["spec", "containers", 0, "lifecycle", "preStop", "tcpSocket", "host"],
		["spec", "ephemeralContainers", 0, "readinessProbe", "httpGet", "host"],
	}
}

# The control is part of the standard from v1.34.
test_from_v1_34 if {
	pod := {"spec": {"containers": [{"name": "app", "readinessProbe": {"httpGet": {"port": 80, "host": "169.254.169.254"}}}]}}
	count(host_probes.violation) == 0 with input as {"pod": pod, "config": {"podSecurity": {"version": "v1.33"}}}
	count(host_probes.violation) == 1 with input as {"pod": pod, "config": {"podSecurity": {"version": "v1.34"}}}
	count(host_probes.violation) == 1 with input as {"pod": pod}
}
