package tollgate.pss.baseline.host_namespaces_test

import data.tollgate.pss.baseline.host_namespaces

test_no_host_namespaces_allowed if {
	count(host_namespaces.violation) == 0 with input as {"pod": {"spec": {"containers": [{"name": "app"}]}}}
}

test_explicit_false_allowed if {
	count(host_namespaces.violation) == 0 with input as {"pod": {"spec": {
		"hostNetwork": false, "hostPID": false, "hostIPC": false,
		"containers": [{"name": "app"}],
	}}}
}

test_host_network_denied if {
	host_namespaces.violation == {{
		"msg": "pod shares the host's network namespace (spec.hostNetwork: true)",
		"path": ["spec", "hostNetwork"],
	}} with input as {"pod": {"spec": {"hostNetwork": true, "containers": [{"name": "app"}]}}}
}

test_all_three_denied if {
	v := host_namespaces.violation with input as {"pod": {"spec": {
		"hostNetwork": true, "hostPID": true, "hostIPC": true,
		"containers": [{"name": "app"}],
	}}}
	{x.path | some x in v} == {["spec", "hostNetwork"], ["spec", "hostPID"], ["spec", "hostIPC"]}
	{x.msg | some x in v} == {
		"pod shares the host's network namespace (spec.hostNetwork: true)",
		"pod shares the host's process (PID) namespace (spec.hostPID: true)",
		"pod shares the host's IPC namespace (spec.hostIPC: true)",
	}
}

test_no_pod_no_violation if {
	count(host_namespaces.violation) == 0 with input as {}
}
