package loader

import (
	"context"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
)

// TestOverlayList: a List answers with the cluster's objects and the
// set's of the list's group and kind — typed or unstructured, at the
// list's version, in the namespace and with the labels asked for — a
// set's object replacing the cluster's of the same name, and the set's
// alone for a kind the cluster does not serve.
func TestOverlayList(t *testing.T) {
	ctx := context.Background()
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(v1alpha1.GroupVersion.WithKind("TollgatePolicy"), meta.RESTScopeRoot)
	// No constraint kind is served (their CRDs are not created).
	noConstraints := interceptor.Funcs{List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
		if gvk := list.GetObjectKind().GroupVersionKind(); gvk.Group == "constraints.gatekeeper.sh" {
			return &meta.NoKindMatchError{GroupKind: gvk.GroupKind()}
		}
		return c.List(ctx, list, opts...)
	}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithRESTMapper(mapper).WithInterceptorFuncs(noConstraints).WithObjects(
		&v1alpha1.TollgatePolicy{ObjectMeta: metav1.ObjectMeta{Name: "cluster-only"}, Spec: v1alpha1.TollgatePolicySpec{Rego: "cluster"}},
		&v1alpha1.TollgatePolicy{ObjectMeta: metav1.ObjectMeta{Name: "both"}, Spec: v1alpha1.TollgatePolicySpec{Rego: "cluster"}},
	).Build()
	policy := func(name string) Object {
		return Object{Source: "oci/p.yaml:1", Object: map[string]any{
			"apiVersion": "tollgate.dev/v1alpha1", "kind": "TollgatePolicy",
			"metadata": map[string]any{"name": name}, "spec": map[string]any{"rego": "set"},
		}}
	}
	constraint := func(name, team string) Object {
		return Object{Source: "oci/c.yaml:1", Object: map[string]any{
			"apiVersion": "constraints.gatekeeper.sh/v1alpha1", "kind": "TeamLabels",
			"metadata": map[string]any{"name": name, "labels": map[string]any{"team": team}},
		}}
	}
	o, err := newOverlay(c, []Object{policy("both"), policy("set-only"), constraint("a", "x"), constraint("b", "y")}, "oci://reg/set@sha256:1")
	if err != nil {
		t.Fatal(err)
	}

	var typed v1alpha1.TollgatePolicyList
	if err := o.List(ctx, &typed); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range typed.Items {
		got = append(got, p.Name+"="+p.Spec.Rego+" set="+p.Annotations[AnnotationPolicySet])
	}
	slices.Sort(got)
	want := []string{"both=set set=oci://reg/set@sha256:1", "cluster-only=cluster set=", "set-only=set set=oci://reg/set@sha256:1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("TollgatePolicies (-want +got):\n%s", diff)
	}

	// The constraint kind has no CRD: the set's objects alone, at the
	// version asked for, selected by label.
	ul := &unstructured.UnstructuredList{}
	ul.SetGroupVersionKind(schema.GroupVersionKind{Group: "constraints.gatekeeper.sh", Version: "v1beta1", Kind: "TeamLabelsList"})
	if err := o.List(ctx, ul, client.MatchingLabels{"team": "y"}); err != nil {
		t.Fatal(err)
	}
	if len(ul.Items) != 1 || ul.Items[0].GetName() != "b" || ul.Items[0].GetAPIVersion() != "constraints.gatekeeper.sh/v1beta1" || !fromSet(&ul.Items[0]) {
		t.Errorf("constraints: %+v", ul.Items)
	}

	// A kind the set has none of is the cluster's alone, errors included.
	other := &unstructured.UnstructuredList{}
	other.SetGroupVersionKind(schema.GroupVersionKind{Group: "constraints.gatekeeper.sh", Version: "v1beta1", Kind: "OtherList"})
	if err := o.List(ctx, other); !meta.IsNoMatchError(err) {
		t.Errorf("a kind not served and not in the set: %v, want no match", err)
	}
}
