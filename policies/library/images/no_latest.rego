# METADATA
# title: Pinned image versions
# description: >-
#   An image must name the version it runs: a tag other than latest, or a
#   digest. With latest, or no tag at all, what runs changes with every push
#   and every node pull, and a rollback cannot return to the previous
#   version. A digest is always accepted. parameters.images.allowLatest
#   admits the latest tag; parameters.images.requireTagOrDigest: false admits
#   images with neither tag nor digest. An image reference that cannot be
#   parsed is a violation, as its version cannot be told.
# custom:
#   id: images-no-latest
#   severity: medium
#   action: enforce
#   scope: pod
#   controls:
#     - framework: nsa
#       id: supply-chain/image-provenance
#     - framework: soc2
#       id: CC8.1
#   remediation: >-
#     Reference the image by a version tag (app:1.4.2) or, better, by digest
#     (app:1.4.2@sha256:...).
package tollgate.images.no_latest

import data.tollgate.lib.images
import data.tollgate.lib.pods

_params := p if {
	p := input.config.parameters.images
	is_object(p)
} else := {}

_allow_latest if _params.allowLatest == true

_require_tag_or_digest if object.get(_params, "requireTagOrDigest", true) != false

violation contains {"msg": msg, "path": array.concat(c.path, ["image"])} if {
	some c in pods.containers
	image := object.get(c.container, "image", "")
	parsed := images.parse(image)
	msg := _problem(c, image, parsed)
}

_problem(c, image, parsed) := sprintf("%s image %q is not a valid image reference", [pods.describe(c), image]) if {
	not parsed.valid
} else := sprintf("%s image %q uses the latest tag; pin a version tag or a digest", [pods.describe(c), image]) if {
	parsed.digest == ""
	parsed.tag == "latest"
	not _allow_latest
} else := sprintf("%s image %q has neither a tag nor a digest; pin a version tag or a digest", [pods.describe(c), image]) if {
	parsed.digest == ""
	parsed.tag == ""
	_require_tag_or_digest
}
