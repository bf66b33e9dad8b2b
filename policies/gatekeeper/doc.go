// Package gatekeeper runs Gatekeeper ConstraintTemplates and Constraints
// unchanged inside Tollgate's review core.
//
// It does not reimplement Gatekeeper: templates and constraints are loaded
// into the constraint framework client Gatekeeper and gator use
// (github.com/open-policy-agent/frameworks/constraint), with the same two
// drivers (Rego and K8sNativeValidation, that is CEL) and Gatekeeper's own
// Kubernetes target, which owns spec.match and builds input.review. What
// this package adds is the translation at both ends: a policies.Input
// becomes the admission request or object Gatekeeper's webhook, audit or
// gator would review, and each violation becomes a policies.Finding with
// Tollgate's action, severity, controls and remediation.
//
// Compile once, evaluate many: Compile reads every template and constraint
// and reports every broken one by source and field while the good ones
// load; Evaluate only reviews and is safe for concurrent use, as are
// AddData and RemoveData, which keep data.inventory for referential
// templates.
//
// RunSuites runs gator verify suites (kind Suite) with gator's own runner,
// for `tollgate test`.
package gatekeeper
