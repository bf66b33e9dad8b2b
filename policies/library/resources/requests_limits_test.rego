package tollgate.resources.requests_limits_test

import data.tollgate.resources.requests_limits

_config := {"parameters": {"resources": {"requireRequests": ["cpu", "memory"], "requireLimits": ["memory"]}}}

_sized := {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}

test_sized_containers_allowed if {
	count(requests_limits.violation) == 0 with input as {"config": _config, "pod": {"spec": {
		"initContainers": [{"name": "setup", "resources": _sized}],
		"containers": [{"name": "app", "resources": _sized}],
		"ephemeralContainers": [{"name": "debug"}],
	}}}
}

test_missing_resources_denied_field_by_field if {
	v := requests_limits.violation with input as {"config": _config, "pod": {"spec": {"containers": [{"name": "app"}]}}}
	v == {
		{
			"msg": `container "app" sets no cpu request (resources.requests.cpu)`,
			"path": ["spec", "containers", 0, "resources", "requests", "cpu"],
		},
		{
			"msg": `container "app" sets no memory request (resources.requests.memory)`,
			"path": ["spec", "containers", 0, "resources", "requests", "memory"],
		},
		{
			"msg": `container "app" sets no memory limit (resources.limits.memory)`,
			"path": ["spec", "containers", 0, "resources", "limits", "memory"],
		},
	}
}

test_init_container_checked_ephemeral_not if {
	v := requests_limits.violation with input as {"config": _config, "pod": {"spec": {
		"initContainers": [{"name": "setup", "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}],
		"containers": [{"name": "app", "resources": _sized}],
		"ephemeralContainers": [{"name": "debug"}],
	}}}
	v == {{
		"msg": `init container "setup" sets no memory limit (resources.limits.memory)`,
		"path": ["spec", "initContainers", 0, "resources", "limits", "memory"],
	}}
}

test_limit_counts_as_request if {
	count(requests_limits.violation) == 0 with input as {"config": _config, "pod": {"spec": {"containers": [
		{"name": "app", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
	]}}}
}

test_empty_value_is_missing if {
	v := requests_limits.violation with input as {"config": _config, "pod": {"spec": {"containers": [
		{"name": "app", "resources": {"requests": {"cpu": "", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}},
	]}}}
	{x.path | some x in v} == {["spec", "containers", 0, "resources", "requests", "cpu"]}
}

test_pod_level_resources_cover_containers if {
	count(requests_limits.violation) == 0 with input as {"config": _config, "pod": {"spec": {
		"resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
		"containers": [{"name": "app"}, {"name": "side"}],
	}}}
}

test_configured_requirements if {
	config := {"parameters": {"resources": {"requireRequests": ["memory", "ephemeral-storage"], "requireLimits": []}}}
	v := requests_limits.violation with input as {"config": config, "pod": {"spec": {"containers": [
		{"name": "app", "resources": {"requests": {"memory": "1Gi"}}},
	]}}}
	v == {{
		"msg": `container "app" sets no ephemeral-storage request (resources.requests.ephemeral-storage)`,
		"path": ["spec", "containers", 0, "resources", "requests", "ephemeral-storage"],
	}}
}

test_absent_config_uses_defaults if {
	v := requests_limits.violation with input as {"pod": {"spec": {"containers": [{"name": "app"}]}}}
	count(v) == 3
	v2 := requests_limits.violation with input as {"config": {"parameters": {}}, "pod": {"spec": {"containers": [{"name": "app"}]}}}
	count(v2) == 3
}
