# METADATA
# title: Vulnerability helpers
# description: >-
#   Reads input.imageScans, the vulnerability scans of a pod's images (see
#   docs/scanning-policies.md), for the images-* policies.
package tollgate.lib.vulns

# scanned is true when a scanner is configured on this path: input.imageScans
# is then an object with an entry for every image of the pod.
scanned if is_object(input.imageScans)

# describe(v) is one vulnerability for a message:
# "CVE-2024-1234 in openssl 3.0.1 (fixed in 3.0.2)".
describe(v) := sprintf("%s in %s %s (%s)", [v.id, v.package, v.installed, _fix(v)])

_fix(v) := sprintf("fixed in %s", [v.fixed]) if {
	is_string(v.fixed)
	v.fixed != ""
} else := "no fix yet"

# noun(n) is "vulnerability" for one, "vulnerabilities" otherwise.
noun(n) := "vulnerability" if {
	n == 1
} else := "vulnerabilities"

# fixable(v) is true when a fixed version exists.
fixable(v) if {
	is_string(v.fixed)
	v.fixed != ""
}

# list(vs, n) describes the first n of vs, adding how many more there are:
# "CVE-1 in a 1 (fixed in 2), CVE-2 in b 1 (no fix yet) and 3 more".
list(vs, n) := "none listed (a scan lists the most severe only)" if {
	count(vs) == 0
} else := concat(", ", [describe(v) | some i, v in vs; i < n]) if {
	count(vs) <= n
} else := sprintf("%s and %d more", [concat(", ", [describe(v) | some i, v in vs; i < n]), count(vs) - n])

# counts(scan) renders the severity counts of a scan:
# "2 CRITICAL, 1 HIGH, 0 MEDIUM, 0 LOW, 0 UNKNOWN".
counts(scan) := concat(", ", [sprintf("%d %s", [object.get(object.get(scan, "counts", {}), s, 0), s]) | some s in severities])

# severities are the severities a scan counts, most severe first.
severities := ["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"]

# total(scan) is the number of vulnerabilities a scan found.
total(scan) := sum([n | some s in severities; n := object.get(object.get(scan, "counts", {}), s, 0)])
