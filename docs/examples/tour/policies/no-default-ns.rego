# METADATA
# title: No workloads in the default namespace
# description: Objects belong in a team's namespace, never in "default".
# custom:
#   id: no-default-namespace
#   severity: low
#   action: warn
#   scope: object
#   remediation: Set metadata.namespace to your team's namespace.
package platform.no_default_namespace

violation contains {"msg": msg, "path": ["metadata", "namespace"]} if {
	input.object.metadata.namespace == "default"
	msg := sprintf("%s %q is in the default namespace", [input.kind.kind, input.object.metadata.name])
}
