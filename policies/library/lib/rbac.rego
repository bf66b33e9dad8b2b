# Package tollgate.lib.rbac reads RBAC objects as the API server's
# authorizer reads them: whether a rule list grants a verb on a resource, the
# rules of the role a binding names (aggregated ClusterRoles included, from
# input.inventory), and the subjects of a binding that are not Kubernetes'
# own. The rbac-* policies share it so they agree on what a grant is.
#
# Malformed objects (a manifest in `tollgate check` is not validated by an
# API server) are read conservatively: a field that should be a list but is
# a single string or object is read as a list of that one value, and
# non-string entries are ignored, so a typo never hides a wildcard; subjects
# that cannot be read at all are reported as such rather than skipped.
package tollgate.lib.rbac

# _items is a list field as a list: a single object or string (a manifest
# that forgot the list) counts as one entry, anything else as none.
_items(x) := x if is_array(x)

else := [x] if is_object(x)

else := [x] if is_string(x)

else := []

# _strings is the string entries of a list field.
_strings(x) := [s | some s in _items(x); is_string(s)]

# grants holds when some rule of rules allows verb on resource in the API
# group, matched as Kubernetes' RBAC authorizer matches (RuleAllows): the
# rule's verbs hold the verb or "*", its apiGroups the group or "*", and its
# resources the resource or "*"; resource may name a subresource
# ("nodes/proxy"), which "*/proxy" also matches but "nodes" does not.
# Rules of nonResourceURLs never grant a resource. resourceNames do not
# limit the grant here: a rule limited to some names still reaches those
# objects, and a binding to it is still a way to them, so the answer errs
# on the side of reporting.
grants(rules, verb, group, resource) if {
	some rule in _items(rules)
	is_object(rule)
	_matches(_strings(object.get(rule, "verbs", [])), verb)
	_matches(_strings(object.get(rule, "apiGroups", [])), group)
	_resource_matches(_strings(object.get(rule, "resources", [])), resource)
}

_matches(values, v) if "*" in values

_matches(values, v) if v in values

_resource_matches(values, _) if "*" in values

_resource_matches(values, resource) if resource in values

_resource_matches(values, resource) if {
	parts := split(resource, "/")
	count(parts) == 2
	parts[1] != ""
	sprintf("*/%s", [parts[1]]) in values
}

# granted_verbs is the verbs among wanted that rules grant on resource, in
# wanted's order, for messages ("get, list").
granted_verbs(rules, wanted, group, resource) := [v | some v in wanted; grants(rules, v, group, resource)]

# role_rules is the rules of the role the binding's roleRef names, read from
# input.inventory: a RoleBinding's Role in the binding's own namespace, or a
# ClusterRole (for a RoleBinding its rules apply within the binding's
# namespace only). An aggregating ClusterRole has the rules of every
# ClusterRole its selectors pick, as the aggregation controller will give
# it. Undefined when the inventory is absent (admission) or does not hold
# the role: what a missing role grants cannot be told.
role_rules(binding) := cluster_role_rules(binding.roleRef.name) if {
	binding.roleRef.kind == "ClusterRole"
	is_object(input.inventory.clusterRoles[binding.roleRef.name])
}

role_rules(binding) := _items(role.rules) if {
	binding.kind == "RoleBinding"
	binding.roleRef.kind == "Role"
	role := input.inventory.roles[binding.metadata.namespace][binding.roleRef.name]
	is_object(role)
}

# cluster_role_rules is the rules of the named ClusterRole in the inventory,
# its own and those of every ClusterRole it aggregates, directly or through
# another aggregating role. The controller copies the picked roles' rules
# into the aggregating role's stored rules, but a role just created (or one
# in the manifests `tollgate check` reads) has none yet, so they are
# gathered here either way.
cluster_role_rules(name) := [rule |
	some src in graph.reachable(_aggregation, {name})
	some rule in _items(input.inventory.clusterRoles[src].rules)
]

# _aggregation is the graph of aggregation: each ClusterRole's name to the
# names of the ClusterRoles its aggregationRule selects (none when it has
# no aggregationRule).
_aggregation[name] := {other |
	some other, source in _cluster_roles
	other != name
	some selector in _items(object.get(role, ["aggregationRule", "clusterRoleSelectors"], []))
	selects(selector, _labels(source))
} if {
	some name, role in _cluster_roles
}

_cluster_roles := {name: role |
	some name, role in object.get(input, ["inventory", "clusterRoles"], {})
	is_object(role)
}

_labels(obj) := l if {
	l := obj.metadata.labels
	is_object(l)
} else := {}

# selects holds when a label selector (matchLabels and matchExpressions with
# In, NotIn, Exists, DoesNotExist) matches labels; an empty selector matches
# everything, as metav1.LabelSelectorAsSelector reads it. A malformed
# selector matches nothing.
selects(selector, labels) if {
	is_object(selector)
	ml := object.get(selector, "matchLabels", {})
	is_object(ml)
	every k, v in ml {
		labels[k] == v
	}
	exprs := object.get(selector, "matchExpressions", [])
	is_array(exprs)
	every e in exprs {
		_expression(e, labels)
	}
}

