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

# The env and envFrom lists of a container, read by constant paths: the
# verdict is then keyed on them and the container's name, not the whole
# container (whose volumeMounts name the pod's own token volume).
_env(c) := l if {
	l := c.container.env
	is_array(l)
} else := []

_env_from(c) := l if {
	l := c.container.envFrom
	is_array(l)
} else := []

violation contains {"msg": msg, "path": array.concat(c.path, ["env", i, "valueFrom", "secretKeyRef"])} if {
	some c in pods.containers
	some i, e in _env(c)
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
	some i, e in _env_from(c)
	ref := e.secretRef
	ref != null
	msg := sprintf("%s takes every key of %s as environment variables (envFrom)", [
		pods.describe(c),
		_secret(ref),
	])
}

violation contains {"msg": _not_a_list(c, "env"), "path": array.concat(c.path, ["env"])} if {
	some c in pods.containers
	l := c.container.env
	l != null
	not is_array(l)
}

violation contains {"msg": _not_a_list(c, "envFrom"), "path": array.concat(c.path, ["envFrom"])} if {
	some c in pods.containers
	l := c.container.envFrom
	l != null
	not is_array(l)
}

_not_a_list(c, field) := sprintf("%s has %s that is not a list, so whether it takes a Secret cannot be told", [pods.describe(c), field])

_key_of(ref) := sprintf("key %s of %s", [cluster.describe_value(ref.key), _secret(ref)]) if {
	is_string(ref.key)
} else := _secret(ref)

_secret(ref) := sprintf("Secret %s", [cluster.describe_value(ref.name)]) if {
	is_string(ref.name)
} else := "a Secret"
