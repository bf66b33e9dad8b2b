// Package policies is Tollgate's evaluation core: it loads Rego policies
// (the built-in library, directories, OPA bundles), compiles them once, and
// judges one typed Input at a time, returning findings with the policy, the
// message, the severity, the action and the JSON path of the offending field.
//
// The admission webhook, `tollgate check` and the background audit all call
// the same Engine; nothing here imports the webhook, the CLI or Kubernetes
// clients. See README.md in this directory for how to write policies.
package policies
