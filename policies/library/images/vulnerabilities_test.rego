package tollgate.images.vulnerabilities_test

import data.tollgate.images.vulnerabilities

_prod := {"metadata": {"name": "shop", "labels": {"tier": "production"}}}

_pod(images) := {"spec": {"containers": [{"name": sprintf("c%d", [i]), "image": image} | some i, image in images]}}

_vuln(id, sev, pkg, installed, fixed) := {"id": id, "severity": sev, "package": pkg, "installed": installed, "fixed": fixed}

_scan(vs) := {
	"status": "scanned",
	"counts": {s: count([v | some v in vs; v.severity == s]) | some s in ["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"]},
	"fixable": {s: count([v | some v in vs; v.severity == s; v.fixed != ""]) | some s in ["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"]},
	"vulnerabilities": vs,
	"truncated": false,
}

_critical_fixed := _vuln("CVE-2024-0001", "CRITICAL", "openssl", "3.0.1", "3.0.2")

_critical_unfixed := _vuln("CVE-2024-0002", "CRITICAL", "zlib", "1.2.11", "")

_high_fixed := _vuln("CVE-2024-0003", "HIGH", "golang.org/x/net", "v0.1.0", "v0.23.0")

test_clean_image_allowed if {
	count(vulnerabilities.violation) == 0 with input as {
		"namespace": _prod, "pod": _pod(["app:1"]),
		"imageScans": {"app:1": _scan([])},
	}
}

test_fixable_critical_in_production if {
	vulnerabilities.violation == {{
		"msg": `container "c1" image "app:2" has 1 fixable CRITICAL vulnerability: CVE-2024-0001 in openssl 3.0.1 (fixed in 3.0.2)`,
		"path": ["spec", "containers", 1, "image"],
	}} with input as {
		"namespace": _prod, "pod": _pod(["app:1", "app:2"]),
		"imageScans": {"app:1": _scan([_high_fixed]), "app:2": _scan([_critical_fixed, _critical_unfixed, _high_fixed])},
	}
}

test_unfixed_critical_allowed_by_default if {
	count(vulnerabilities.violation) == 0 with input as {
		"namespace": _prod, "pod": _pod(["app:1"]),
		"imageScans": {"app:1": _scan([_critical_unfixed, _high_fixed])},
	}
}

test_outside_production_allowed if {
	scans := {"app:1": _scan([_critical_fixed])}
	count(vulnerabilities.violation) == 0 with input as {"namespace": {"metadata": {"labels": {"tier": "dev"}}}, "pod": _pod(["app:1"]), "imageScans": scans}
	count(vulnerabilities.violation) == 0 with input as {"pod": _pod(["app:1"]), "imageScans": scans}
}

test_no_scanner_allowed if {
	count(vulnerabilities.violation) == 0 with input as {"namespace": _prod, "pod": _pod(["app:1"])}
}

test_pending_failed_left_to_unscanned if {
	count(vulnerabilities.violation) == 0 with input as {
		"namespace": _prod, "pod": _pod(["app:1", "app:2"]),
		"imageScans": {"app:1": {"status": "pending"}, "app:2": {"status": "failed", "error": "registry down"}},
	}
}

test_stale_result_still_judged if {
	scan := object.union(_scan([_critical_fixed]), {"status": "stale"})
	count(vulnerabilities.violation) == 1 with input as {"namespace": _prod, "pod": _pod(["app:1"]), "imageScans": {"app:1": scan}}
}

test_parameters if {
	params := {"severities": ["critical", "HIGH"], "fixableOnly": false, "namespaceLabels": {}}
	v := vulnerabilities.violation with input as {
		"config": {"parameters": {"vulnerabilities": params}},
		"pod": _pod(["app:1"]),
		"imageScans": {"app:1": _scan([_critical_unfixed, _high_fixed])},
	}
	{x.msg | some x in v} == {`container "c0" image "app:1" has 2 CRITICAL/HIGH vulnerabilities: CVE-2024-0002 in zlib 1.2.11 (no fix yet), CVE-2024-0003 in golang.org/x/net v0.1.0 (fixed in v0.23.0)`}
}

test_namespace_labels_parameter if {
	params := {"namespaceLabels": {"env": "prod", "pci": "true"}}
	scans := {"app:1": _scan([_critical_fixed])}
	count(vulnerabilities.violation) == 1 with input as {
		"config": {"parameters": {"vulnerabilities": params}},
		"namespace": {"metadata": {"labels": {"env": "prod", "pci": "true"}}}, "pod": _pod(["app:1"]), "imageScans": scans,
	}
	count(vulnerabilities.violation) == 0 with input as {
		"config": {"parameters": {"vulnerabilities": params}},
		"namespace": {"metadata": {"labels": {"env": "prod"}}}, "pod": _pod(["app:1"]), "imageScans": scans,
	}
}

test_bad_parameters_fall_back_to_defaults if {
	params := {"severities": "CRITICAL", "namespaceLabels": ["tier"]}
	count(vulnerabilities.violation) == 1 with input as {
		"config": {"parameters": {"vulnerabilities": params}},
		"namespace": _prod, "pod": _pod(["app:1"]), "imageScans": {"app:1": _scan([_critical_fixed])},
	}
}

test_message_bounded if {
	vs := [_vuln(sprintf("CVE-2024-%04d", [i]), "CRITICAL", "openssl", "3.0.1", "3.0.2") | some i in numbers.range(1, 8)]
	v := vulnerabilities.violation with input as {"namespace": _prod, "pod": _pod(["app:1"]), "imageScans": {"app:1": _scan(vs)}}
	some x in v
	endswith(x.msg, "CVE-2024-0005 in openssl 3.0.1 (fixed in 3.0.2) and 3 more")
	contains(x.msg, "has 8 fixable CRITICAL vulnerabilities")
}

test_init_and_ephemeral_containers if {
	scans := {"busybox:1": _scan([_critical_fixed])}
	v := vulnerabilities.violation with input as {"namespace": _prod, "imageScans": scans, "pod": {"spec": {
		"initContainers": [{"name": "setup", "image": "busybox:1"}],
		"containers": [{"name": "app", "image": "app:1"}],
		"ephemeralContainers": [{"name": "debug", "image": "busybox:1"}],
	}}}
	{x.path | some x in v} == {["spec", "initContainers", 0, "image"], ["spec", "ephemeralContainers", 0, "image"]}
}
