# Package tollgate.lib.cluster gives the policies that judge the cluster's
# own configuration what they share: the cluster inventory (input.inventory,
# which the audit builds from its listings and tollgate check from the
# manifests it is given; absent at admission), Kubernetes label selectors as
# the API server evaluates them, and the window of supported Kubernetes
# releases.
#
# A policy that reads the inventory finds nothing without one, and claims
# that something is absent from the cluster only when the inventory is
# complete; otherwise it says "in the manifests given".
package tollgate.lib.cluster

# inventory is input.inventory, or undefined when the caller built none
# (admission).
inventory := i if {
	i := input.inventory
	is_object(i)
}

# complete holds when the inventory lists the whole cluster (the audit), so
# that what it lacks, the cluster lacks.
complete if inventory.complete == true

# where is what a message says about where something was looked for: ""
# when the inventory is complete, " in the manifests given" otherwise.
where := "" if complete else := " in the manifests given"

# namespaced(field, ns) is the inventory's objects of one namespaced kind
# in a namespace, by name (inventory.networkPolicies["shop"]), or an empty
# object.
namespaced(field, ns) := m if {
	m := inventory[field][ns]
	is_object(m)
} else := {}

# cluster_scoped(field) is the inventory's objects of one cluster-scoped
# kind, by name (inventory.clusterRoles), or an empty object.
cluster_scoped(field) := m if {
	m := inventory[field]
	is_object(m)
} else := {}

# Label selectors (metav1.LabelSelector). A null or absent selector is an
# empty one, as the API server decodes it; an empty selector selects
# everything.

_selector(s) := {} if s == null

_selector(s) := s if is_object(s)

_match_labels(s) := m if {
	m := s.matchLabels
	is_object(m)
} else := {} if object.get(s, "matchLabels", null) == null

_match_expressions(s) := e if {
	e := s.matchExpressions
	is_array(e)
} else := [] if object.get(s, "matchExpressions", null) == null

_set_operators := {"In", "NotIn"}

_exists_operators := {"Exists", "DoesNotExist"}

_valid_requirement(r) if {
	is_string(r.key)
	r.key != ""
	r.operator in _set_operators
	is_array(r.values)
	count(r.values) > 0
	every v in r.values {
		is_string(v)
	}
}

_valid_requirement(r) if {
	is_string(r.key)
	r.key != ""
	r.operator in _exists_operators
	_no_values(object.get(r, "values", null))
}

_no_values(null)

_no_values(v) if {
	is_array(v)
	count(v) == 0
}

# valid_selector(s) holds when s is a label selector the API server would
# accept: null, or an object whose matchLabels map keys to strings and
# whose matchExpressions are well-formed requirements.
valid_selector(s) if {
	sel := _selector(s)
	labels := _match_labels(sel)
	every v in labels {
		is_string(v)
	}
	exprs := _match_expressions(sel)
	every r in exprs {
		_valid_requirement(r)
	}
}

# selects_all(s) holds for a valid selector with no requirement at all
# ({}, null, or empty matchLabels and matchExpressions).
selects_all(s) if {
	valid_selector(s)
	sel := _selector(s)
	count(_match_labels(sel)) == 0
	count(_match_expressions(sel)) == 0
}

# matches(s, labels) holds when the valid selector s selects an object
# with these labels. An invalid selector selects nothing.
matches(s, labels) if {
	valid_selector(s)
	sel := _selector(s)
	every k, v in _match_labels(sel) {
		labels[k] == v
	}
	every r in _match_expressions(sel) {
		_requirement_matches(r, labels)
	}
}

_requirement_matches(r, labels) if {
	r.operator == "In"
	_value_in(r, labels)
}

_requirement_matches(r, labels) if {
	r.operator == "NotIn"
	not _value_in(r, labels)
}

_value_in(r, labels) if labels[r.key] in r.values

_requirement_matches(r, labels) if {
	r.operator == "Exists"
	r.key in object.keys(labels)
}

_requirement_matches(r, labels) if {
	r.operator == "DoesNotExist"
	not r.key in object.keys(labels)
}

# describe_selector(s) writes a valid selector as kubectl writes one:
# "app=web,tier in (db,cache),!legacy".
describe_selector(s) := concat(",", array.concat(
	[sprintf("%s=%s", [k, v]) | some k, v in _match_labels(_selector(s))],
	[_describe_requirement(r) | some r in _match_expressions(_selector(s))],
))

_describe_requirement(r) := sprintf("%s in (%s)", [r.key, concat(",", r.values)]) if r.operator == "In"

_describe_requirement(r) := sprintf("%s notin (%s)", [r.key, concat(",", r.values)]) if r.operator == "NotIn"

_describe_requirement(r) := r.key if r.operator == "Exists"

_describe_requirement(r) := sprintf("!%s", [r.key]) if r.operator == "DoesNotExist"

# namespace_labels(ns) are a Namespace's labels with the
# kubernetes.io/metadata.name label the API server sets on every Namespace
# (selectors often name it; manifests seldom carry it).
namespace_labels(ns) := object.union(labels, {"kubernetes.io/metadata.name": name}) if {
	name := ns.metadata.name
	is_string(name)
	labels := _string_map(object.get(ns, ["metadata", "labels"], {}))
}

_string_map(m) := {k: v | some k, v in m; is_string(v)} if is_object(m) else := {}

# describe_value(v) names a value for a message without repeating a long
# one: a string quoted (cut at 64 characters), anything else by its type.
describe_value(v) := sprintf("%q", [v]) if {
	is_string(v)
	count(v) <= 64
} else := sprintf("%q...", [substring(v, 0, 64)]) if {
	is_string(v)
} else := sprintf("%v", [v]) if {
	is_number(v)
} else := sprintf("%v", [v]) if {
	is_boolean(v)
} else := "null" if {
	v == null
} else := sprintf("a value of type %s", [type_name(v)])

