# METADATA
# title: Credentials in ConfigMaps
# description: >-
#   A ConfigMap is meant for configuration anyone who runs the workload may
#   read: it is not encrypted at rest like Secrets can be, RBAC grants read
#   access to ConfigMaps far more widely than to Secrets, and its values are
#   shown by kubectl describe. This policy finds ConfigMap keys (in data or
#   binaryData) whose name looks like a credential's
#   (tollgate.lib.cluster.credential_name, as for secrets-in-plain-env) and
#   whose value is not empty nor only ${VAR} or $(VAR) placeholders. Messages
#   never repeat the value.
# custom:
#   id: secrets-in-configmaps
#   severity: high
#   action: warn
#   scope: object
#   admission: false
#   kinds: [ConfigMap]
#   controls:
#     - framework: nsa
#       id: network/secrets
#   remediation: >-
#     Move the credential into a Secret (and mount it as a file); rotate it,
#     as it has been readable by everyone who may read the ConfigMap.
package tollgate.cluster.secrets_in_configmaps

import data.tollgate.lib.cluster

_fields := {"data", "binaryData"}

violation contains {"msg": msg, "path": [field, key]} if {
	not input.operation == "DELETE"
	some field in _fields
	m := input.object[field]
	is_object(m)
	some key, value in m
	cluster.credential_name(key)
	cluster.literal(value)
	msg := sprintf("ConfigMap %s has a value under %s key %s, whose name says it is a credential", [
		cluster.describe_value(object.get(input.object, ["metadata", "name"], null)),
		field,
		cluster.describe_value(key),
	])
}
