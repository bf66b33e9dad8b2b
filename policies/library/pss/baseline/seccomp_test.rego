package tollgate.pss.baseline.seccomp_test

import data.tollgate.pss.baseline.seccomp

test_runtime_default_localhost_and_unset_allowed if {
	count(seccomp.violation) == 0 with input as {"pod": {"spec": {
		"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
		"containers": [
			{"name": "a"},
			{"name": "b", "securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/b.json"}}},
		],
	}}}
	count(seccomp.violation) == 0 with input as {"pod": {"spec": {"containers": [{"name": "a"}]}}}
}

test_unconfined_pod_denied if {
	seccomp.violation == {{
		"msg": "pod disables seccomp (securityContext.seccompProfile.type: Unconfined)",
		"path": ["spec", "securityContext", "seccompProfile", "type"],
	}} with input as {"pod": {"spec": {
		"securityContext": {"seccompProfile": {"type": "Unconfined"}},
		"containers": [{"name": "a"}],
	}}}
}

test_unconfined_containers_denied if {
	v := seccomp.violation with input as {"pod": {"spec": {
		"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
		"containers": [{"name": "a", "securityContext": {"seccompProfile": {"type": "Unconfined"}}}],
		"ephemeralContainers": [{"name": "debug", "securityContext": {"seccompProfile": {"type": "Unconfined"}}}],
	}}}
	v == {
		{
			"msg": `container "a" disables seccomp (securityContext.seccompProfile.type: Unconfined)`,
			"path": ["spec", "containers", 0, "securityContext", "seccompProfile", "type"],
		},
		{
			"msg": `ephemeral container "debug" disables seccomp (securityContext.seccompProfile.type: Unconfined)`,
			"path": ["spec", "ephemeralContainers", 0, "securityContext", "seccompProfile", "type"],
		},
	}
}

# A profile must be RuntimeDefault or Localhost: a type the standard does
# not know, or none, is refused too.
test_other_types_denied if {
	v := seccomp.violation with input as {"pod": {"spec": {
		"securityContext": {"seccompProfile": {}},
		"containers": [
			{"name": "a", "securityContext": {"seccompProfile": {"type": "runtime/default"}}},
			{"name": "b", "securityContext": {"seccompProfile": {"type": ""}}},
			{"name": "c", "securityContext": {"seccompProfile": null}},
		],
	}}}
	v == {
		{
			"msg": `pod sets seccomp profile type "" (securityContext.seccompProfile.type); only RuntimeDefault and Localhost are allowed`,
			"path": ["spec", "securityContext", "seccompProfile", "type"],
		},
		{
			"msg": `container "a" sets seccomp profile type "runtime/default" (securityContext.seccompProfile.type); only RuntimeDefault and Localhost are allowed`,
			"path": ["spec", "containers", 0, "securityContext", "seccompProfile", "type"],
		},
		{
			"msg": `container "b" sets seccomp profile type "" (securityContext.seccompProfile.type); only RuntimeDefault and Localhost are allowed`,
			"path": ["spec", "containers", 1, "securityContext", "seccompProfile", "type"],
		},
	}
}

_annotated := {"pod": {
	"metadata": {"annotations": {
		"seccomp.security.alpha.kubernetes.io/pod": "unconfined",
		"container.seccomp.security.alpha.kubernetes.io/a": "docker/default",
		"container.seccomp.security.alpha.kubernetes.io/setup": "localhost",
		"container.seccomp.security.alpha.kubernetes.io/gone": "unconfined",
	}},
	"spec": {
		"securityContext": {"seccompProfile": {"type": "Unconfined"}},
		"initContainers": [{"name": "setup"}],
		"containers": [{"name": "a"}],
	},
}}

# Up to v1.18 the standard reads the annotations, and only those; from
# v1.19 the fields, and only those.
test_annotations_up_to_v1_18 if {
	v := seccomp.violation with input as object.union(_annotated, {"config": {"podSecurity": {"version": "v1.18"}}})
	v == {
		{
			"msg": `annotation "seccomp.security.alpha.kubernetes.io/pod" sets seccomp profile "unconfined" for the pod; only runtime/default, docker/default and localhost/<profile> are allowed`,
			"path": ["metadata", "annotations", "seccomp.security.alpha.kubernetes.io/pod"],
		},
		{
			"msg": `annotation "container.seccomp.security.alpha.kubernetes.io/setup" sets seccomp profile "localhost" for init container "setup"; only runtime/default, docker/default and localhost/<profile> are allowed`,
			"path": ["metadata", "annotations", "container.seccomp.security.alpha.kubernetes.io/setup"],
		},
	}
	v19 := seccomp.violation with input as object.union(_annotated, {"config": {"podSecurity": {"version": "v1.19"}}})
	{x.path | some x in v19} == {["spec", "securityContext", "seccompProfile", "type"]}
}
