package tollgate.pss.baseline.host_ports_test

import data.tollgate.pss.baseline.host_ports

test_container_ports_allowed if {
	count(host_ports.violation) == 0 with input as {"pod": {"spec": {"containers": [
		{"name": "app", "ports": [{"containerPort": 8080}, {"containerPort": 9090, "hostPort": 0}]},
		{"name": "noports"},
	]}}}
}

test_host_port_denied if {
	host_ports.violation == {{
		"msg": `container "app" binds host port 9100 (ports[2].hostPort: 9100)`,
		"path": ["spec", "containers", 0, "ports", 2, "hostPort"],
	}} with input as {"pod": {"spec": {"containers": [{"name": "app", "ports": [
		{"containerPort": 8080},
		{"containerPort": 8443, "hostPort": 0},
		{"containerPort": 9100, "hostPort": 9100},
	]}]}}}
}

test_host_ports_on_init_and_ephemeral_denied if {
	v := host_ports.violation with input as {"pod": {"spec": {
		"initContainers": [{"name": "setup", "ports": [{"containerPort": 80, "hostPort": 80}]}],
		"containers": [{"name": "app"}],
		"ephemeralContainers": [{"name": "debug", "ports": [{"containerPort": 22, "hostPort": 2222}]}],
	}}}
	{x.path | some x in v} == {
		["spec", "initContainers", 0, "ports", 0, "hostPort"],
		["spec", "ephemeralContainers", 0, "ports", 0, "hostPort"],
	}
}