# list(names, n) joins the first n names, adding how many more there are:
# `"a", "b" and 3 more`.
list(names, n) := concat(", ", [sprintf("%s", [x]) | some i, x in names; i < n]) if {
	count(names) <= n
} else := sprintf("%s and %d more", [concat(", ", [sprintf("%s", [x]) | some i, x in names; i < n]), count(names) - n])

# Supported Kubernetes releases. The window is the newest minor release the
# library knows (newest_minor, the release policies.PodSecurityLatest names)
# and the parameters.cluster.supportedMinors - 1 before it (default 3: the
# releases the Kubernetes project patches). A release newer than the
# library knows is supported.

# newest_minor is the newest Kubernetes minor release the library knows:
# v1.36, as policies.PodSecurityLatest (a Go test keeps the two equal).
newest_minor := 36

_default_supported_minors := 3

_supported_minors_param := object.get(input, ["config", "parameters", "cluster", "supportedMinors"], null)

# supported_minors is how many minor releases are supported: the
# parameter when it is a whole number from 1, else 3.
supported_minors := n if {
	n := _supported_minors_param
	_whole_from_one(n)
} else := _default_supported_minors

_whole_from_one(n) if {
	is_number(n)
	n >= 1
	n == floor(n)
}

# supported_minors_problem is a message when parameters.cluster.supportedMinors
# is set to something other than a whole number from 1.
supported_minors_problem := sprintf(
	"parameters.cluster.supportedMinors is %s, not a whole number of minor releases from 1; judged with %d",
	[describe_value(_supported_minors_param), _default_supported_minors],
) if {
	_supported_minors_param != null
	not _whole_from_one(_supported_minors_param)
}

# oldest_minor is the oldest supported minor release.
oldest_minor := (newest_minor - supported_minors) + 1

# window names the supported releases for messages: "v1.34 to v1.36".
window := sprintf("v1.%d", [newest_minor]) if {
	oldest_minor == newest_minor
} else := sprintf("v1.%d to v1.%d", [oldest_minor, newest_minor])

# parse_version(v) reads a Kubernetes version as its components report it
# ("v1.35.2", "v1.34.1-eks-4b5f7c1", "v1.33.4+k3s1", "1.35"):
# {"major": 1, "minor": 35}; undefined for anything else.
parse_version(v) := {"major": to_number(m[1]), "minor": to_number(m[2])} if {
	is_string(v)
	some m in regex.find_all_string_submatch_n(
		`^v?(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})(\.(0|[1-9][0-9]*))?([-+][0-9A-Za-z.+_-]*)?$`,
		v, 1,
	)
}

# version_problem(v) says why a version is not a supported release, or is
# undefined when it is one.
version_problem(v) := sprintf("%s is not a Kubernetes version", [describe_value(v)]) if {
	not parse_version(v)
} else := sprintf("%s is not a Kubernetes 1.x version (supported: %s)", [describe_value(v), window]) if {
	parse_version(v).major != 1
} else := sprintf("%s is older than v1.%d, the oldest minor release supported (supported: %s)", [
	describe_value(v), oldest_minor, window,
]) if {
	parse_version(v).minor < oldest_minor
}

# Credentials written as plain configuration. A name looks like a
# credential when one of its words (split at "_", "-", ".", other
# punctuation and camelCase humps, case ignored) is password(s), passwd,
# passphrase, secret(s), token(s), apikey(s), privatekey, credential(s), or
# two of them read "api key(s)" or "private key", unless its last word says
# it only points at one or describes one (file, path, dir, name, url, uri,
# endpoint, host, ref, type, ttl, length, enabled: DB_PASSWORD_FILE,
# secretName, TOKEN_URL). So DB_PASSWORD, jwtSecret, GITHUB_TOKEN, apiKey and
# credentials.json look like credentials; TOKENIZERS_PARALLELISM and
# SECRET_NAME do not.

_credential_words := {
	"password", "passwords", "passwd", "passphrase",
	"secret", "secrets", "token", "tokens",
	"apikey", "apikeys", "privatekey", "credential", "credentials",
}

_credential_pairs := {["api", "key"], ["api", "keys"], ["private", "key"]}

_reference_words := {
	"file", "path", "dir", "name", "url", "uri", "endpoint", "host",
	"ref", "type", "ttl", "length", "enabled",
}

# words(n) splits a name into lowercase words: "dbPassword_FILE" is
# ["db", "password", "file"].
words(n) := [w |
	some w in regex.split(`[^a-z0-9]+`, lower(regex.replace(n, `([a-z0-9])([A-Z])`, "${1}_${2}")))
	w != ""
]

# credential_name(n) holds when the name n looks like a credential's.
credential_name(n) if {
	is_string(n)
	ws := words(n)
	_has_credential_word(ws)
	not ws[count(ws) - 1] in _reference_words
}

_has_credential_word(ws) if {
	some w in ws
	w in _credential_words
}

_has_credential_word(ws) if {
	some i, w in ws
	[w, ws[i + 1]] in _credential_pairs
}

# literal(v) holds when v is a value written out in plain text: a non-empty
# string with something besides variable references ($(NAME), ${NAME}) and
# white space, or any other non-null value (a number, a list: what a
# manifest holds, not a reference).
literal(v) if {
	is_string(v)
	trim_space(regex.replace(v, `\$\([^)]*\)|\$\{[^}]*\}`, "")) != ""
}

literal(v) if {
	not is_string(v)
	v != null
}
