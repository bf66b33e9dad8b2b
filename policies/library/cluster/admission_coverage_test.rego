package tollgate.cluster.admission_coverage_test

import data.tollgate.cluster.admission_coverage

_pods_rule := {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["pods"]}

_webhook(extra) := object.union({"name": "validate.tollgate.dev", "rules": [_pods_rule]}, extra)

_in(ns_labels, webhooks, complete) := {
	"kind": {"kind": "Namespace"},
	"object": {"kind": "Namespace", "metadata": {"name": "shop", "labels": ns_labels}},
	"inventory": {"complete": complete, "validatingWebhookConfigurations": {"tollgate": {"webhooks": webhooks}}},
}

test_fail_closed_webhook_covers if {
	count(admission_coverage.violation) == 0 with input as _in({}, [_webhook({})], true)
	count(admission_coverage.violation) == 0 with input as _in({}, [_webhook({"failurePolicy": "Fail", "namespaceSelector": {}})], true)
	count(admission_coverage.violation) == 0 with input as _in({"team": "shop"}, [_webhook({
		"rules": [{"apiGroups": ["*"], "operations": ["*"], "resources": ["*"], "scope": "Namespaced"}],
		"namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system"]}]},
		"objectSelector": {},
	})], true)
}

test_pod_security_label_covers if {
	count(admission_coverage.violation) == 0 with input as _in({"pod-security.kubernetes.io/enforce": "baseline"}, [], true)
	count(admission_coverage.violation) == 0 with input as _in({"pod-security.kubernetes.io/enforce": "restricted"}, [_webhook({"failurePolicy": "Ignore"})], true)
}

test_only_with_complete_inventory if {
	count(admission_coverage.violation) == 0 with input as _in({}, [], false)
	count(admission_coverage.violation) == 0 with input as {"object": {"kind": "Namespace", "metadata": {"name": "shop"}}}
}

test_no_webhook_denied if {
	admission_coverage.violation == {{
		"msg": `Namespace "shop" has no admission control for pods: pod-security.kubernetes.io/enforce is not set, no ValidatingWebhookConfiguration has a webhook for pod creation`,
		"path": ["metadata", "labels", "pod-security.kubernetes.io/enforce"],
	}} with input as _in({}, [_webhook({"rules": [{"apiGroups": ["apps"], "operations": ["CREATE"], "resources": ["deployments"]}]})], true)
}

test_fail_open_webhook_denied if {
	admission_coverage.violation == {{
		"msg": `Namespace "shop" has no admission control for pods: pod-security.kubernetes.io/enforce is "privileged", not baseline or restricted, webhook "validate.tollgate.dev" (ValidatingWebhookConfiguration "tollgate") fails open (failurePolicy: "Ignore")`,
		"path": ["metadata", "labels", "pod-security.kubernetes.io/enforce"],
	}} with input as _in({"pod-security.kubernetes.io/enforce": "privileged"}, [_webhook({"failurePolicy": "Ignore"})], true)
}

test_namespace_excluded_by_not_in_denied if {
	admission_coverage.violation == {{
		"msg": `Namespace "shop" has no admission control for pods: pod-security.kubernetes.io/enforce is not set, webhook "validate.tollgate.dev" (ValidatingWebhookConfiguration "tollgate") excludes the namespace by its namespaceSelector (kubernetes.io/metadata.name notin (kube-system,shop))`,
		"path": ["metadata", "labels", "pod-security.kubernetes.io/enforce"],
	}} with input as _in({}, [_webhook({"namespaceSelector": {"matchExpressions": [
		{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", "shop"]},
	]}})], true)
}

test_every_gap_named if {
	v := admission_coverage.violation with input as _in({}, [_webhook({
		"failurePolicy": "Ignore",
		"namespaceSelector": {"matchLabels": {"tollgate": "on"}},
		"objectSelector": {"matchLabels": {"app": "web"}},
	})], true)
	v == {{
		"msg": `Namespace "shop" has no admission control for pods: pod-security.kubernetes.io/enforce is not set, webhook "validate.tollgate.dev" (ValidatingWebhookConfiguration "tollgate") fails open (failurePolicy: "Ignore") and excludes the namespace by its namespaceSelector (tollgate=on) and judges only the pods its objectSelector matches (app=web)`,
		"path": ["metadata", "labels", "pod-security.kubernetes.io/enforce"],
	}}
}

test_malformed_webhooks_do_not_cover if {
	every webhooks in [
		[_webhook({"namespaceSelector": "all"})],
		[_webhook({"rules": "pods"})],
		[_webhook({"failurePolicy": "fail"})],
		[_webhook({"rules": [{"apiGroups": [""], "operations": "CREATE", "resources": ["pods"]}]})],
		[_webhook({"rules": [{"apiGroups": [""], "operations": ["CREATE"], "resources": ["pods"], "scope": "Cluster"}]})],
		["junk"],
	] {
		count(admission_coverage.violation) == 1 with input as _in({}, webhooks, true)
	}
	count(admission_coverage.violation) == 1 with input as {
		"object": {"kind": "Namespace", "metadata": {"name": "shop"}},
		"inventory": {"complete": true, "validatingWebhookConfigurations": {"x": {"webhooks": "junk"}}},
	}
	count(admission_coverage.violation) == 1 with input as _in({"pod-security.kubernetes.io/enforce": ["baseline"]}, [], true)
}
