package budget

import (
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
)

// Scope is the part of the cluster a Budget counts, compiled from its
// spec.scope: one namespace (the Budget's own by default), or a label
// selector over the labels of pods and claims as they are charged: their
// namespace's value for each key the namespace sets, their own for the rest
// (finops.LabelsOfRecord). The scanner tallies by it and the
// admission gate asks it whether a change counts, so both agree on what a
// Budget covers.
type Scope struct {
	// Namespace is set for a namespace scope.
	Namespace string
	// Selector is set for a selector scope.
	Selector labels.Selector
}

// ScopeOf compiles a Budget's scope. An empty selector is an error: it
// would count the whole cluster.
func ScopeOf(b *v1alpha1.Budget) (Scope, error) {
	if sel := b.Spec.Scope.Selector; sel != nil {
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			return Scope{}, fmt.Errorf("spec.scope.selector: %w", err)
		}
		if s.Empty() {
			return Scope{}, errors.New("spec.scope.selector: empty; it would count the whole cluster (name the labels, such as team)")
		}
		return Scope{Selector: s}, nil
	}
	ns := b.Spec.Scope.Namespace
	if ns == "" {
		ns = b.Namespace
	}
	return Scope{Namespace: ns}, nil
}

// Covers reports whether an object in namespace ns, with its labels (a
// pod's, or a workload's pod template's) and its namespace's, counts
// against the Budget.
func (s Scope) Covers(ns string, nsLabels, objLabels map[string]string) bool {
	if s.Selector == nil {
		return s.Namespace == ns
	}
	return s.Selector.Matches(withNamespaceLabels(objLabels, nsLabels))
}

// String describes the scope for people: "namespace shop", "team=payments".
func (s Scope) String() string {
	if s.Selector == nil {
		return "namespace " + s.Namespace
	}
	return s.Selector.String()
}
