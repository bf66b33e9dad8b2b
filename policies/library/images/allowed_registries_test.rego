package tollgate.images.allowed_registries_test

import data.tollgate.images.allowed_registries

_config(entries) := {"parameters": {"images": {"allowedRegistries": entries}}}

_pod(images) := {"spec": {"containers": [{"name": sprintf("c%d", [i]), "image": image} | some i, image in images]}}

test_allowed_registries_admit if {
	count(allowed_registries.violation) == 0 with input as {
		"config": _config(["registry.corp.io", "ghcr.io/corp", "docker.io/library"]),
		"pod": _pod(["registry.corp.io/payments/api:1.4.2", "ghcr.io/corp/tools/migrate:v3", "nginx:1.27"]),
	}
}

test_empty_list_admits_everything if {
	count(allowed_registries.violation) == 0 with input as {"config": _config([]), "pod": _pod(["evil.io/x:1", "Not Valid"])}
	count(allowed_registries.violation) == 0 with input as {"pod": _pod(["evil.io/x:1"])}
}

test_other_registry_denied if {
	allowed_registries.violation == {{
		"msg": `container "c1" image "ghcr.io/corporate/app:1" (ghcr.io/corporate/app) is not from an allowed registry (allowed: registry.corp.io, ghcr.io/corp)`,
		"path": ["spec", "containers", 1, "image"],
	}} with input as {
		"config": _config(["registry.corp.io", "ghcr.io/corp"]),
		"pod": _pod(["registry.corp.io/app:1", "ghcr.io/corporate/app:1"]),
	}
}

test_lookalike_hosts_denied if {
	v := allowed_registries.violation with input as {
		"config": _config(["corp.io"]),
		"pod": _pod(["corp.io.evil.net/app:1", "corp.io:5000/app:1", "evilcorp.io/app:1", "corp.io/app:1"]),
	}
	{x.path | some x in v} == {
		["spec", "containers", 0, "image"],
		["spec", "containers", 1, "image"],
		["spec", "containers", 2, "image"],
	}
}

test_docker_hub_short_names_resolve if {
	v := allowed_registries.violation with input as {"config": _config(["ghcr.io"]), "pod": _pod(["nginx"])}
	v == {{
		"msg": `container "c0" image "nginx" (docker.io/library/nginx) is not from an allowed registry (allowed: ghcr.io)`,
		"path": ["spec", "containers", 0, "image"],
	}}
}

test_invalid_reference_denied if {
	v := allowed_registries.violation with input as {"config": _config(["corp.io"]), "pod": {"spec": {"containers": [
		{"name": "app", "image": "corp.io/App:1"},
		{"name": "noimage"},
	]}}}
	v == {
		{
			"msg": `container "app" image "corp.io/App:1" is not a valid image reference`,
			"path": ["spec", "containers", 0, "image"],
		},
		{
			"msg": `container "noimage" image "" is not a valid image reference`,
			"path": ["spec", "containers", 1, "image"],
		},
	}
}

test_init_and_ephemeral_containers_checked if {
	v := allowed_registries.violation with input as {"config": _config(["corp.io"]), "pod": {"spec": {
		"initContainers": [{"name": "setup", "image": "busybox:1.36"}],
		"containers": [{"name": "app", "image": "corp.io/app:1"}],
		"ephemeralContainers": [{"name": "debug", "image": "docker.io/nicolaka/netshoot:v0.13"}],
	}}}
	{x.path | some x in v} == {["spec", "initContainers", 0, "image"], ["spec", "ephemeralContainers", 0, "image"]}
}

test_reference_without_registry_denied if {
	# A host name cannot hold "_", so distribution/reference reads
	# "my_registry.io/app" as a repository path with no registry; no entry
	# can admit it.
	allowed_registries.violation == {{
		"msg": `container "c0" image "my_registry.io/app:1" (my_registry.io/app) is not from an allowed registry (allowed: my_registry.io)`,
		"path": ["spec", "containers", 0, "image"],
	}} with input as {"config": _config(["my_registry.io"]), "pod": _pod(["my_registry.io/app:1"])}
}
