# METADATA
# title: HostPath volumes
# description: >-
#   A hostPath volume mounts a file or directory of the node into the pod,
#   from where a container can read secrets of other pods or change the
#   node. The baseline Pod Security Standard forbids hostPath volumes.
# custom:
#   id: pss-baseline-host-path
#   severity: high
#   action: enforce
#   scope: pod
#   controls:
#     - framework: pss
#       id: baseline/hostpath-volumes
#     - framework: cis
#       id: "5.2.12"
#     - framework: nsa
#       id: pod-security/privileged
#     - framework: soc2
#       id: CC6.1
#   remediation: >-
#     Replace the hostPath volume with an emptyDir, a configMap or secret, or a
#     persistentVolumeClaim.
package tollgate.pss.baseline.host_path

import data.tollgate.lib.pods

violation contains {"msg": msg, "path": array.concat(v.path, ["hostPath"])} if {
	some v in pods.volumes
	host_path := v.volume.hostPath
	host_path != null
	msg := sprintf(
		"volume %q mounts the node's path %q (hostPath)",
		[object.get(v.volume, "name", ""), object.get(host_path, "path", "")],
	)
}
