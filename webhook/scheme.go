package webhook

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
)

// Scheme knows the kinds Tollgate reads and writes: Kubernetes' own,
// Tollgate's (tollgate.dev/v1alpha1) and CustomResourceDefinitions (of
// Gatekeeper's constraint kinds).
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = v1alpha1.AddToScheme(s)
	_ = apiextensionsv1.AddToScheme(s)
	return s
}
