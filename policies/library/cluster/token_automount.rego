# METADATA
# title: Service account token mounting
# description: >-
#   Unless told otherwise, the kubelet mounts a token of the pod's service
#   account in every container, and anything that runs there (a compromised
#   dependency, an attacker with a shell) may call the API server with it.
#   Most workloads never call the API server and should not carry a token:
#   a pod mounts none when its spec.automountServiceAccountToken is false, or
#   when it is unset and its service account (spec.serviceAccountName,
#   default "default") sets automountServiceAccountToken: false. The service
#   account is looked up in the cluster inventory; at admission, where there
#   is none, only a pod that asks for the token (true) of the default service
#   account is reported. A pod that asks for it (true) under a service account
#   of its own states that it calls the API server, and passes. A pod
#   whose service account the audit's inventory does not hold is reported
#   too, as its token cannot be ruled out; tollgate check, which sees only
#   the manifests given, says nothing of a service account it was not given.
# custom:
#   id: serviceaccounts-token-automount
#   severity: medium
#   action: audit
#   scope: pod
#   controls:
#     - framework: cis
#       id: "5.1.6"
#     - framework: nsa
#       id: pod-security/service-account-tokens
#   remediation: >-
#     Set automountServiceAccountToken: false on the pod, or on its service
#     account (kubectl patch serviceaccount default -p
#     '{"automountServiceAccountToken": false}') so that every pod using it
#     goes without; a pod that calls the API server sets it to true and runs
#     under a service account of its own with the least rights it needs.
package tollgate.cluster.token_automount

import data.tollgate.lib.cluster
import data.tollgate.lib.pods

_path := ["spec", "automountServiceAccountToken"]

_setting := object.get(pods.spec, "automountServiceAccountToken", null)

# The service account a pod runs as: serviceAccountName, else the
# deprecated serviceAccount, else "default" (as the API server fills it in).
_account := n if {
	n := pods.spec.serviceAccountName
	not n in {null, ""}
} else := n if {
	n := pods.spec.serviceAccount
	not n in {null, ""}
} else := "default"

_namespace := ns if {
	ns := input.object.metadata.namespace
	is_string(ns)
	ns != ""
} else := ns if {
	ns := input.namespace.metadata.name
	is_string(ns)
} else := "default"

_accounts := cluster.namespaced("serviceAccounts", _namespace)

# A pod that asks for the token under a service account of its own says it
# calls the API server: that is where CIS 5.1.6 wants a token mounted. Asking
# for the default account's token is not such a statement.
violation contains {"msg": msg, "path": _path} if {
	_setting == true
	_account == "default"
	msg := "pod mounts the API token of the default service account (automountServiceAccountToken: true): a pod that calls the API server runs under a service account of its own"
}

violation contains {"msg": msg, "path": _path} if {
	_setting != null
	not is_boolean(_setting)
	msg := sprintf("automountServiceAccountToken is %s, not true or false, so whether the pod mounts an API token cannot be told", [
		cluster.describe_value(_setting),
	])
}

violation contains {"msg": msg, "path": _path} if {
	_setting == null
	sa := _accounts[_account]
	not sa.automountServiceAccountToken == false
	msg := sprintf(
		"pod mounts the API token of service account %s: neither the pod nor the service account sets automountServiceAccountToken: false",
		[cluster.describe_value(_account)],
	)
}

violation contains {"msg": msg, "path": _path} if {
	_setting == null
	cluster.complete
	not _has_account
	msg := sprintf(
		"pod runs as service account %s, which namespace %s does not have, so whether it mounts an API token cannot be told (the pod does not set automountServiceAccountToken)",
		[cluster.describe_value(_account), cluster.describe_value(_namespace)],
	)
}

_has_account if _accounts[_account]
