package nsdefaults

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func quota(t *testing.T, hard string) *unstructured.Unstructured {
	t.Helper()
	objs, err := Desired("shop", "golden", profile(t, `{namespaceDefaults: {resourceQuota: {hard: `+hard+`}}}`))
	if err != nil {
		t.Fatal(err)
	}
	return objs[0]
}

func fields(manager, subresource, raw string) metav1.ManagedFieldsEntry {
	return metav1.ManagedFieldsEntry{Manager: manager, Operation: metav1.ManagedFieldsOperationApply, Subresource: subresource,
		FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(raw)}
}

// TestUpToDate: what makes a generated object need applying again.
func TestUpToDate(t *testing.T) {
	want := quota(t, `{pods: "10", requests.cpu: 500m}`)
	ours := fields(FieldManager, "", `{"f:metadata":{"f:labels":{"f:app.kubernetes.io/managed-by":{}}},"f:spec":{"f:hard":{"f:pods":{},"f:requests.cpu":{}}}}`)
	cases := []struct {
		name string
		edit func(u *unstructured.Unstructured)
		want bool
	}{
		{"as generated, with the quota controller's status", func(u *unstructured.Unstructured) {
			u.Object["status"] = map[string]any{"hard": map[string]any{"pods": "10"}, "used": map[string]any{"pods": "3"}}
			u.SetManagedFields([]metav1.ManagedFieldsEntry{ours, fields("kube-controller-manager", "status", `{"f:status":{"f:used":{}}}`)})
		}, true},
		{"a value edited", func(u *unstructured.Unstructured) {
			_ = unstructured.SetNestedField(u.Object, "100", "spec", "hard", "pods")
		}, false},
		{"a key removed", func(u *unstructured.Unstructured) {
			unstructured.RemoveNestedField(u.Object, "spec", "hard", "pods")
		}, false},
		{"a key added by someone else", func(u *unstructured.Unstructured) {
			_ = unstructured.SetNestedField(u.Object, "8", "spec", "hard", "requests.nvidia.com/gpu")
			u.SetManagedFields([]metav1.ManagedFieldsEntry{ours, fields("kubectl-edit", "", `{"f:spec":{"f:hard":{"f:requests.nvidia.com/gpu":{}}}}`)})
		}, false},
		{"a value someone else also applied", func(u *unstructured.Unstructured) {
			u.SetManagedFields([]metav1.ManagedFieldsEntry{ours, fields("argocd", "", `{"f:spec":{"f:hard":{"f:pods":{}}}}`)})
		}, true},
		{"the managed label removed", func(u *unstructured.Unstructured) {
			u.SetLabels(map[string]string{LabelProfile: "golden"})
		}, false},
		{"generated from another profile", func(u *unstructured.Unstructured) {
			u.SetLabels(map[string]string{LabelManagedBy: ManagedBy, LabelProfile: "innovation"})
		}, false},
		{"generated from an older version of the profile", func(u *unstructured.Unstructured) {
			u.SetAnnotations(map[string]string{AnnotationHash: "0123456789abcdef"})
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			live := want.DeepCopy()
			live.SetManagedFields([]metav1.ManagedFieldsEntry{ours})
			tc.edit(live)
			if got := upToDate(live, want); got != tc.want {
				t.Errorf("upToDate = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestForeignFields(t *testing.T) {
	u := quota(t, `{pods: "10"}`)
	u.SetManagedFields([]metav1.ManagedFieldsEntry{
		fields(FieldManager, "", `{"f:spec":{"f:hard":{".":{},"f:pods":{}}}}`),
		fields("kubectl-edit", "", `{"f:spec":{"f:hard":{"f:pods":{},"f:services":{}},"f:scopes":{}}}`),
		fields("quota-writer", "status", `{"f:spec":{"f:hard":{"f:secrets":{}}}}`),
	})
	if diff := cmp.Diff([]string{"spec.hard.services", "spec.scopes"}, foreignFields(u)); diff != "" {
		t.Errorf("foreign fields (-want +got):\n%s", diff)
	}
}

// TestOurs: an object of Tollgate's name is Tollgate's when it has the
// managed label or Tollgate applied it; never otherwise.
func TestOurs(t *testing.T) {
	labelled := quota(t, `{pods: "10"}`)
	unlabelled := labelled.DeepCopy()
	unlabelled.SetLabels(nil)
	applied := unlabelled.DeepCopy()
	applied.SetManagedFields([]metav1.ManagedFieldsEntry{fields(FieldManager, "", `{"f:spec":{"f:hard":{"f:pods":{}}}}`)})
	updated := unlabelled.DeepCopy()
	updated.SetManagedFields([]metav1.ManagedFieldsEntry{{Manager: FieldManager, Operation: metav1.ManagedFieldsOperationUpdate}})
	someoneElses := unlabelled.DeepCopy()
	someoneElses.SetManagedFields([]metav1.ManagedFieldsEntry{fields("kubectl-client-side-apply", "", `{"f:spec":{"f:hard":{"f:pods":{}}}}`)})
	for name, tc := range map[string]struct {
		obj  *unstructured.Unstructured
		want bool
	}{
		"labelled":                        {labelled, true},
		"label taken off, applied by us":  {applied, true},
		"unlabelled, never applied by us": {unlabelled, false},
		"only an update of ours":          {updated, false},
		"someone else's":                  {someoneElses, false},
	} {
		if got := ours(tc.obj); got != tc.want {
			t.Errorf("%s: ours = %v, want %v", name, got, tc.want)
		}
	}
}
