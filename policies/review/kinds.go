package review

import (
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/tollgate-dev/tollgate/policies"
)

// KindLister is the optional capability of a plugin that judges kinds
// beyond the workloads (its constraints' or policies' match).
type KindLister interface {
	Kinds() []policies.GroupVersionKind
}

// MutatedKindLister is the optional capability of a plugin that mutates
// kinds beyond the workloads (a Kyverno mutate rule on a ConfigMap): the
// mutating webhook intercepts them too.
type MutatedKindLister interface {
	MutatedKinds() []policies.GroupVersionKind
}

// workloadKinds carry a pod (template): they are mutated and judged.
var workloadKinds = []schema.GroupKind{
	{Kind: "Pod"}, {Kind: "PodTemplate"}, {Kind: "ReplicationController"},
	{Group: "apps", Kind: "Deployment"}, {Group: "apps", Kind: "ReplicaSet"},
	{Group: "apps", Kind: "StatefulSet"}, {Group: "apps", Kind: "DaemonSet"},
	{Group: "batch", Kind: "Job"}, {Group: "batch", Kind: "CronJob"},
}

// Kinds are the kinds a set mutates and judges: the workloads and the
// config's pod controllers both, PersistentVolumeClaims (ownership
// labels for cost, and the Budgets their storage counts against), the
// config's governed kinds (ownership labels, prices, size caps) and the
// kinds a plugin mutates (MutatedKindLister); every kind a policy, a
// config override or a plugin names is judged. The webhook configurations intercept them and the
// audit lists them. "Every kind" is never turned into intercepting
// everything.
//
// Policies kept out of admission (METADATA custom.admission: false) add
// no kind here; AuditedKinds adds theirs.
func Kinds(s *Set) (mutate, validate []schema.GroupKind) { return kinds(s, false) }

// AuditedKinds are the kinds the audit lists: those Kinds judges, and the
// kinds of the policies only the audit runs.
func AuditedKinds(s *Set) []schema.GroupKind {
	_, validate := kinds(s, true)
	return validate
}

func kinds(s *Set, audit bool) (mutate, validate []schema.GroupKind) {
	cfg := s.Engine.Config()
	mutate = slices.Clone(workloadKinds)
	for _, pc := range cfg.PodControllers {
		mutate = append(mutate, schema.GroupKind{Group: pc.Group, Kind: pc.Kind})
	}
	// Claims are priced: the budget gate judges them (and resizes).
	mutate = append(mutate, schema.GroupKind{Kind: "PersistentVolumeClaim"})
	// Governed kinds (Crossplane claims) get the ownership labels, are
	// judged and priced.
	for _, g := range cfg.GovernedKinds {
		if gk := (schema.GroupKind{Group: g.Group, Kind: g.Kind}); !slices.Contains(mutate, gk) {
			mutate = append(mutate, gk)
		}
	}
	for _, p := range s.Plugins {
		if ml, ok := p.Evaluator.(MutatedKindLister); ok {
			for _, k := range ml.MutatedKinds() {
				if gk := (schema.GroupKind{Group: k.Group, Kind: k.Kind}); k.Kind != "" && k.Kind != "*" && k.Group != "*" && !slices.Contains(mutate, gk) {
					mutate = append(mutate, gk)
				}
			}
		}
	}
	validate = slices.Clone(mutate)
	add := func(group, kind string) {
		if group == "core" {
			group = ""
		}
		if kind == "*" || kind == "" || group == "*" {
			return
		}
		if gk := (schema.GroupKind{Group: group, Kind: kind}); !slices.Contains(validate, gk) {
			validate = append(validate, gk)
		}
	}
	addNamed := func(kinds []string) {
		for _, k := range kinds {
			group, kind, ok := strings.Cut(k, "/")
			if !ok {
				group, kind = "", k
			}
			add(group, kind)
		}
	}
	for _, m := range s.Engine.Policies() {
		if !m.AuditOnly || audit {
			addNamed(m.Kinds)
		}
	}
	for _, o := range cfg.Policies {
		addNamed(o.Kinds)
	}
	if len(cfg.Profiles.Definitions) > 0 {
		add("", "Namespace") // a namespace's move between profiles is judged
	}
	for _, p := range s.Plugins {
		if kl, ok := p.Evaluator.(KindLister); ok {
			for _, k := range kl.Kinds() {
				add(k.Group, k.Kind)
			}
		}
	}
	return mutate, validate
}
