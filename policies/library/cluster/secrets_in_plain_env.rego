# METADATA
# title: Credentials in plain environment variables
# description: >-
#   A password, token or key written into a workload's manifest as a literal
#   env[].value is stored unencrypted wherever the manifest goes: the
#   repository, the CI logs, the API server's object, kubectl get -o yaml for
#   anyone who may read the workload. A credential belongs in a Secret. This
#   policy finds literal values of environment variables whose name looks
#   like a credential's (tollgate.lib.cluster.credential_name: a word such as
#   password, secret, token, apikey, private key or credentials, unless the
#   name ends by pointing at one: _FILE, _PATH, _NAME, _URL, ...). A value made
#   only of $(VAR) references is not a literal. Messages never repeat the
#   value.
# custom:
#   id: secrets-in-plain-env
#   severity: high
#   action: audit
#   scope: pod
#   controls:
#     - framework: nsa
#       id: network/secrets
#   remediation: >-
#     Put the credential in a Secret and mount it as a file (or, at least,
#     reference it with env[].valueFrom.secretKeyRef); rotate the credential,
#     as it has been exposed wherever the manifest was.
package tollgate.cluster.secrets_in_plain_env

import data.tollgate.lib.cluster
import data.tollgate.lib.pods

violation contains {"msg": msg, "path": array.concat(c.path, ["env", i, "value"])} if {
	some c in pods.containers
	env := c.container.env
	is_array(env)
	some i, e in env
	cluster.credential_name(e.name)
	cluster.literal(e.value)
	msg := sprintf(
		"%s sets environment variable %s to a literal value, and its name says it holds a credential",
		[pods.describe(c), cluster.describe_value(e.name)],
	)
}
