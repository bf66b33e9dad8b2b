# METADATA
# title: Approving certificate signing requests
# description: >-
#   Who can approve a CertificateSigningRequest (update or patch on
#   certificatesigningrequests/approval) can have a client certificate
#   issued for any user or group, system:masters included. CIS 5.1.11 asks
#   that the right be kept to those who need it. A ClusterRoleBinding is
#   reported for each subject that is not Kubernetes' own when the rules of
#   its role grant it. The role is read from input.inventory: the policy
#   judges in the audit and in tollgate check.
# custom:
#   id: rbac-csr-approval
#   severity: high
#   action: warn
#   scope: object
#   inventory: required
#   kinds:
#     - rbac.authorization.k8s.io/ClusterRoleBinding
#     - rbac.authorization.k8s.io/RoleBinding
#   controls:
#     - framework: cis
#       id: "5.1.11"
#   remediation: >-
#     Remove update and patch on certificatesigningrequests/approval from the
#     role; leave approval to the controllers that approve kubelet
#     certificates, and limit any other approver to its signer with an
#     approve rule on signers and resourceNames.
package tollgate.rbac.csr_approval

import data.tollgate.lib.rbac

violation contains v if {
	some v in rbac.grant_violations([{"verbs": ["update", "patch"], "group": "certificates.k8s.io", "resource": "certificatesigningrequests/approval", "clusterScoped": true}])
}