_expression(e, labels) if {
	e.operator == "In"
	labels[e.key] in _strings(e.values)
}

_expression(e, labels) if {
	e.operator == "NotIn"
	is_string(e.key)
	not _value_in(labels, e.key, _strings(e.values))
}

_expression(e, labels) if {
	e.operator == "Exists"
	is_string(e.key)
	_ = labels[e.key]
}

_expression(e, labels) if {
	e.operator == "DoesNotExist"
	is_string(e.key)
	not _has(labels, e.key)
}

_has(obj, key) if _ = obj[key]

_value_in(labels, key, values) if labels[key] in values

# bootstrap_default holds for the objects the API server creates and
# reconciles itself at every start: labelled
# kubernetes.io/bootstrapping: rbac-defaults and named system:*.
bootstrap_default(obj) if {
	_labels(obj)["kubernetes.io/bootstrapping"] == "rbac-defaults"
	startswith(obj.metadata.name, "system:")
}

# _own_subject holds for a subject Kubernetes' own default bindings name:
# a system: user or group, or a service account in kube-system. The label
# and the name of a bootstrap binding are something anyone allowed to
# create bindings can write, so a subject outside these on a binding that
# looks like a default is still reported.
_own_subject(s, _) if {
	s.kind in {"User", "Group"}
	startswith(s.name, "system:")
}

_own_subject(s, ns) if {
	s.kind == "ServiceAccount"
	ns == "kube-system"
}

_kubernetes_own(binding, s, ns) if {
	bootstrap_default(binding)
	_own_subject(s, ns)
}

# The one default binding not named system:*: cluster-admin to the
# system:masters group.
_kubernetes_own(binding, s, _) if {
	binding.kind == "ClusterRoleBinding"
	binding.metadata.name == "cluster-admin"
	_labels(binding)["kubernetes.io/bootstrapping"] == "rbac-defaults"
	binding.roleRef.kind == "ClusterRole"
	binding.roleRef.name == "cluster-admin"
	s.kind == "Group"
	s.name == "system:masters"
}

# _subject_namespace is a ServiceAccount subject's namespace: its own, or
# for a RoleBinding the binding's when it names none.
_subject_namespace(binding, s) := ns if {
	ns := s.namespace
	is_string(ns)
	ns != ""
} else := ns if {
	binding.kind == "RoleBinding"
	ns := binding.metadata.namespace
	is_string(ns)
} else := ""

# describe is a subject for messages and for allowedSubjects: User "alice",
# Group "devs", ServiceAccount "ns/name".
describe(binding, s) := sprintf("ServiceAccount %q", [concat("/", [_subject_namespace(binding, s), s.name])]) if {
	s.kind == "ServiceAccount"
} else := sprintf("%s %q", [s.kind, s.name])

# _key is a subject as input.config.parameters.rbac.allowedSubjects names
# it: "User:alice", "Group:devs", "ServiceAccount:ns/name".
_key(binding, s) := sprintf("ServiceAccount:%s/%s", [_subject_namespace(binding, s), s.name]) if {
	s.kind == "ServiceAccount"
} else := sprintf("%s:%s", [s.kind, s.name])

# allowed_subjects is input.config.parameters.rbac.allowedSubjects: the
# subjects every rbac policy accepts (a break-glass group, the platform's
# own controller), each "User:name", "Group:name" or
# "ServiceAccount:namespace/name". Default empty; keep it short, as a
# subject listed here may hold any of the rights the policies look for.
allowed_subjects := {s | some s in _strings(object.get(input, ["config", "parameters", "rbac", "allowedSubjects"], []))}

_readable(s) if {
	is_object(s)
	s.kind in {"User", "Group", "ServiceAccount"}
	is_string(s.name)
	s.name != ""
}

# subjects is every subject of the binding as the policies judge it:
# {"path", "desc", "kind", "name", "namespace", "own"}, where own holds for
# Kubernetes' own default bindings and for allowedSubjects. A subject that
# cannot be read (not an object, an unknown kind, no name) comes with kind
# "" and a desc that says so; subjects that are not a list come as one
# entry at ["subjects"].
subjects(binding) := {s |
	some i, raw in binding.subjects
	s := _subject(binding, raw, ["subjects", i])
} if {
	is_array(binding.subjects)
} else := {_subject(binding, binding.subjects, ["subjects"])} if {
	is_object(binding.subjects)
} else := {{
	"path": ["subjects"], "desc": "subjects that cannot be read (subjects is not a list)",
	"kind": "", "name": "", "namespace": "", "own": false,
}} if {
	binding.subjects != null
}

_subject(binding, raw, path) := {
	"path": path,
	"desc": describe(binding, raw),
	"kind": raw.kind,
	"name": raw.name,
	"namespace": _subject_namespace(binding, raw),
	"own": _own(binding, raw),
} if {
	_readable(raw)
} else := {
	"path": path,
	"desc": sprintf("a subject that cannot be read (%s)", [_short(raw)]),
	"kind": "",
	"name": "",
	"namespace": "",
	"own": false,
}

