// Package kyverno runs Kyverno policies unchanged inside Tollgate's review
// core.
//
// It does not reimplement Kyverno: kyverno.io/v1 ClusterPolicies and
// Policies are evaluated by Kyverno's own engine (github.com/kyverno/kyverno
// pkg/engine, the engine the Kyverno CLI applies offline),
// policies.kyverno.io ValidatingPolicies by Kyverno's CEL engine
// (pkg/cel/policies/vpol) and MutatingPolicies by its CEL mutating engine
// (pkg/cel/policies/mpol), each with Kyverno's autogen for pod controllers.
// What this package adds is the translation at both ends: a policies.Input
// becomes the policy context or admission request Kyverno's webhook or
// background scan would build, each failed rule becomes a policies.Finding
// with Tollgate's action, severity, controls and remediation, and the
// mutations become one JSON patch.
//
// Kyverno PolicyExceptions (kyverno.io/v2 for ClusterPolicy and Policy
// rules, policies.kyverno.io/v1 for the CEL policies) are applied by
// Kyverno's engine, but only those in the namespaces Tollgate's config
// designates for exceptions, like Tollgate's own; the others are warnings.
// Kyverno skips a rule an exception excuses; Tollgate then asks the engine,
// without exceptions, what the rule would have found, and reports it
// waived by the exception, so reports show what was waived and by whom.
//
// Compile once, evaluate many: Compile decodes every policy strictly (an
// unknown field is an error), validates it the way `kyverno apply` does,
// compiles CEL, and reports every broken policy by source and rule while the
// good ones load. Rules Tollgate does not run (generate, verifyImages,
// mutate of existing resources) and kinds it does not run (cleanup
// policies, GeneratingPolicy, DeletingPolicy, the namespaced CEL kinds)
// load as warnings naming the policy and the rule, never silently.
// Evaluate and Mutate are safe for concurrent use.
//
// Evaluation is offline: context entries read only the ConfigMaps given in
// Options; API calls, image registry lookups and global context entries
// fail the rule that uses them with an error that says so.
package kyverno
