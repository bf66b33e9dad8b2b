package tollgate.lib.pods_test

import data.tollgate.lib.pods

_pod := {
	"metadata": {"name": "web", "annotations": {"a": "b"}},
	"spec": {
		"os": {"name": "linux"},
		"securityContext": {"runAsNonRoot": true},
		"initContainers": [{"name": "setup"}],
		"containers": [{"name": "app"}, {"name": "sidecar"}],
		"ephemeralContainers": [{"name": "debugger"}],
		"volumes": [{"name": "data", "emptyDir": {}}],
	},
}

test_containers_lists_every_kind_with_paths if {
	got := {[c.kind, c.container.name, c.path] | some c in pods.containers} with input as {"pod": _pod}
	got == {
		["container", "app", ["spec", "containers", 0]],
		["container", "sidecar", ["spec", "containers", 1]],
		["initContainer", "setup", ["spec", "initContainers", 0]],
		["ephemeralContainer", "debugger", ["spec", "ephemeralContainers", 0]],
	}
}

test_resource_containers_leave_out_ephemeral if {
	got := {c.container.name | some c in pods.resource_containers} with input as {"pod": _pod}
	got == {"app", "sidecar", "setup"}
}

test_no_pod_means_no_containers if {
	count(pods.containers) == 0 with input as {"object": {"kind": "ConfigMap"}}
	pods.spec == {} with input as {}
	pods.security_context == {} with input as {}
}

test_malformed_containers_are_ignored if {
	count(pods.containers) == 0 with input as {"pod": {"spec": {"containers": {"name": "app"}}}}
	count(pods.containers) == 2 with input as {"pod": {"spec": {"containers": [{"name": "app"}, "junk", null]}}}
}

test_null_security_context_reads_as_empty if {
	pods.security_context == {} with input as {"pod": {"spec": {"securityContext": null}}}
	c := {"kind": "container", "container": {"name": "a", "securityContext": null}, "path": ["spec", "containers", 0]}
	pods.security_context_of(c) == {}
}

test_volumes_have_paths if {
	got := pods.volumes with input as {"pod": _pod}
	got == {{"volume": {"name": "data", "emptyDir": {}}, "path": ["spec", "volumes", 0]}}
}

test_is_windows if {
	pods.is_windows with input as {"pod": {"spec": {"os": {"name": "windows"}}}}
	not pods.is_windows with input as {"pod": _pod}
	not pods.is_windows with input as {"pod": {"spec": {}}}
}

test_describe_names_kind_and_container if {
	pods.describe({"kind": "initContainer", "container": {"name": "setup"}}) == `init container "setup"`
	pods.describe({"kind": "ephemeralContainer", "container": {"name": "dbg"}}) == `ephemeral container "dbg"`
	pods.describe({"kind": "container", "container": {}}) == `container ""`
}

test_field_path if {
	c := {"kind": "container", "container": {}, "path": ["spec", "containers", 2]}
	pods.field_path(c, ["capabilities", "add", 0]) == ["spec", "containers", 2, "securityContext", "capabilities", "add", 0]
}

test_annotations if {
	pods.annotations == {"a": "b"} with input as {"pod": _pod}
	pods.annotations == {} with input as {"pod": {"metadata": {"annotations": null}}}
}

test_in_user_namespace_only_for_host_users_false if {
	pods.in_user_namespace with input as {"pod": {"spec": {"hostUsers": false}}}
	not pods.in_user_namespace with input as {"pod": {"spec": {"hostUsers": true}}}
	not pods.in_user_namespace with input as {"pod": {"spec": {"hostUsers": null}}}
	not pods.in_user_namespace with input as {"pod": {"spec": {}}}
}

# A null entry decodes as an empty container or volume; other values are
# no container.
test_null_entries_are_empty if {
	inp := {"pod": {"spec": {"containers": [null, "x", {"name": "app"}], "volumes": [null]}}}
	cs := {[c.path, c.container] | some c in pods.containers} with input as inp
	cs == {[["spec", "containers", 0], {}], [["spec", "containers", 2], {"name": "app"}]}
	vs := {[v.path, v.volume] | some v in pods.volumes} with input as inp
	vs == {[["spec", "volumes", 0], {}]}
}
