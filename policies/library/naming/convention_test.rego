package tollgate.naming.convention_test

import data.tollgate.naming.convention

_input(group, kind, name, patterns) := {
	"kind": {"group": group, "version": "v1", "kind": kind},
	"object": {"metadata": {"name": name}},
	"config": {"parameters": {"naming": {"patterns": patterns}}},
}

test_no_patterns_allowed if {
	count(convention.violation) == 0 with input as _input("apps", "Deployment", "anything", {})
	count(convention.violation) == 0 with input as {
		"kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
		"object": {"metadata": {"name": "anything"}},
	}
}

test_kind_pattern if {
	patterns := {"Deployment": "[a-z]+-(api|worker|web)"}
	count(convention.violation) == 0 with input as _input("apps", "Deployment", "payments-api", patterns)
	convention.violation == {{
		"msg": `Deployment name "payments-cron" does not match the naming pattern "[a-z]+-(api|worker|web)"`,
		"path": ["metadata", "name"],
	}} with input as _input("apps", "Deployment", "payments-cron", patterns)
}

test_pattern_matches_the_whole_name if {
	patterns := {"Deployment": "[a-z]+-api"}
	count(convention.violation) == 1 with input as _input("apps", "Deployment", "payments-api-v2", patterns)
	count(convention.violation) == 1 with input as _input("apps", "Deployment", "x-payments-api", patterns)
}

test_wildcard_and_precedence if {
	patterns := {"*": "team-.*", "ConfigMap": "cm-.*", "apps/Deployment": "deploy-.*"}
	count(convention.violation) == 0 with input as _input("", "Secret", "team-db", patterns)
	count(convention.violation) == 1 with input as _input("", "Secret", "db", patterns)
	count(convention.violation) == 0 with input as _input("", "ConfigMap", "cm-app", patterns)
	count(convention.violation) == 1 with input as _input("", "ConfigMap", "team-app", patterns)
	count(convention.violation) == 0 with input as _input("apps", "Deployment", "deploy-api", patterns)
	count(convention.violation) == 1 with input as _input("apps", "Deployment", "team-api", patterns)
}

test_empty_pattern_means_no_constraint if {
	count(convention.violation) == 0 with input as _input("", "ConfigMap", "x", {"ConfigMap": "", "*": "team-.*"})
}

test_invalid_pattern_reported if {
	convention.violation == {{
		"msg": `the naming pattern "team-(" configured for ConfigMap is not a valid regular expression, so name "x" cannot be checked`,
		"path": ["metadata", "name"],
	}} with input as _input("", "ConfigMap", "x", {"ConfigMap": "team-("})
}

test_generate_name_skipped if {
	count(convention.violation) == 0 with input as {
		"kind": {"group": "batch", "version": "v1", "kind": "Job"},
		"object": {"metadata": {"generateName": "migrate-"}},
		"config": {"parameters": {"naming": {"patterns": {"*": "team-.*"}}}},
	}
}
