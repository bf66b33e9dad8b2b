package tollgate.resources.caps_test

import data.tollgate.resources.caps

_config := {"parameters": {"resources": {
	"container": {"cpu": "8", "memory": "32Gi"},
	"pod": {"cpu": "16", "memory": "64Gi"},
}}}

_res(cpu, memory) := {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}}

test_within_caps_allowed if {
	count(caps.violation) == 0 with input as {"config": _config, "pod": {"spec": {
		"initContainers": [{"name": "setup", "resources": _res("8", "32Gi")}],
		"containers": [{"name": "a", "resources": _res("4", "16Gi")}, {"name": "b", "resources": _res("8000m", "32Gi")}],
	}}}
}

test_container_request_above_cap_denied if {
	caps.violation == {{
		"msg": `container "app" requests 12 CPU, above the 8 CPU cap without approval`,
		"path": ["spec", "containers", 0, "resources", "requests", "cpu"],
	}} with input as {"config": _config, "pod": {"spec": {"containers": [
		{"name": "app", "resources": {"requests": {"cpu": "12", "memory": "1Gi"}}},
	]}}}
}

test_container_limit_above_cap_denied if {
	caps.violation == {{
		"msg": `init container "load" has a limit of 40Gi memory, above the 32Gi memory cap without approval`,
		"path": ["spec", "initContainers", 0, "resources", "limits", "memory"],
	}} with input as {"config": _config, "pod": {"spec": {
		"initContainers": [{"name": "load", "resources": {"requests": {"memory": "1Gi"}, "limits": {"memory": "40Gi"}}}],
		"containers": [{"name": "app", "resources": _res("1", "1Gi")}],
	}}}
}

test_pod_sum_above_cap_denied if {
	caps.violation == {{
		"msg": "pod requests 18 CPU in total, above the 16 CPU pod cap without approval",
		"path": ["spec", "containers"],
	}} with input as {"config": _config, "pod": {"spec": {"containers": [
		{"name": "a", "resources": _res("6", "1Gi")},
		{"name": "b", "resources": _res("6", "1Gi")},
		{"name": "c", "resources": _res("6000m", "1Gi")},
	]}}}
}

test_pod_memory_total_formatted if {
	v := caps.violation with input as {"config": _config, "pod": {"spec": {"containers": [
		{"name": "a", "resources": _res("1", "32Gi")},
		{"name": "b", "resources": _res("1", "32Gi")},
		{"name": "c", "resources": _res("1", "512Mi")},
	]}}}
	v == {{
		"msg": "pod requests 66048Mi memory in total, above the 64Gi memory pod cap without approval",
		"path": ["spec", "containers"],
	}}
}

test_init_containers_count_by_their_peak if {
	# Regular init containers run one at a time, before the app: the pod
	# needs the largest of them, not their sum.
	count(caps.violation) == 0 with input as {"config": _config, "pod": {"spec": {
		"initContainers": [{"name": "i1", "resources": _res("8", "1Gi")}, {"name": "i2", "resources": _res("8", "1Gi")}],
		"containers": [{"name": "app", "resources": _res("8", "1Gi")}],
	}}}
}

test_sidecars_add_to_the_containers if {
	# A sidecar (restartPolicy: Always) runs beside the app for the pod's life.
	v := caps.violation with input as {"config": _config, "pod": {"spec": {
		"initContainers": [
			{"name": "proxy", "restartPolicy": "Always", "resources": _res("4", "1Gi")},
			{"name": "migrate", "resources": _res("2", "1Gi")},
		],
		"containers": [{"name": "a", "resources": _res("8", "1Gi")}, {"name": "b", "resources": _res("6", "1Gi")}],
	}}}
	{x.msg | some x in v} == {"pod requests 18 CPU in total, above the 16 CPU pod cap without approval"}
}

test_init_peak_includes_earlier_sidecars if {
	config := {"parameters": {"resources": {"pod": {"cpu": "10", "memory": ""}}}}
	v := caps.violation with input as {"config": config, "pod": {"spec": {
		"initContainers": [
			{"name": "proxy", "restartPolicy": "Always", "resources": {"requests": {"cpu": "4"}}},
			{"name": "warm", "resources": {"requests": {"cpu": "7"}}},
		],
		"containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}],
	}}}
	{x.msg | some x in v} == {"pod requests 11 CPU in total, above the 10 CPU pod cap without approval"}
}

test_limit_stands_in_for_missing_request if {
	v := caps.violation with input as {"config": _config, "pod": {"spec": {"containers": [
		{"name": "a", "resources": {"limits": {"cpu": "8"}}},
		{"name": "b", "resources": {"limits": {"cpu": "8"}}},
		{"name": "c", "resources": {"limits": {"cpu": "500m"}}},
	]}}}
	{x.msg | some x in v} == {"pod requests 16500m CPU in total, above the 16 CPU pod cap without approval"}
}

test_pod_level_request_is_the_pod_request if {
	v := caps.violation with input as {"config": _config, "pod": {"spec": {
		"resources": {"requests": {"cpu": "20"}},
		"containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}],
	}}}
	v == {{
		"msg": "pod requests 20 CPU in total, above the 16 CPU pod cap without approval",
		"path": ["spec", "resources", "requests", "cpu"],
	}}
}

test_empty_cap_turns_check_off if {
	config := {"parameters": {"resources": {"container": {"cpu": "", "memory": ""}, "pod": {"cpu": "", "memory": ""}}}}
	count(caps.violation) == 0 with input as {"config": config, "pod": {"spec": {"containers": [
		{"name": "a", "resources": _res("100", "1Ti")},
	]}}}
}

test_absent_config_uses_defaults if {
	v := caps.violation with input as {"pod": {"spec": {"containers": [{"name": "a", "resources": _res("9", "1Gi")}]}}}
	{x.msg | some x in v} == {`container "a" requests 9 CPU, above the 8 CPU cap without approval`}
}

test_partial_config_keeps_other_defaults if {
	config := {"parameters": {"resources": {"container": {"cpu": "2"}}}}
	v := caps.violation with input as {"config": config, "pod": {"spec": {"containers": [
		{"name": "a", "resources": _res("3", "40Gi")},
	]}}}
	{x.path | some x in v} == {
		["spec", "containers", 0, "resources", "requests", "cpu"],
		["spec", "containers", 0, "resources", "requests", "memory"],
		["spec", "containers", 0, "resources", "limits", "memory"],
	}
}

test_numeric_quantities if {
	v := caps.violation with input as {"config": _config, "pod": {"spec": {"containers": [
		{"name": "a", "resources": {"requests": {"cpu": 10}}},
	]}}}
	{x.msg | some x in v} == {`container "a" requests 10 CPU, above the 8 CPU cap without approval`}
}

test_invalid_quantity_ignored if {
	count(caps.violation) == 0 with input as {"config": _config, "pod": {"spec": {"containers": [
		{"name": "a", "resources": {"requests": {"cpu": "lots"}}},
	]}}}
}
