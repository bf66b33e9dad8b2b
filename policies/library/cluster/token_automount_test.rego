package tollgate.cluster.token_automount_test

import data.tollgate.cluster.token_automount

_inventory(accounts, complete) := {"complete": complete, "serviceAccounts": {"shop": accounts}}

_input(spec, inv) := {
	"object": {"kind": "Pod", "metadata": {"name": "web", "namespace": "shop"}},
	"pod": {"metadata": {"name": "web"}, "spec": spec},
	"inventory": inv,
}

_admission(spec) := {
	"object": {"kind": "Pod", "metadata": {"name": "web", "namespace": "shop"}},
	"pod": {"metadata": {"name": "web"}, "spec": spec},
}

test_pod_opting_out_allowed_everywhere if {
	count(token_automount.violation) == 0 with input as _admission({"automountServiceAccountToken": false})
	count(token_automount.violation) == 0 with input as _input({"automountServiceAccountToken": false}, _inventory({}, true))
}

test_unset_at_admission_is_not_judged if {
	count(token_automount.violation) == 0 with input as _admission({"containers": [{"name": "app"}]})
}

test_explicit_true_on_the_default_account_denied_even_at_admission if {
	token_automount.violation == {{
		"msg": "pod mounts the API token of the default service account (automountServiceAccountToken: true): a pod that calls the API server runs under a service account of its own",
		"path": ["spec", "automountServiceAccountToken"],
	}} with input as _admission({"automountServiceAccountToken": true})
	count(token_automount.violation) == 1 with input as _input(
		{"automountServiceAccountToken": true},
		_inventory({"default": {"automountServiceAccountToken": false}}, true),
	)
}

test_explicit_true_on_an_own_account_allowed if {
	count(token_automount.violation) == 0 with input as _admission({"automountServiceAccountToken": true, "serviceAccountName": "api"})
	count(token_automount.violation) == 0 with input as _input(
		{"automountServiceAccountToken": true, "serviceAccountName": "api"},
		_inventory({"api": {}}, true),
	)
}

test_unset_with_account_opting_out_allowed if {
	count(token_automount.violation) == 0 with input as _input({}, _inventory({"default": {"automountServiceAccountToken": false}}, true))
	count(token_automount.violation) == 0 with input as _input({"serviceAccountName": "api"}, _inventory({"api": {"automountServiceAccountToken": false}}, false))
	count(token_automount.violation) == 0 with input as _input({"serviceAccount": "api"}, _inventory({"api": {"automountServiceAccountToken": false}}, true))
}

test_unset_with_account_mounting_denied if {
	token_automount.violation == {{
		"msg": `pod mounts the API token of service account "default": neither the pod nor the service account sets automountServiceAccountToken: false`,
		"path": ["spec", "automountServiceAccountToken"],
	}} with input as _input({"serviceAccountName": ""}, _inventory({"default": {"metadata": {"name": "default"}}}, true))
	count(token_automount.violation) == 1 with input as _input({"serviceAccountName": "api"}, _inventory({"api": {"automountServiceAccountToken": true}}, false))
	count(token_automount.violation) == 1 with input as _input({"serviceAccountName": "api"}, _inventory({"api": {"automountServiceAccountToken": "false"}}, true))
}

test_missing_account_in_complete_inventory_denied if {
	token_automount.violation == {{
		"msg": `pod runs as service account "api", which namespace "shop" does not have, so whether it mounts an API token cannot be told (the pod does not set automountServiceAccountToken)`,
		"path": ["spec", "automountServiceAccountToken"],
	}} with input as _input({"serviceAccountName": "api"}, _inventory({"default": {"automountServiceAccountToken": false}}, true))
}

test_missing_account_in_partial_inventory_not_claimed if {
	count(token_automount.violation) == 0 with input as _input({"serviceAccountName": "api"}, _inventory({}, false))
}

test_namespace_from_namespace_context if {
	count(token_automount.violation) == 1 with input as {
		"object": {"kind": "Deployment", "metadata": {"name": "web"}},
		"namespace": {"metadata": {"name": "shop"}},
		"pod": {"spec": {}},
		"inventory": _inventory({"default": {}}, true),
	}
}

test_malformed_values_do_not_pass if {
	token_automount.violation == {{
		"msg": `automountServiceAccountToken is "false", not true or false, so whether the pod mounts an API token cannot be told`,
		"path": ["spec", "automountServiceAccountToken"],
	}} with input as _admission({"automountServiceAccountToken": "false"})
	v := token_automount.violation with input as _input({"serviceAccountName": ["api"]}, _inventory({"api": {"automountServiceAccountToken": false}}, true))
	{x.msg | some x in v} == {`pod runs as service account a value of type array, which namespace "shop" does not have, so whether it mounts an API token cannot be told (the pod does not set automountServiceAccountToken)`}
	count(token_automount.violation) == 1 with input as _input({}, {"complete": true, "serviceAccounts": "junk"})
}
