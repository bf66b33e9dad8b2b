package policies

// Scope says what a policy judges.
type Scope string

// Scopes. A pod policy is written against a Pod and applies to every kind
// that carries a pod template; an object policy sees any object.
const (
	ScopePod    Scope = "pod"
	ScopeObject Scope = "object"
)

// Metadata describes a loaded policy; it comes from the policy's
// `# METADATA` annotation and is what reports, SARIF rules and config
// overrides refer to.
type Metadata struct {
	// ID names the policy in findings, config overrides and exceptions.
	ID string `json:"id"`
	// Package is the Rego package path, e.g. data.tollgate.pss.baseline.privileged.
	Package string `json:"package"`
	// Title and Description are for people.
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	// Severity is the default severity of the policy's findings.
	Severity Severity `json:"severity"`
	// Action is the policy's default action; the config may override it.
	Action Action `json:"action"`
	// Scope is pod or object.
	Scope Scope `json:"scope"`
	// Kinds limits an object policy to some kinds ("Namespace", "apps/Deployment").
	Kinds []string `json:"kinds,omitempty"`
	// GovernedKinds extends an object policy to every kind the config's
	// governedKinds lists (METADATA custom.governedKinds: true). With no
	// Kinds besides, the policy judges those kinds only.
	GovernedKinds bool `json:"governedKinds,omitempty"`
	// AuditOnly keeps a policy out of admission (METADATA
	// custom.admission: false): the audit and check judge it, the
	// webhooks neither run it nor intercept its kinds for it. It is for
	// what only makes sense with the whole cluster in view (a Namespace
	// and its NetworkPolicies, the measured ClusterFacts) and for kinds
	// the cluster's own controllers write all the time (Nodes, Endpoints,
	// ConfigMaps), whose writes must not wait on a webhook.
	AuditOnly bool `json:"auditOnly,omitempty"`
	// Inventory says the policy judges only with the cluster inventory
	// beside the object (METADATA custom.inventory): "required" (any,
	// even check's manifests), "complete" (the audit's whole cluster).
	// Without it the policy does not apply, so it is neither run nor
	// counted as evidence that something was examined.
	Inventory string `json:"inventory,omitempty"`
	// Controls are the compliance controls the policy evidences.
	Controls []Control `json:"controls,omitempty"`
	// Remediation says how to fix a violation.
	Remediation string `json:"remediation,omitempty"`
	// Source is the file (or bundle entry) the policy was loaded from, and
	// Line the line of its package declaration.
	Source string `json:"source,omitempty"`
	Line   int    `json:"line,omitempty"`
}
