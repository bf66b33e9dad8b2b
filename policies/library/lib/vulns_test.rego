package tollgate.lib.vulns_test

import data.tollgate.lib.vulns

_v(id, fixed) := {"id": id, "package": "openssl", "installed": "3.0.1", "fixed": fixed, "severity": "CRITICAL"}

test_describe_with_and_without_fix if {
	vulns.describe(_v("CVE-1", "3.0.2")) == "CVE-1 in openssl 3.0.1 (fixed in 3.0.2)"
	vulns.describe(_v("CVE-2", "")) == "CVE-2 in openssl 3.0.1 (no fix yet)"
}

test_list_bounded if {
	vulns.list([_v("CVE-1", "2"), _v("CVE-2", ""), _v("CVE-3", "4")], 2) == "CVE-1 in openssl 3.0.1 (fixed in 2), CVE-2 in openssl 3.0.1 (no fix yet) and 1 more"
	vulns.list([_v("CVE-1", "2")], 2) == "CVE-1 in openssl 3.0.1 (fixed in 2)"
	vulns.list([], 2) == "none listed (a scan lists the most severe only)"
}

test_counts_and_total if {
	scan := {"counts": {"CRITICAL": 2, "HIGH": 1, "MEDIUM": 0, "LOW": 3, "UNKNOWN": 0}}
	vulns.counts(scan) == "2 CRITICAL, 1 HIGH, 0 MEDIUM, 3 LOW, 0 UNKNOWN"
	vulns.total(scan) == 6
	vulns.total({"status": "pending"}) == 0
}

test_scanned_only_with_image_scans if {
	vulns.scanned with input as {"imageScans": {}}
	not vulns.scanned with input as {}
}

test_fixable if {
	vulns.fixable(_v("CVE-1", "1.2"))
	not vulns.fixable(_v("CVE-1", ""))
	not vulns.fixable({"id": "CVE-1"})
}

test_noun if {
	vulns.noun(1) == "vulnerability"
	vulns.noun(0) == "vulnerabilities"
	vulns.noun(2) == "vulnerabilities"
}
