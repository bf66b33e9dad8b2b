# METADATA
# title: Admission control for pods
# description: >-
#   A namespace whose pods no admission control judges takes any pod spec:
#   privileged, on the host's network, from any registry. A Namespace is
#   covered when the API server's Pod Security admission enforces baseline
#   or restricted there (the pod-security.kubernetes.io/enforce label), or
#   when a ValidatingWebhookConfiguration has a webhook that fails closed
#   (failurePolicy Fail, the default), whose rules match pod creation
#   (apiGroups "" or "*", resources pods, "*" or "*/*", operations CREATE or
#   "*", scope not Cluster), whose namespaceSelector selects the Namespace
#   (absent or empty selects every one; the kubernetes.io/metadata.name
#   label the API server sets counts) and whose objectSelector, if any, is
#   empty. matchConditions are not evaluated: a webhook with them counts.
#   Judged only with a complete inventory, in the audit: the webhooks a
#   cluster has cannot be told from some manifests. The finding says why
#   each webhook for pods does not cover the Namespace.
# custom:
#   id: admission-control-coverage
#   severity: high
#   action: warn
#   scope: object
#   inventory: complete
#   admission: false
#   kinds: [core/Namespace]
#   controls:
#     - framework: cis
#       id: "5.2.1"
#     - framework: soc2
#       id: CC7.2
#   remediation: >-
#     Label the namespace pod-security.kubernetes.io/enforce=baseline (or
#     restricted), or make sure Tollgate's validating webhook covers it: its
#     failurePolicy Fail and its namespaceSelector not excluding the namespace.
package tollgate.cluster.admission_coverage

import data.tollgate.lib.cluster

_enforce_label := "pod-security.kubernetes.io/enforce"

_labels := cluster.namespace_labels(input.object)

_judged if {
	cluster.complete
	_labels
	not input.operation == "DELETE"
}

_pod_security_enforced if _labels[_enforce_label] in {"baseline", "restricted"}

# Every webhook of every ValidatingWebhookConfiguration, with what names it.
_webhooks contains {"webhook": wh, "name": sprintf("webhook %s (ValidatingWebhookConfiguration %s)", [
	cluster.describe_value(object.get(wh, "name", null)), cluster.describe_value(config_name),
])} if {
	some config_name, config in cluster.cluster_scoped("validatingWebhookConfigurations")
	list := config.webhooks
	is_array(list)
	some wh in list
	is_object(wh)
}

_has(list, values) if {
	is_array(list)
	some v in list
	v in values
}

_rule_for_pods(rule) if {
	_has(rule.apiGroups, {"", "*"})
	_has(rule.resources, {"pods", "*", "*/*"})
	_has(rule.operations, {"CREATE", "*"})
	not rule.scope == "Cluster"
}

_for_pods(wh) if {
	rules := wh.rules
	is_array(rules)
	some rule in rules
	_rule_for_pods(rule)
}

_failure_policy(wh) := object.get(wh, "failurePolicy", null)

_fails_closed(wh) if _failure_policy(wh) in {null, "Fail"}

_namespace_selector(wh) := object.get(wh, "namespaceSelector", null)

_object_selector(wh) := object.get(wh, "objectSelector", null)

_covers(wh) if {
	_for_pods(wh)
	_fails_closed(wh)
	cluster.matches(_namespace_selector(wh), _labels)
	cluster.selects_all(_object_selector(wh))
}

_covered if _pod_security_enforced

_covered if {
	some w in _webhooks
	_covers(w.webhook)
}

# Why a webhook for pods does not cover the Namespace: what is wrong with
# its failurePolicy, its namespaceSelector and its objectSelector.
_gaps(wh) := [g | some g in [_failure_gap(wh), _namespace_gap(wh), _object_gap(wh)]; g != ""]

_failure_gap(wh) := sprintf("fails open (failurePolicy: %s)", [cluster.describe_value(_failure_policy(wh))]) if {
	not _fails_closed(wh)
} else := ""

_namespace_gap(wh) := "has a namespaceSelector that is not a label selector" if {
	not cluster.valid_selector(_namespace_selector(wh))
} else := sprintf("excludes the namespace by its namespaceSelector (%s)", [cluster.describe_selector(_namespace_selector(wh))]) if {
	not cluster.matches(_namespace_selector(wh), _labels)
} else := ""

_object_gap(wh) := "has an objectSelector that is not a label selector" if {
	not cluster.valid_selector(_object_selector(wh))
} else := sprintf("judges only the pods its objectSelector matches (%s)", [cluster.describe_selector(_object_selector(wh))]) if {
	not cluster.selects_all(_object_selector(wh))
} else := ""

_webhook_reasons := [sprintf("%s %s", [w.name, concat(" and ", _gaps(w.webhook))]) |
	some w in _webhooks
	_for_pods(w.webhook)
]

_reasons := [_pod_security_reason, "no ValidatingWebhookConfiguration has a webhook for pod creation"] if {
	count(_webhook_reasons) == 0
} else := array.concat([_pod_security_reason], _webhook_reasons)

_pod_security_reason := sprintf("%s is not set", [_enforce_label]) if {
	not _enforce_label in object.keys(_labels)
} else := sprintf("%s is %s, not baseline or restricted", [_enforce_label, cluster.describe_value(_labels[_enforce_label])])

violation contains {"msg": msg, "path": ["metadata", "labels", _enforce_label]} if {
	_judged
	not _covered
	msg := sprintf("Namespace %s has no admission control for pods: %s", [
		cluster.describe_value(input.object.metadata.name), cluster.list(_reasons, 6),
	])
}
