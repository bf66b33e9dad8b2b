# METADATA
# title: Tollgate's webhooks fail closed
# description: >-
#   A validating webhook that fails open (failurePolicy Ignore) admits every
#   object unjudged while Tollgate is unreachable, slow or crashing, which is
#   exactly when someone who wants past it would try. Tollgate's own webhook
#   configurations are those labelled app.kubernetes.io/name: tollgate (as
#   the chart and tollgate serve label them) or named in
#   parameters.admission.webhookConfigurations. Each webhook of a
#   ValidatingWebhookConfiguration must fail closed (failurePolicy Fail;
#   absent means Fail in admissionregistration.k8s.io/v1). A mutating
#   webhook may fail open, as the chart sets it, because the validating
#   webhook judges the object it lets through: it is reported only when the
#   cluster inventory is complete and no Tollgate ValidatingWebhookConfiguration
#   failing closed is in it.
# custom:
#   id: admission-webhooks-fail-closed
#   severity: high
#   action: warn
#   scope: object
#   admission: false
#   kinds:
#     - admissionregistration.k8s.io/ValidatingWebhookConfiguration
#     - admissionregistration.k8s.io/MutatingWebhookConfiguration
#   controls:
#     - framework: cis
#       id: "5.2.1"
#     - framework: soc2
#       id: CC7.2
#   remediation: >-
#     Set failurePolicy: Fail on Tollgate's validating webhook (the chart's
#     webhooks.validating.failurePolicy, or rollout.mode enforce), and keep
#     Tollgate highly available (replicas and a PodDisruptionBudget) so that
#     failing closed does not block the cluster.
package tollgate.cluster.webhooks_fail_closed

import data.tollgate.lib.cluster

_named := n if {
	n := input.config.parameters.admission.webhookConfigurations
	is_array(n)
} else := []

_tollgate(config) if config.metadata.labels["app.kubernetes.io/name"] == "tollgate"

_tollgate(config) if config.metadata.name in _named

# Absent means Fail in admissionregistration.k8s.io/v1, Ignore in the
# v1beta1 of old clusters.
_fails_closed(config, wh) if wh.failurePolicy == "Fail"

_fails_closed(config, wh) if {
	_field(wh, "failurePolicy") == null
	is_object(wh)
	not config.apiVersion == "admissionregistration.k8s.io/v1beta1"
}

_closed_validating if {
	some config in cluster.cluster_scoped("validatingWebhookConfigurations")
	_tollgate(config)
	webhooks := config.webhooks
	is_array(webhooks)
	count(webhooks) > 0
	every wh in webhooks {
		_fails_closed(config, wh)
	}
}

_judged if {
	_tollgate(input.object)
	not input.operation == "DELETE"
}

_webhooks := w if {
	w := input.object.webhooks
	is_array(w)
} else := []

_config_name := cluster.describe_value(object.get(input.object, ["metadata", "name"], null))

_describe(wh) := sprintf("webhook %s of %s %s", [
	cluster.describe_value(_field(wh, "name")), input.kind.kind, _config_name,
])

# _field(wh, f) is a webhook's field, or null (also for an entry that is
# not an object).
_field(wh, f) := object.get(wh, f, null) if is_object(wh) else := null

violation contains {"msg": msg, "path": ["webhooks", i, "failurePolicy"]} if {
	_judged
	input.kind.kind == "ValidatingWebhookConfiguration"
	some i, wh in _webhooks
	not _fails_closed(input.object, wh)
	msg := sprintf("%s fails open (failurePolicy: %s): while Tollgate cannot answer, objects are admitted unjudged", [
		_describe(wh), cluster.describe_value(_field(wh, "failurePolicy")),
	])
}

violation contains {"msg": msg, "path": ["webhooks", i, "failurePolicy"]} if {
	_judged
	input.kind.kind == "MutatingWebhookConfiguration"
	some i, wh in _webhooks
	policy := _field(wh, "failurePolicy")
	not _known_policy(wh)
	msg := sprintf("%s has failurePolicy %s, neither Fail nor Ignore", [_describe(wh), cluster.describe_value(policy)])
}

violation contains {"msg": msg, "path": ["webhooks", i, "failurePolicy"]} if {
	_judged
	input.kind.kind == "MutatingWebhookConfiguration"
	cluster.complete
	not _closed_validating
	some i, wh in _webhooks
	wh.failurePolicy == "Ignore"
	msg := sprintf("%s fails open (failurePolicy: \"Ignore\") and no Tollgate ValidatingWebhookConfiguration failing closed judges what it lets through", [_describe(wh)])
}

_known_policy(wh) if {
	is_object(wh)
	_field(wh, "failurePolicy") in {null, "Fail", "Ignore"}
}

violation contains {"msg": msg, "path": ["webhooks"]} if {
	_judged
	webhooks := object.get(input.object, "webhooks", null)
	webhooks != null
	not is_array(webhooks)
	msg := sprintf("%s %s has webhooks that is not a list, so whether they fail closed cannot be told", [input.kind.kind, _config_name])
}
