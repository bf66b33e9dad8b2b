# METADATA
# title: Images from the corporate registry
# description: A policy shipped in an OPA bundle, reading the bundle's data.
# custom:
#   id: bundle-registry
#   severity: high
#   scope: pod
package corp.registry

violation contains {"msg": sprintf("image %q is not from %s", [c.image, data.corp.settings.registry]), "path": ["spec", "containers", i, "image"]} if {
	some i, c in input.pod.spec.containers
	not startswith(c.image, concat("", [data.corp.settings.registry, "/"]))
}
