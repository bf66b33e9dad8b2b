# METADATA
# title: Network policies per namespace
# description: >-
#   Without a NetworkPolicy that selects them, pods accept traffic from every
#   pod in the cluster, and one compromised workload can reach them all.
#   Each namespace needs a NetworkPolicy that selects every pod in it (an
#   empty podSelector) for ingress: a default deny, or a default allow-list.
#   A policy selects pods for ingress when its policyTypes list Ingress, or
#   when it has no policyTypes (then it is always an ingress policy). A
#   Namespace is judged with the NetworkPolicies the cluster inventory holds
#   for it, so only by the audit (the whole cluster) and tollgate check (the
#   manifests given, which the message then says); admission has no
#   inventory and finds nothing. The finding names each policy and why it
#   does not protect every pod: it selects only some (a policy whose
#   selector matches no pod at all protects nothing), or only for egress.
# custom:
#   id: network-policies-per-namespace
#   severity: medium
#   action: warn
#   scope: object
#   inventory: required
#   admission: false
#   kinds: [core/Namespace]
#   controls:
#     - framework: cis
#       id: "5.3.2"
#     - framework: nsa
#       id: network/network-policies
#     - framework: soc2
#       id: CC6.6
#   remediation: >-
#     Add a default NetworkPolicy to the namespace: podSelector: {} with
#     policyTypes [Ingress] (and Egress) and no rules denies all traffic the
#     other policies do not allow; then allow what each workload needs.
package tollgate.cluster.network_policies

import data.tollgate.lib.cluster

_namespace := n if {
	n := input.object.metadata.name
	is_string(n)
}

_policies := cluster.namespaced("networkPolicies", _namespace)

_judged if {
	cluster.inventory
	_namespace
	not input.operation == "DELETE"
}

_spec(np) := s if {
	s := np.spec
	is_object(s)
}

_selector(spec) := object.get(spec, "podSelector", null)

_ingress(spec) if object.get(spec, "policyTypes", null) == null

_ingress(spec) if {
	types := spec.policyTypes
	is_array(types)
	"Ingress" in types
}

_protects(np) if {
	spec := _spec(np)
	cluster.selects_all(_selector(spec))
	_ingress(spec)
}

_protected if {
	some np in _policies
	_protects(np)
}

# Why a NetworkPolicy does not select every pod for ingress.
_why(name, np) := sprintf("NetworkPolicy %s has no spec", [cluster.describe_value(name)]) if {
	not _spec(np)
} else := sprintf("NetworkPolicy %s has a podSelector that is not a label selector (%s)", [
	cluster.describe_value(name), cluster.describe_value(_selector(_spec(np))),
]) if {
	not cluster.valid_selector(_selector(_spec(np)))
} else := sprintf("NetworkPolicy %s selects only pods matching %s", [
	cluster.describe_value(name), cluster.describe_selector(_selector(_spec(np))),
]) if {
	not cluster.selects_all(_selector(_spec(np)))
} else := sprintf("NetworkPolicy %s has policyTypes that is not a list (%s)", [
	cluster.describe_value(name), cluster.describe_value(_spec(np).policyTypes),
]) if {
	types := _spec(np).policyTypes
	types != null
	not is_array(types)
} else := sprintf("NetworkPolicy %s selects every pod but only for %s, not Ingress", [
	cluster.describe_value(name), _types(_spec(np).policyTypes),
])

_types(types) := "no traffic" if {
	count(types) == 0
} else := concat(" and ", [sprintf("%v", [t]) | some t in types])

violation contains {"msg": msg} if {
	_judged
	count(_policies) == 0
	msg := sprintf("Namespace %s has no NetworkPolicy%s: its pods accept traffic from every pod in the cluster", [
		cluster.describe_value(_namespace), cluster.where,
	])
}

violation contains {"msg": msg} if {
	_judged
	count(_policies) > 0
	not _protected
	reasons := [_why(name, np) | some name, np in _policies]
	msg := sprintf("Namespace %s has no NetworkPolicy that selects every pod for ingress%s: %s", [
		cluster.describe_value(_namespace), cluster.where, cluster.list(reasons, 5),
	])
}
