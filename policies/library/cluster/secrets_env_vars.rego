# METADATA
# title: Secrets in environment variables
# description: >-
#   A Secret handed to a container as an environment variable is readable by
#   every process of the container and everything they start, is copied into
#   crash reports and debug output that dump the environment, and is not
#   updated when the Secret changes. Mounted as a file, it can be read only
#   where it is mounted, with the file's permissions, and follows the Secret.
#   This policy finds containers of every kind that take a Secret through
#   env[].valueFrom.secretKeyRef or envFrom[].secretRef.
# custom:
#   id: secrets-env-vars
#   severity: medium
#   action: audit
#   scope: pod
#   controls:
#     - framework: cis
#       id: "5.4.1"
#   remediation: >-
#     Mount the Secret as a volume (volumes[].secret with a volumeMount) and
#     have the application read the file, instead of env[].valueFrom.secretKeyRef
#     or envFrom[].secretRef.
package tollgate.cluster.secrets_env_vars

import data.tollgate.lib.cluster
import data.tollgate.lib.pods

_list(c, field) := l if {
	l := c.container[field]
	is_array(l)
} else := []

violation contains {"msg": msg, "path": array.concat(c.path, ["env", i, "valueFrom", "secretKeyRef"])} if {
	some c in pods.containers
	some i, e in _list(c, "env")
	ref := e.valueFrom.secretKeyRef
	ref != null
	msg := sprintf("%s takes %s as environment variable %s", [
		pods.describe(c),
		_key_of(ref),
		cluster.describe_value(object.get(e, "name", null)),
	])
}

violation contains {"msg": msg, "path": array.concat(c.path, ["envFrom", i, "secretRef"])} if {
	some c in pods.containers
	some i, e in _list(c, "envFrom")
	ref := e.secretRef
	ref != null
	msg := sprintf("%s takes every key of %s as environment variables (envFrom)", [
		pods.describe(c),
		_secret(ref),
	])
}

violation contains {"msg": msg, "path": array.concat(c.path, [field])} if {
	some c in pods.containers
	some field in ["env", "envFrom"]
	l := c.container[field]
	l != null
	not is_array(l)
	msg := sprintf("%s has %s that is not a list, so whether it takes a Secret cannot be told", [pods.describe(c), field])
}

_key_of(ref) := sprintf("key %s of %s", [cluster.describe_value(ref.key), _secret(ref)]) if {
	is_string(ref.key)
} else := _secret(ref)

_secret(ref) := sprintf("Secret %s", [cluster.describe_value(ref.name)]) if {
	is_string(ref.name)
} else := "a Secret"
