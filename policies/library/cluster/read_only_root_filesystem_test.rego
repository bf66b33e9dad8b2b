package tollgate.cluster.read_only_root_filesystem_test

import data.tollgate.cluster.read_only_root_filesystem

test_read_only_containers_allowed if {
	count(read_only_root_filesystem.violation) == 0 with input as {"pod": {"spec": {
		"initContainers": [{"name": "setup", "securityContext": {"readOnlyRootFilesystem": true}}],
		"containers": [{"name": "app", "securityContext": {"readOnlyRootFilesystem": true, "runAsNonRoot": true}}],
	}}}
}

test_writable_containers_denied if {
	v := read_only_root_filesystem.violation with input as {"pod": {"spec": {
		"initContainers": [{"name": "setup"}],
		"containers": [
			{"name": "app", "securityContext": {"readOnlyRootFilesystem": true}},
			{"name": "sidecar", "securityContext": {"readOnlyRootFilesystem": false}},
		],
		"ephemeralContainers": [{"name": "debug", "securityContext": null}],
	}}}
	v == {
		{
			"msg": `init container "setup" has a writable root filesystem (securityContext.readOnlyRootFilesystem is unset, not true)`,
			"path": ["spec", "initContainers", 0, "securityContext", "readOnlyRootFilesystem"],
		},
		{
			"msg": `container "sidecar" has a writable root filesystem (securityContext.readOnlyRootFilesystem is false, not true)`,
			"path": ["spec", "containers", 1, "securityContext", "readOnlyRootFilesystem"],
		},
		{
			"msg": `ephemeral container "debug" has a writable root filesystem (securityContext.readOnlyRootFilesystem is unset, not true)`,
			"path": ["spec", "ephemeralContainers", 0, "securityContext", "readOnlyRootFilesystem"],
		},
	}
}

test_malformed_values_do_not_pass if {
	v := read_only_root_filesystem.violation with input as {"pod": {"spec": {"containers": [
		{"name": "app", "securityContext": {"readOnlyRootFilesystem": "true"}},
		{"name": "b", "securityContext": "junk"},
		null,
	]}}}
	{x.msg | some x in v} == {
		`container "app" has a writable root filesystem (securityContext.readOnlyRootFilesystem is "true", not true)`,
		`container "b" has a writable root filesystem (securityContext.readOnlyRootFilesystem is unset, not true)`,
		`container "" has a writable root filesystem (securityContext.readOnlyRootFilesystem is unset, not true)`,
	}
}

test_windows_pods_are_not_judged if {
	count(read_only_root_filesystem.violation) == 0 with input as {"pod": {"spec": {"os": {"name": "windows"}, "containers": [{"name": "iis"}]}}}
}
