# METADATA
# title: Objects in the default namespace
# description: >-
#   The default namespace is where everything lands that nobody placed: it
#   has no owner, no quota, no network policy and no Pod Security level of
#   its own, and RBAC granted there reaches whatever else lands there. Each
#   workload belongs in a namespace of its own. This policy reports the
#   workloads, their services, configuration, claims and RBAC in default,
#   except what Kubernetes puts there itself (the kubernetes Service and its
#   Endpoints and EndpointSlice, the default ServiceAccount and the
#   kube-root-ca.crt ConfigMap), and Pods, ReplicaSets and Jobs judged at
#   their controller. Secrets are not among the kinds: Tollgate never lists
#   Secrets. A manifest that names no namespace is not judged: where
#   it lands is decided when it is applied. Deleting is never reported.
# custom:
#   id: namespaces-default-unused
#   severity: low
#   action: warn
#   scope: object
#   admission: false
#   kinds:
#     - Pod
#     - apps/Deployment
#     - apps/ReplicaSet
#     - apps/StatefulSet
#     - apps/DaemonSet
#     - batch/Job
#     - batch/CronJob
#     - core/ReplicationController
#     - core/PodTemplate
#     - core/Service
#     - core/Endpoints
#     - discovery.k8s.io/EndpointSlice
#     - networking.k8s.io/Ingress
#     - core/ConfigMap
#     - core/ServiceAccount
#     - core/PersistentVolumeClaim
#     - rbac.authorization.k8s.io/Role
#     - rbac.authorization.k8s.io/RoleBinding
#     - autoscaling/HorizontalPodAutoscaler
#     - policy/PodDisruptionBudget
#   controls:
#     - framework: cis
#       id: "5.7.4"
#     - framework: nsa
#       id: network/namespaces
#   remediation: >-
#     Create a namespace for the workload (with its owner labels, quota,
#     NetworkPolicies and Pod Security level) and move the object there.
package tollgate.cluster.default_namespace

import data.tollgate.lib.cluster
import data.tollgate.lib.owners

# What Kubernetes itself keeps in default, by kind.
_builtin := {
	["Service", "kubernetes"],
	["Endpoints", "kubernetes"],
	["EndpointSlice", "kubernetes"],
	["ServiceAccount", "default"],
	["ConfigMap", "kube-root-ca.crt"],
}

_namespace := ns if {
	ns := input.object.metadata.namespace
	is_string(ns)
	ns != ""
} else := ns if {
	# At admission the Namespace the request is made in.
	input.operation in {"CREATE", "UPDATE"}
	ns := input.namespace.metadata.name
}

_name := object.get(input.object, ["metadata", "name"], null)

violation contains {"msg": msg, "path": ["metadata", "namespace"]} if {
	_namespace == "default"
	not input.operation == "DELETE"
	not [input.kind.kind, _name] in _builtin
	not owners.controlled
	msg := sprintf("%s %s is in the default namespace", [input.kind.kind, cluster.describe_value(_name)])
}
