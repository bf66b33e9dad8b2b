# METADATA
# title: Allowed registries
# description: >-
#   Images must come from the registries in
#   parameters.images.allowedRegistries, so that what runs in the cluster
#   went through the organisation's build, scanning and signing pipeline. An
#   entry is a host ("ghcr.io", "registry.corp:5000") or a host with leading
#   path segments ("ghcr.io/corp"); it admits images under it segment by
#   segment. Short names resolve to docker.io/library as the runtime
#   resolves them. An image reference that cannot be parsed is a violation.
#   The policy is off while the list is empty.
# custom:
#   id: images-allowed-registries
#   severity: high
#   action: enforce
#   scope: pod
#   controls:
#     - framework: cis
#       id: "5.5.1"
#     - framework: nsa
#       id: supply-chain/image-provenance
#     - framework: soc2
#       id: CC6.8
#   remediation: >-
#     Push the image to an allowed registry (mirror it if it is third-party) and
#     reference it there, or add its registry to
#     parameters.images.allowedRegistries.
package tollgate.images.allowed_registries

import data.tollgate.lib.images
import data.tollgate.lib.pods

_allowed := a if {
	a := input.config.parameters.images.allowedRegistries
	is_array(a)
} else := []

violation contains {"msg": msg, "path": array.concat(c.path, ["image"])} if {
	count(_allowed) > 0
	some c in pods.containers
	image := object.get(c.container, "image", "")
	parsed := images.parse(image)
	not images.allowed(parsed, _allowed)
	msg := _message(c, image, parsed)
}

_message(c, image, parsed) := sprintf("%s image %q is not a valid image reference", [pods.describe(c), image]) if {
	not parsed.valid
} else := sprintf(
	"%s image %q (%s) is not from an allowed registry (allowed: %s)",
	[pods.describe(c), image, _resolved(parsed), concat(", ", [sprintf("%v", [e]) | some e in _allowed])],
)

# The reference as the runtime resolves it, e.g. docker.io/library/nginx.
_resolved(parsed) := concat("/", [parsed.registry, parsed.repository]) if parsed.registry != ""

else := parsed.repository
