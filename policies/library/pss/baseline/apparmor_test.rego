package tollgate.pss.baseline.apparmor_test

import data.tollgate.pss.baseline.apparmor

test_runtime_default_and_localhost_allowed if {
	count(apparmor.violation) == 0 with input as {"pod": {
		"metadata": {"annotations": {
			"container.apparmor.security.beta.kubernetes.io/app": "runtime/default",
			"container.apparmor.security.beta.kubernetes.io/sidecar": "localhost/k8s-sidecar",
			"example.com/other": "unconfined",
		}},
		"spec": {
			"securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}},
			"containers": [
				{"name": "app"},
				{"name": "sidecar", "securityContext": {"appArmorProfile": {"type": "Localhost", "localhostProfile": "k8s-sidecar"}}},
			],
		},
	}}
}

test_unset_allowed if {
	count(apparmor.violation) == 0 with input as {"pod": {"spec": {"containers": [{"name": "app"}]}}}
}

test_unconfined_pod_denied if {
	apparmor.violation == {{
		"msg": `pod sets AppArmor profile type "Unconfined" (securityContext.appArmorProfile.type); only RuntimeDefault and Localhost are allowed`,
		"path": ["spec", "securityContext", "appArmorProfile", "type"],
	}} with input as {"pod": {"spec": {
		"securityContext": {"appArmorProfile": {"type": "Unconfined"}},
		"containers": [{"name": "app"}],
	}}}
}

test_unconfined_containers_denied if {
	v := apparmor.violation with input as {"pod": {"spec": {
		"initContainers": [{"name": "setup", "securityContext": {"appArmorProfile": {"type": "Unconfined"}}}],
		"containers": [{"name": "app", "securityContext": {"appArmorProfile": {"type": "Unconfined"}}}],
	}}}
	{x.path | some x in v} == {
		["spec", "initContainers", 0, "securityContext", "appArmorProfile", "type"],
		["spec", "containers", 0, "securityContext", "appArmorProfile", "type"],
	}
}

test_legacy_annotation_denied if {
	apparmor.violation == {{
		"msg": `annotation "container.apparmor.security.beta.kubernetes.io/app" sets AppArmor profile "unconfined" for container "app"; only runtime/default and localhost/<profile> are allowed`,
		"path": ["metadata", "annotations", "container.apparmor.security.beta.kubernetes.io/app"],
	}} with input as {"pod": {
		"metadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}},
		"spec": {"containers": [{"name": "app"}]},
	}}
}

test_legacy_annotation_other_values_denied if {
	v := apparmor.violation with input as {"pod": {
		"metadata": {"annotations": {
			"container.apparmor.security.beta.kubernetes.io/a": "localhost",
			"container.apparmor.security.beta.kubernetes.io/b": "docker-default",
		}},
		"spec": {"containers": [{"name": "a"}, {"name": "b"}]},
	}}
	count(v) == 2
}

# An empty annotation sets no profile (k8s.io/pod-security-admission allows
# it: the runtime's default applies).
test_empty_annotation_allowed if {
	count(apparmor.violation) == 0 with input as {"pod": {
		"metadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/a": ""}},
		"spec": {"containers": [{"name": "a"}]},
	}}
}

# A profile without a type is no RuntimeDefault or Localhost profile; a
# null profile is no profile.
test_profile_without_type_denied if {
	v := apparmor.violation with input as {"pod": {"spec": {
		"securityContext": {"appArmorProfile": {}},
		"containers": [
			{"name": "a", "securityContext": {"appArmorProfile": {"type": null}}},
			{"name": "b", "securityContext": {"appArmorProfile": {"type": ""}}},
			{"name": "c", "securityContext": {"appArmorProfile": null}},
		],
	}}}
	{x.path | some x in v} == {
		["spec", "securityContext", "appArmorProfile", "type"],
		["spec", "containers", 0, "securityContext", "appArmorProfile", "type"],
		["spec", "containers", 1, "securityContext", "appArmorProfile", "type"],
	}
}
