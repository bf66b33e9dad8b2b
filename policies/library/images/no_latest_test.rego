package tollgate.images.no_latest_test

import data.tollgate.images.no_latest

_digest := "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

_config(params) := {"parameters": {"images": params}}

_pod(images) := {"spec": {"containers": [{"name": sprintf("c%d", [i]), "image": image} | some i, image in images]}}

test_pinned_images_allowed if {
	count(no_latest.violation) == 0 with input as {
		"config": _config({"allowLatest": false, "requireTagOrDigest": true}),
		"pod": _pod([
			"nginx:1.27.3",
			concat("@", ["ghcr.io/corp/app", _digest]),
			concat("@", ["ghcr.io/corp/app:latest", _digest]),
			"registry.corp.io:5000/team/app:2024.06.01",
		]),
	}
}

test_latest_denied if {
	no_latest.violation == {{
		"msg": `container "c1" image "ghcr.io/corp/app:latest" uses the latest tag; pin a version tag or a digest`,
		"path": ["spec", "containers", 1, "image"],
	}} with input as {"config": _config({}), "pod": _pod(["nginx:1.27", "ghcr.io/corp/app:latest"])}
}

test_untagged_denied if {
	no_latest.violation == {{
		"msg": `container "c0" image "nginx" has neither a tag nor a digest; pin a version tag or a digest`,
		"path": ["spec", "containers", 0, "image"],
	}} with input as {"config": _config({"requireTagOrDigest": true}), "pod": _pod(["nginx"])}
}

test_allow_latest_admits_latest_only if {
	v := no_latest.violation with input as {
		"config": _config({"allowLatest": true, "requireTagOrDigest": true}),
		"pod": _pod(["nginx:latest", "nginx"]),
	}
	{x.path | some x in v} == {["spec", "containers", 1, "image"]}
}

test_require_tag_or_digest_off_admits_untagged if {
	v := no_latest.violation with input as {
		"config": _config({"allowLatest": false, "requireTagOrDigest": false}),
		"pod": _pod(["nginx:latest", "nginx"]),
	}
	{x.path | some x in v} == {["spec", "containers", 0, "image"]}
}

test_absent_config_uses_defaults if {
	v := no_latest.violation with input as {"pod": _pod(["nginx:latest", "nginx", "nginx:1"])}
	{x.path | some x in v} == {["spec", "containers", 0, "image"], ["spec", "containers", 1, "image"]}
}

test_tag_case_matters if {
	# Tags are case-sensitive: LATEST is another tag.
	count(no_latest.violation) == 0 with input as {"pod": _pod(["nginx:LATEST"])}
}

test_invalid_reference_denied if {
	no_latest.violation == {{
		"msg": `container "c0" image "nginx:" is not a valid image reference`,
		"path": ["spec", "containers", 0, "image"],
	}} with input as {"pod": _pod(["nginx:"])}
}

test_every_container_kind_checked if {
	v := no_latest.violation with input as {"pod": {"spec": {
		"initContainers": [{"name": "setup", "image": "busybox"}],
		"containers": [{"name": "app", "image": "app:1"}],
		"ephemeralContainers": [{"name": "debug", "image": "busybox:latest"}],
	}}}
	{x.msg | some x in v} == {
		`init container "setup" image "busybox" has neither a tag nor a digest; pin a version tag or a digest`,
		`ephemeral container "debug" image "busybox:latest" uses the latest tag; pin a version tag or a digest`,
	}
}
