# METADATA
# title: Creating persistent volumes
# description: >-
#   A PersistentVolume can be a hostPath volume: who creates one and claims
#   it mounts any directory of a node, past Pod Security's ban on hostPath
#   in pods. CIS 5.1.9 asks that the right be kept to those who need it. A
#   ClusterRoleBinding is reported for each subject that is not Kubernetes'
#   own when the rules of its role grant create on persistentvolumes (a
#   RoleBinding cannot grant a cluster-scoped resource). The role is read
#   from input.inventory: the policy judges in the audit and in tollgate
#   check.
# custom:
#   id: rbac-persistent-volume-create
#   severity: medium
#   action: warn
#   scope: object
#   inventory: required
#   kinds:
#     - rbac.authorization.k8s.io/ClusterRoleBinding
#     - rbac.authorization.k8s.io/RoleBinding
#   controls:
#     - framework: cis
#       id: "5.1.9"
#   remediation: >-
#     Provision volumes through StorageClasses and PersistentVolumeClaims;
#     keep create on persistentvolumes to the storage provisioner and the
#     cluster's administrators.
package tollgate.rbac.persistent_volume_create

import data.tollgate.lib.rbac

violation contains v if {
	some v in rbac.grant_violations([{"verbs": ["create"], "group": "", "resource": "persistentvolumes", "clusterScoped": true}])
}
