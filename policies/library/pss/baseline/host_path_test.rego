package tollgate.pss.baseline.host_path_test

import data.tollgate.pss.baseline.host_path

test_other_volumes_allowed if {
	count(host_path.violation) == 0 with input as {"pod": {"spec": {
		"containers": [{"name": "app"}],
		"volumes": [
			{"name": "cache", "emptyDir": {}},
			{"name": "config", "configMap": {"name": "app"}},
			{"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
		],
	}}}
}

test_no_volumes_allowed if {
	count(host_path.violation) == 0 with input as {"pod": {"spec": {"containers": [{"name": "app"}]}}}
}

test_host_path_denied if {
	host_path.violation == {{
		"msg": `volume "docker" mounts the node's path "/var/run/docker.sock" (hostPath)`,
		"path": ["spec", "volumes", 1, "hostPath"],
	}} with input as {"pod": {"spec": {
		"containers": [{"name": "app"}],
		"volumes": [
			{"name": "cache", "emptyDir": {}},
			{"name": "docker", "hostPath": {"path": "/var/run/docker.sock", "type": "Socket"}},
		],
	}}}
}

test_several_host_paths_denied if {
	v := host_path.violation with input as {"pod": {"spec": {"volumes": [
		{"name": "a", "hostPath": {"path": "/etc"}},
		{"name": "b", "hostPath": {"path": "/"}},
	]}}}
	{x.path | some x in v} == {["spec", "volumes", 0, "hostPath"], ["spec", "volumes", 1, "hostPath"]}
}
