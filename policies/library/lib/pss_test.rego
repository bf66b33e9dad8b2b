package tollgate.lib.pss_test

import data.tollgate.lib.pss

_labelled(v) := {"namespace": {"metadata": {"labels": {"pod-security.kubernetes.io/enforce-version": v}}}}

test_default_is_latest if {
	pss.version == "latest" with input as {}
	not pss.minor with input as {}
	pss.at_least(35) with input as {}
	pss.at_least(1000) with input as {}
}

test_config_version if {
	inp := {"config": {"podSecurity": {"version": "v1.24"}}}
	pss.version == "v1.24" with input as inp
	pss.minor == 24 with input as inp
	pss.at_least(24) with input as inp
	not pss.at_least(25) with input as inp
}

test_namespace_label_overrides_config if {
	inp := object.union(_labelled("v1.0"), {"config": {"podSecurity": {"version": "v1.30"}}})
	pss.version == "v1.0" with input as inp
	pss.at_least(0) with input as inp
	not pss.at_least(1) with input as inp
}

test_label_latest_overrides_config if {
	inp := object.union(_labelled("latest"), {"config": {"podSecurity": {"version": "v1.30"}}})
	pss.at_least(35) with input as inp
}

# Pod Security admission reads a label value it cannot parse as latest
# (k8s.io/pod-security-admission/api.ParseVersion), not as the default.
test_invalid_label_is_latest if {
	every v in ["", "v1.05", "1.30", "v2.0", "v1.", "V1.30", "v1.30 ", "v1.30.1", 130] {
		inp := object.union(_labelled(v), {"config": {"podSecurity": {"version": "v1.20"}}})
		not pss.minor with input as inp
		pss.at_least(35) with input as inp
	}
}

test_future_minor_is_newer_than_every_control if {
	pss.at_least(35) with input as _labelled("v1.99")
	pss.at_least(35) with input as _labelled("v1.99999999999999999999")
}

test_judged_names_the_version if {
	pss.judged == "latest" with input as {}
	pss.judged == "v1.24" with input as {"config": {"podSecurity": {"version": "v1.24"}}}
	pss.judged == "latest" with input as _labelled("v1.05")
}
