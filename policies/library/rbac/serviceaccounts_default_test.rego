package tollgate.rbac.serviceaccounts_default_test

import data.tollgate.rbac.fixtures_test as f
import data.tollgate.rbac.serviceaccounts_default as default_sa

_sa(name, extra) := {
	"kind": {"group": "", "version": "v1", "kind": "ServiceAccount"},
	"object": object.union({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": "team"}}, extra),
}

test_default_automounting if {
	default_sa.violation == {{
		"msg": `ServiceAccount "default" in namespace "team" mounts its token into every pod that names no service account (automountServiceAccountToken is unset, not false)`,
		"path": ["automountServiceAccountToken"],
	}} with input as _sa("default", {})
}

test_default_automount_true_or_malformed if {
	some v in default_sa.violation with input as _sa("default", {"automountServiceAccountToken": true})
	contains(v.msg, "automountServiceAccountToken is true, not false")
	some w in default_sa.violation with input as _sa("default", {"automountServiceAccountToken": "false"})
	contains(w.msg, `automountServiceAccountToken is "false", not false`)
}

test_default_not_automounting_passes if {
	count(default_sa.violation) == 0 with input as _sa("default", {"automountServiceAccountToken": false})
}

test_other_accounts_pass if {
	count(default_sa.violation) == 0 with input as _sa("app", {})
}

test_binding_to_default if {
	default_sa.violation == {{
		"msg": `RoleBinding "r" in namespace "team" grants Role "editor" to ServiceAccount "team/default", the account every pod of its namespace without a serviceAccountName runs as`,
		"path": ["subjects", 1],
	}} with input as f.rb("team", "r", "Role", "editor", [f.sa("team", "app"), {"kind": "ServiceAccount", "name": "default"}])
}

test_cluster_binding_to_default_elsewhere if {
	some v in default_sa.violation with input as f.crb("c", "view", [f.sa("kube-public", "default")])
	contains(v.msg, `ServiceAccount "kube-public/default"`)
}

test_allowed_subject if {
	count(default_sa.violation) == 0 with input as object.union(
		f.crb("c", "view", [f.sa("legacy", "default")]),
		{"config": {"parameters": {"rbac": {"allowedSubjects": ["ServiceAccount:legacy/default"]}}}},
	)
}

test_deleted_passes if {
	count(default_sa.violation) == 0 with input as f.deleted(_sa("default", {}))
}
