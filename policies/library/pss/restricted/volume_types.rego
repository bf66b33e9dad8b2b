# METADATA
# title: Volume types
# description: >-
#   The restricted Pod Security Standard allows only volume types that do not
#   reach outside the pod's own storage: configMap, csi, downwardAPI,
#   emptyDir, ephemeral, image, persistentVolumeClaim, projected and secret.
#   Everything else (hostPath, nfs, iscsi, the in-tree cloud disks and the
#   like) must be reached through a PersistentVolumeClaim. A volume with no
#   source is an emptyDir: the API server defaults it to one.
# custom:
#   id: pss-restricted-volume-types
#   severity: medium
#   action: enforce
#   scope: pod
#   controls:
#     - framework: pss
#       id: restricted/volume-types
#     - framework: cis
#       id: "5.2.12"
#     - framework: nsa
#       id: pod-security/privileged
#     - framework: soc2
#       id: CC6.1
#   remediation: >-
#     Use a persistentVolumeClaim (bound to a PersistentVolume the cluster
#     administrator provides) instead of the volume source, or one of
#     configMap, csi, downwardAPI, emptyDir, ephemeral, image, projected and
#     secret.
package tollgate.pss.restricted.volume_types

import data.tollgate.lib.pods

_allowed := {
	"configMap",
	"csi",
	"downwardAPI",
	"emptyDir",
	"ephemeral",
	"image",
	"persistentVolumeClaim",
	"projected",
	"secret",
}

# The other inline volume sources of the Kubernetes API (a key the API does
# not know is dropped when the pod is decoded: it is no source).
_disallowed := {
	"awsElasticBlockStore",
	"azureDisk",
	"azureFile",
	"cephfs",
	"cinder",
	"fc",
	"flexVolume",
	"flocker",
	"gcePersistentDisk",
	"gitRepo",
	"glusterfs",
	"hostPath",
	"iscsi",
	"nfs",
	"photonPersistentDisk",
	"portworxVolume",
	"quobyte",
	"rbd",
	"scaleIO",
	"storageos",
	"vsphereVolume",
}

violation contains {"msg": msg, "path": array.concat(v.path, [source])} if {
	some v in pods.volumes
	some source, value in v.volume
	source in _disallowed
	value != null
	not _has_allowed_source(v.volume)
	msg := sprintf(
		"volume %q is of type %s, which the restricted Pod Security Standard does not allow",
		[object.get(v.volume, "name", ""), source],
	)
}

_has_allowed_source(volume) if {
	some source, value in volume
	source in _allowed
	value != null
}
