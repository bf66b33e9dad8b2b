package tollgate.images.unscanned_test

import data.tollgate.images.unscanned

_pod(images) := {"spec": {"containers": [{"name": sprintf("c%d", [i]), "image": image} | some i, image in images]}}

_clean := {"status": "scanned", "counts": {"CRITICAL": 0}, "vulnerabilities": []}

test_scanned_images_allowed if {
	count(unscanned.violation) == 0 with input as {"pod": _pod(["app:1", "db:2"]), "imageScans": {"app:1": _clean, "db:2": _clean}}
}

test_no_scanner_allowed if {
	count(unscanned.violation) == 0 with input as {"pod": _pod(["app:1"])}
}

test_pending if {
	unscanned.violation == {{
		"msg": `container "c0" image "app:1" has no scan result yet; it is queued for scanning`,
		"path": ["spec", "containers", 0, "image"],
	}} with input as {"pod": _pod(["app:1"]), "imageScans": {"app:1": {"status": "pending"}}}
}

test_missing_entry_is_pending if {
	v := unscanned.violation with input as {"pod": _pod(["app:1", "db:2"]), "imageScans": {"app:1": _clean}}
	{x.path | some x in v} == {["spec", "containers", 1, "image"]}
}

test_failed if {
	unscanned.violation == {{
		"msg": `container "c0" image "app:1" could not be scanned: MANIFEST_UNKNOWN: manifest unknown`,
		"path": ["spec", "containers", 0, "image"],
	}} with input as {"pod": _pod(["app:1"]), "imageScans": {"app:1": {"status": "failed", "error": "MANIFEST_UNKNOWN: manifest unknown"}}}
}

test_stale_never_passes if {
	scan := object.union(_clean, {"status": "stale", "dbUpdatedAt": "2026-11-01T00:00:00Z"})
	unscanned.violation == {{
		"msg": `container "c0" image "app:1" was scanned with a stale vulnerability database (built 2026-11-01T00:00:00Z); it is queued for a rescan`,
		"path": ["spec", "containers", 0, "image"],
	}} with input as {"pod": _pod(["app:1"]), "imageScans": {"app:1": scan}}
}

test_unknown_status_never_passes if {
	v := unscanned.violation with input as {"pod": _pod(["app:1"]), "imageScans": {"app:1": {"status": "skipped"}}}
	{x.msg | some x in v} == {`container "c0" image "app:1" has the unknown scan status "skipped"`}
}

test_every_container_kind if {
	v := unscanned.violation with input as {"imageScans": {"app:1": _clean}, "pod": {"spec": {
		"initContainers": [{"name": "setup", "image": "busybox:1"}],
		"containers": [{"name": "app", "image": "app:1"}],
		"ephemeralContainers": [{"name": "debug", "image": "debug:1"}],
	}}}
	{x.path | some x in v} == {["spec", "initContainers", 0, "image"], ["spec", "ephemeralContainers", 0, "image"]}
}
