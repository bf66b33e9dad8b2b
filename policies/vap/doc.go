// Package vap evaluates Kubernetes ValidatingAdmissionPolicies and
// MutatingAdmissionPolicies, with their bindings, outside the API server but
// with the API server's own code: the policies are compiled by
// k8s.io/apiserver's CEL compiler, matched by its policy matcher, their
// params collected by its param resolver and dispatched by its validating
// and mutating dispatchers. What this package adds are the stand-ins for a
// cluster (a namespace lister, param informers, a kind-to-resource mapping,
// an authorizer) and the translation of the API server's decisions into
// Tollgate findings and JSON patches.
//
// # Findings
//
// Each validation that fails for a binding is one policies.Finding:
//
//   - Policy is "ValidatingAdmissionPolicy/<policy name>".
//   - Title is the policy's title (annotation tollgate.dev/title, else its
//     name) followed by "(binding <binding name>)", so a report tells the
//     bindings of one policy apart.
//   - Message is what the API server would say: the messageExpression's
//     result, else message, else "failed expression: <expression>".
//   - Action follows the binding's validationActions: Deny is enforce, else
//     Warn is warn, else Audit is audit.
//   - Severity, Controls and Remediation come from the annotations
//     tollgate.dev/severity, tollgate.dev/controls ("cis:5.2.1, pss:baseline")
//     and tollgate.dev/remediation, the binding's replacing the policy's;
//     the severity defaults to medium.
//
// Policies lists the ValidatingAdmissionPolicies only: MutatingAdmissionPolicies
// produce patches, not findings.
//
// # Errors
//
// A policy that cannot be evaluated for an input follows its failurePolicy,
// as in the API server: Ignore drops the error; Fail turns it into a finding
// whose message starts with "could not be evaluated: ". A CEL error in a
// validation takes the binding's action (the API server feeds it through
// validationActions too); a binding that cannot be configured (its param is
// missing under parameterNotFoundAction Deny, a selector cannot be parsed)
// or an auditAnnotation that fails is always enforced, as the API server
// denies those whatever validationActions say. Only what the API server
// would not do becomes a *policies.PolicyError: a panic, or the context
// ending during evaluation.
//
// # Offline
//
// With no cluster behind it the evaluator answers as follows (Options lets
// the webhook and the audit pass the real thing where there is one):
//
//   - Namespaces come from Input.Namespace, else Options.Namespaces, else a
//     Namespace with only its name; each gets the kubernetes.io/metadata.name
//     label the API server puts on every namespace.
//   - A namespaced object without metadata.namespace is judged in the
//     namespace of Input.Namespace, else "default", as kubectl would send it.
//   - Kinds map to resources through Options.Mapper, else a table of the
//     built-in kinds' scopes and the usual plural guess (Endpoints stays
//     endpoints).
//   - Params are looked up by group and kind among Options.Params (and
//     SetParams) whatever their version.
//   - authorizer checks get Options.Authorizer's answer; without one every
//     check has no opinion and reports an error, so allowed() is false and
//     errored() is true.
//   - request.userInfo is Input.UserInfo: empty for `tollgate check` and the
//     audit, where an expression reading request.userInfo.groups fails (no
//     such key) and follows failurePolicy. In a cluster every user is at
//     least in system:authenticated.
//   - Numbers are read as the API server's JSON decoder reads them: integers
//     as int, others as double; a float64 with an integral value counts as
//     an integer.
//   - matchPolicy Equivalent matches what Exact matches: an offline object
//     cannot be converted to another version of its kind.
//   - Objects are judged as given: the API server's defaulting of built-in
//     types (imagePullPolicy, restartPolicy, ...) has not happened to a
//     manifest read from a file.
package vap
