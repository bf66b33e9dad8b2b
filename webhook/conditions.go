package webhook

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"

	"github.com/tollgate-dev/tollgate/policies"
	core "github.com/tollgate-dev/tollgate/policies/review"
)

// CompleteConditionName names the mutating webhook's match condition that
// lets the API server skip the call for a Pod whose defaults are all
// already in place.
const CompleteConditionName = "tollgate.dev/not-already-complete"

// MutateMatchConditions are the mutating webhook's matchConditions for a
// policy set: one CEL condition, evaluated by the API server, that is false
// (so the call is skipped) only for a Pod being created that already holds
// every value Tollgate's mutation would add, in which case the mutation is
// an empty patch. With image policies in force, every image of the Pod must
// also be pinned to a digest: the digest validation verifies is then the
// one admitted. Every other object, and every Pod when the set could
// change a value the Pod already holds (overwrite, a plugin that mutates at
// admission),
// is always sent. nil means nothing can be skipped.
//
// It is safe because it only saves work: the validating webhook carries no
// condition and judges every object, so a Pod that fakes completeness
// (values present but wrong) is judged on those values exactly as it would
// be after a mutation that kept them.
func MutateMatchConditions(st *core.Set) []admissionregistrationv1.MatchCondition {
	for _, p := range st.Plugins {
		if _, ok := p.Evaluator.(core.Mutator); ok && !slices.Contains(p.SkipSources, policies.SourceAdmission) {
			return nil // it may change what the Pod holds
		}
	}
	complete := podComplete(st.Engine.Config(), len(st.Images) > 0)
	if complete == "" {
		return nil
	}
	return []admissionregistrationv1.MatchCondition{{
		Name: CompleteConditionName,
		Expression: "!(request.resource.group == '' && request.resource.resource == 'pods' && request.subResource == '' && request.operation == 'CREATE' && " +
			complete + ")",
	}}
}

// podComplete is a CEL expression true when a Pod object holds every value
// the config's mutations would add to it, or "" when no Pod can be known
// complete from its own fields (a mutation overwrites values the user set).
// pinned requires every image to name its digest.
// It requires each value whatever the namespace: the ownership labels a
// namespace may not set, the security context of every per-namespace
// override, so it may send a Pod that needed nothing, never skip one that
// needed something.
func podComplete(cfg *policies.Config, pinned bool) string {
	m := cfg.Mutations
	var all []string
	if m.Ownership.Enabled {
		if m.Ownership.Overwrite {
			return ""
		}
		for _, rule := range []policies.LabelRule{cfg.Labels.Team, cfg.Labels.Owner, cfg.Labels.CostCenter, cfg.Labels.Environment} {
			if rule.Key != "" {
				all = append(all, "has(object.metadata.labels) && "+celString(rule.Key)+" in object.metadata.labels")
			}
		}
	}
	// The strictest of the cluster-wide defaults and every override.
	var sc policies.SecurityContextDefaults
	variants := []policies.SecurityContextDefaults{m.SecurityContext.SecurityContextDefaults}
	for _, o := range m.SecurityContext.Namespaces {
		variants = append(variants, o.Apply(m.SecurityContext.SecurityContextDefaults))
	}
	for _, v := range variants {
		if !v.Enabled {
			continue
		}
		if v.Overwrite {
			return ""
		}
		sc.RunAsNonRoot = sc.RunAsNonRoot || v.RunAsNonRoot
		sc.DisallowPrivilegeEscalation = sc.DisallowPrivilegeEscalation || v.DisallowPrivilegeEscalation
		sc.DropAllCapabilities = sc.DropAllCapabilities || v.DropAllCapabilities
		if v.SeccompProfile != "" {
			sc.SeccompProfile = v.SeccompProfile
		}
	}
	if sc.RunAsNonRoot {
		all = append(all, "has(object.spec.securityContext) && has(object.spec.securityContext.runAsNonRoot)")
	}
	if sc.SeccompProfile != "" {
		all = append(all, "has(object.spec.securityContext) && has(object.spec.securityContext.seccompProfile) && has(object.spec.securityContext.seccompProfile.type)")
	}
	var perContainer []string
	if sc.DisallowPrivilegeEscalation {
		perContainer = append(perContainer, "has(c.securityContext) && has(c.securityContext.allowPrivilegeEscalation)")
	}
	if sc.DropAllCapabilities {
		perContainer = append(perContainer, "has(c.securityContext) && has(c.securityContext.capabilities) && has(c.securityContext.capabilities.drop)")
	}
	var perResourced []string
	if m.Resources.Enabled {
		for _, side := range []struct {
			field string
			list  map[string]string
		}{{"requests", m.Resources.Requests}, {"limits", m.Resources.Limits}} {
			for _, res := range slices.Sorted(maps.Keys(side.list)) {
				perResourced = append(perResourced, "has(c.resources) && has(c.resources."+side.field+") && "+celString(res)+" in c.resources."+side.field)
			}
		}
	}
	if pinned {
		perContainer = append(perContainer, "has(c.image) && c.image.contains('@sha256:')")
	}
	for _, list := range []string{"initContainers", "containers", "ephemeralContainers"} {
		checks := slices.Clone(perContainer)
		if list != "ephemeralContainers" {
			checks = append(checks, perResourced...)
		}
		if len(checks) == 0 {
			continue
		}
		all = append(all, "(!has(object.spec."+list+") || object.spec."+list+".all(c, "+strings.Join(parenthesize(checks), " && ")+"))")
	}
	if len(all) == 0 {
		return "true" // the config adds nothing to a Pod
	}
	return strings.Join(parenthesize(all), " && ")
}

func parenthesize(terms []string) []string {
	out := make([]string, len(terms))
	for i, t := range terms {
		out[i] = "(" + t + ")"
	}
	return out
}

// celString quotes a label key or resource name as a CEL string literal.
func celString(s string) string { return strconv.Quote(s) }
