# METADATA
# title: Images without a scan result
# description: >-
#   When a scanner is configured (input.imageScans is present), every image
#   must have a current scan result. An image that was never scanned
#   (pending: it is queued for scanning at once, admission never waits), whose
#   last scan failed, or whose result comes from a vulnerability database
#   older than the configured maximum age (stale) is reported: a stale
#   database never lets an image pass silently. The action is the rule for
#   such images: warn (default), enforce (deny until a result exists) or
#   disabled (allow).
# custom:
#   id: images-unscanned
#   severity: medium
#   action: warn
#   scope: pod
#   controls:
#     - framework: nsa
#       id: supply-chain/image-scanning
#     - framework: soc2
#       id: CC7.1
#   remediation: >-
#     Wait for the scan to finish and apply again (a pending image is scanned
#     within minutes); for a failed scan, fix what the message names
#     (registry credentials, an image that no longer exists); for a stale
#     database, check that the scanner can reach its database repository.
package tollgate.images.unscanned

import data.tollgate.lib.pods
import data.tollgate.lib.vulns

violation contains {"msg": msg, "path": array.concat(c.path, ["image"])} if {
	vulns.scanned
	some c in pods.containers
	image := c.container.image
	msg := _problem(pods.describe(c), image, object.get(input.imageScans, image, {}))
}

_problem(who, image, scan) := sprintf("%s image %q has no scan result yet; it is queued for scanning", [who, image]) if {
	object.get(scan, "status", "pending") == "pending"
} else := sprintf("%s image %q could not be scanned: %s", [who, image, object.get(scan, "error", "no reason given")]) if {
	scan.status == "failed"
} else := sprintf("%s image %q was scanned with a stale vulnerability database (built %s); it is queued for a rescan", [who, image, object.get(scan, "dbUpdatedAt", "at an unknown time")]) if {
	scan.status == "stale"
} else := sprintf("%s image %q has the unknown scan status %q", [who, image, scan.status]) if {
	scan.status != "scanned"
}