_own(binding, s) if _kubernetes_own(binding, s, _subject_namespace(binding, s))

else if _key(binding, s) in allowed_subjects

else := false

# _short is a malformed value for a message, cut to a readable length.
_short(x) := s if {
	j := json.marshal(x)
	count(j) <= 80
	s := j
} else := sprintf("%s...", [substring(json.marshal(x), 0, 77)])

# risky_subjects is the binding's subjects that are not Kubernetes' own
# (the defaults the API server reconciles: named system:*, labelled
# kubernetes.io/bootstrapping: rbac-defaults, binding system identities; and
# the cluster-admin binding of the system:masters group) nor named in
# allowedSubjects, with those that cannot be read.
risky_subjects(binding) := {s | some s in subjects(binding); s.own == false}

# describe_binding is a binding for messages: ClusterRoleBinding "name" or
# RoleBinding "name" in namespace "ns".
describe_binding(binding) := sprintf("RoleBinding %q in namespace %q", [_name(binding), _namespace(binding)]) if {
	binding.kind == "RoleBinding"
} else := sprintf("%s %q", [binding.kind, _name(binding)])

_name(obj) := object.get(obj, ["metadata", "name"], "")

_namespace(obj) := object.get(obj, ["metadata", "namespace"], "")

# describe_role is the role a binding names: ClusterRole "view".
describe_role(binding) := sprintf("%s %q", [binding.roleRef.kind, binding.roleRef.name])

# cluster_wide holds for a ClusterRoleBinding: only it grants cluster-scoped
# resources (nodes, persistentvolumes, certificatesigningrequests, webhook
# configurations, users and groups to impersonate); a RoleBinding's rules
# apply to requests in its namespace, which such requests never are.
cluster_wide(binding) if binding.kind == "ClusterRoleBinding"

# is_binding holds when the judged object is a binding to read: a
# RoleBinding or ClusterRoleBinding that is not being deleted.
is_binding if {
	input.kind.group == "rbac.authorization.k8s.io"
	input.kind.kind in {"RoleBinding", "ClusterRoleBinding"}
	object.get(input, "operation", "") != "DELETE"
	is_object(input.object)
}

# binding is the judged binding, with its kind filled from input.kind (a
# manifest's kind is the same; an object listed by the audit may lack it).
binding := object.union(input.object, {"kind": input.kind.kind}) if is_binding

# grants_some_subresource holds when some rule allows verb on a
# subresource of resource, whichever its name: "userextras/scopes" is one
# request, and a rule may name any key (or "*/scopes", or "*").
grants_some_subresource(rules, verb, group, resource) if {
	some rule in _items(rules)
	is_object(rule)
	_matches(_strings(object.get(rule, "verbs", [])), verb)
	_matches(_strings(object.get(rule, "apiGroups", [])), group)
	some r in _strings(object.get(rule, "resources", []))
	_covers_subresource(r, resource)
}

_covers_subresource("*", _)

_covers_subresource(r, resource) if startswith(r, concat("", [resource, "/"]))

_covers_subresource(r, _) if startswith(r, "*/")

# granted is what a binding's rules grant of checks, a list of
# {"verbs", "group", "resource"} (with "clusterScoped": true for a resource
# outside namespaces, which only a ClusterRoleBinding grants, and
# "subresources": true to ask about any subresource of resource), as
# phrases for a message: ["get, list on secrets", "create on pods"].
granted(binding, rules, checks) := [phrase |
	some c in checks
	_reaches(binding, c)
	verbs := _granted_verbs(rules, c)
	count(verbs) > 0
	phrase := sprintf("%s on %s", [concat(", ", verbs), _resource_name(c)])
]

_reaches(binding, c) if not c.clusterScoped

_reaches(binding, c) if cluster_wide(binding)

_granted_verbs(rules, c) := [v | some v in c.verbs; grants_some_subresource(rules, v, c.group, c.resource)] if {
	c.subresources
} else := granted_verbs(rules, c.verbs, c.group, c.resource)

_resource_name(c) := sprintf("%s/*", [c.resource]) if c.subresources

else := c.resource

# grant_violations is the findings of a policy about what bindings grant:
# for the judged binding, when the rules of its role (from the inventory)
# grant any of checks, one finding per risky subject, at that subject:
# ClusterRoleBinding "ci" grants create on pods to ServiceAccount "ci/bot"
# through ClusterRole "deployer". Nothing at admission, where there is no
# inventory, nor for a role the inventory does not hold.
grant_violations(checks) := {{"msg": msg, "path": s.path} |
	b := binding
	rules := role_rules(b)
	phrases := granted(b, rules, checks)
	count(phrases) > 0
	some s in risky_subjects(b)
	msg := sprintf("%s grants %s to %s through %s", [describe_binding(b), concat("; ", phrases), s.desc, describe_role(b)])
}
