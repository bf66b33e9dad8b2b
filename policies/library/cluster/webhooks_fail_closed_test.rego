package tollgate.cluster.webhooks_fail_closed_test

import data.tollgate.cluster.webhooks_fail_closed

_labels := {"app.kubernetes.io/name": "tollgate"}

_config(kind, name, labels, webhooks) := {
	"apiVersion": "admissionregistration.k8s.io/v1",
	"kind": kind,
	"metadata": {"name": name, "labels": labels},
	"webhooks": webhooks,
}

_in(config) := {"kind": {"group": "admissionregistration.k8s.io", "kind": config.kind}, "object": config}

_validating(webhooks) := _config("ValidatingWebhookConfiguration", "tollgate", _labels, webhooks)

_mutating(webhooks) := _config("MutatingWebhookConfiguration", "tollgate", _labels, webhooks)

test_fail_closed_validating_allowed if {
	count(webhooks_fail_closed.violation) == 0 with input as _in(_validating([{"name": "validate.tollgate.dev", "failurePolicy": "Fail"}]))
	count(webhooks_fail_closed.violation) == 0 with input as _in(_validating([{"name": "validate.tollgate.dev"}]))
}

test_other_webhooks_are_not_judged if {
	count(webhooks_fail_closed.violation) == 0 with input as _in(_config("ValidatingWebhookConfiguration", "other", {"app": "x"}, [{"name": "v.example.com", "failurePolicy": "Ignore"}]))
}

test_fail_open_validating_denied if {
	webhooks_fail_closed.violation == {{
		"msg": `webhook "validate.tollgate.dev" of ValidatingWebhookConfiguration "tollgate" fails open (failurePolicy: "Ignore"): while Tollgate cannot answer, objects are admitted unjudged`,
		"path": ["webhooks", 1, "failurePolicy"],
	}} with input as _in(_validating([
		{"name": "claims.tollgate.dev", "failurePolicy": "Fail"},
		{"name": "validate.tollgate.dev", "failurePolicy": "Ignore"},
	]))
}

test_named_in_parameters if {
	config := _config("ValidatingWebhookConfiguration", "policy-gate", {}, [{"name": "validate.tollgate.dev", "failurePolicy": "Ignore"}])
	count(webhooks_fail_closed.violation) == 1 with input as object.union(_in(config), {"config": {"parameters": {"admission": {"webhookConfigurations": ["policy-gate"]}}}})
	count(webhooks_fail_closed.violation) == 0 with input as object.union(_in(config), {"config": {"parameters": {"admission": {"webhookConfigurations": "policy-gate"}}}})
}

test_v1beta1_default_is_ignore if {
	config := object.union(_validating([{"name": "validate.tollgate.dev"}]), {"apiVersion": "admissionregistration.k8s.io/v1beta1"})
	count(webhooks_fail_closed.violation) == 1 with input as _in(config)
}

test_mutating_fail_open_allowed_beside_a_closed_validator if {
	mutating := _mutating([{"name": "mutate.tollgate.dev", "failurePolicy": "Ignore"}])
	count(webhooks_fail_closed.violation) == 0 with input as _in(mutating)
	count(webhooks_fail_closed.violation) == 0 with input as object.union(_in(mutating), {"inventory": {"complete": false}})
	count(webhooks_fail_closed.violation) == 0 with input as object.union(_in(mutating), {"inventory": {
		"complete": true,
		"validatingWebhookConfigurations": {"tollgate": _validating([{"name": "validate.tollgate.dev", "failurePolicy": "Fail"}])},
	}})
}

test_mutating_fail_open_without_a_closed_validator_denied if {
	mutating := _mutating([{"name": "mutate.tollgate.dev", "failurePolicy": "Ignore"}])
	msg := `webhook "mutate.tollgate.dev" of MutatingWebhookConfiguration "tollgate" fails open (failurePolicy: "Ignore") and no Tollgate ValidatingWebhookConfiguration failing closed judges what it lets through`
	webhooks_fail_closed.violation == {{"msg": msg, "path": ["webhooks", 0, "failurePolicy"]}} with input as object.union(_in(mutating), {"inventory": {"complete": true}})
	webhooks_fail_closed.violation == {{"msg": msg, "path": ["webhooks", 0, "failurePolicy"]}} with input as object.union(_in(mutating), {"inventory": {
		"complete": true,
		"validatingWebhookConfigurations": {
			"tollgate": _validating([{"name": "validate.tollgate.dev", "failurePolicy": "Ignore"}]),
			"other": _config("ValidatingWebhookConfiguration", "other", {}, [{"name": "v.example.com", "failurePolicy": "Fail"}]),
		},
	}})
}

test_malformed_values_do_not_pass if {
	count(webhooks_fail_closed.violation) == 1 with input as _in(_validating([{"name": "validate.tollgate.dev", "failurePolicy": "fail"}]))
	count(webhooks_fail_closed.violation) == 1 with input as _in(_validating(["junk"]))
	count(webhooks_fail_closed.violation) == 1 with input as _in(_mutating([{"name": "mutate.tollgate.dev", "failurePolicy": 1}]))
	webhooks_fail_closed.violation == {{
		"msg": `ValidatingWebhookConfiguration "tollgate" has webhooks that is not a list, so whether they fail closed cannot be told`,
		"path": ["webhooks"],
	}} with input as _in(_validating({"name": "validate.tollgate.dev"}))
}
