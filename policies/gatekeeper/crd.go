package gatekeeper

import (
	"fmt"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConstraintCRDs are the CustomResourceDefinitions of the loaded
// templates' constraint kinds (<lowercase kind>.constraints.gatekeeper.sh),
// as Gatekeeper creates them: the constraint framework client's own
// CreateCRD, which Compile ran for each template, converted to
// apiextensions.k8s.io/v1 by apiextensions' own conversion (as Gatekeeper's
// scheme does) and defaulted as the API server defaults them, so one
// compares equal to its stored copy. Only templates that loaded have one:
// Gatekeeper, too, creates a CRD only once its template compiled.
//
// The CRDs carry the framework's labels (the template's, and
// gatekeeper.sh/constraint: "yes"); no owner reference is set.
func (e *Evaluator) ConstraintCRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	out := make([]*apiextensionsv1.CustomResourceDefinition, 0, len(e.crds))
	for _, in := range e.crds {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := apiextensionsv1.Convert_apiextensions_CustomResourceDefinition_To_v1_CustomResourceDefinition(in.DeepCopy(), crd, nil); err != nil {
			return nil, fmt.Errorf("converting the CRD of %s to apiextensions.k8s.io/v1: %w", in.Spec.Names.Kind, err)
		}
		apiextensionsv1.SetObjectDefaults_CustomResourceDefinition(crd)
		crd.TypeMeta = metav1.TypeMeta{APIVersion: apiextensionsv1.SchemeGroupVersion.String(), Kind: "CustomResourceDefinition"}
		out = append(out, crd)
	}
	return out, nil
}
