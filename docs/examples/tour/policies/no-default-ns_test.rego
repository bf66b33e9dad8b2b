package platform.no_default_namespace_test

import data.platform.no_default_namespace

test_default_denied if {
	count(no_default_namespace.violation) == 1 with input as {
		"kind": {"kind": "ConfigMap"},
		"object": {"metadata": {"name": "settings", "namespace": "default"}},
	}
}

test_team_namespace_allowed if {
	count(no_default_namespace.violation) == 0 with input as {
		"kind": {"kind": "ConfigMap"},
		"object": {"metadata": {"name": "settings", "namespace": "shop"}},
	}
}
