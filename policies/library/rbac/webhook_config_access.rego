# METADATA
# title: Changing admission webhook configurations
# description: >-
#   Who can write a ValidatingWebhookConfiguration or a
#   MutatingWebhookConfiguration can switch admission control off (Tollgate's
#   own included) or send every object to a server of their choosing, which
#   may change it. CIS 5.1.12 asks that the right be kept to those who need
#   it. A ClusterRoleBinding is reported for each subject that is not
#   Kubernetes' own when the rules of its role grant create, update, patch
#   or delete on either kind. The role is read from input.inventory: the
#   policy judges in the audit and in tollgate check.
# custom:
#   id: rbac-webhook-config-access
#   severity: high
#   action: warn
#   scope: object
#   inventory: required
#   kinds:
#     - rbac.authorization.k8s.io/ClusterRoleBinding
#     - rbac.authorization.k8s.io/RoleBinding
#   controls:
#     - framework: cis
#       id: "5.1.12"
#     - framework: nsa
#       id: auth/rbac
#   remediation: >-
#     Remove write access to validatingwebhookconfigurations and
#     mutatingwebhookconfigurations from the role; keep it to the cluster's
#     administrators and to the operators that install their own webhook,
#     limited with resourceNames to that webhook's configuration.
package tollgate.rbac.webhook_config_access

import data.tollgate.lib.rbac

_verbs := ["create", "update", "patch", "delete"]

_group := "admissionregistration.k8s.io"

violation contains v if {
	some v in rbac.grant_violations([
		{"verbs": _verbs, "group": _group, "resource": "validatingwebhookconfigurations", "clusterScoped": true},
		{"verbs": _verbs, "group": _group, "resource": "mutatingwebhookconfigurations", "clusterScoped": true},
	])
}
