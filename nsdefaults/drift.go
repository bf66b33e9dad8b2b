package nsdefaults

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// upToDate reports whether live is what want generates: Tollgate's labels
// and digest, every field of want's spec with its value (the API server's
// defaults may add more), and no field of the spec set by anyone else.
func upToDate(live, want *unstructured.Unstructured) bool {
	for k, v := range want.GetLabels() {
		if live.GetLabels()[k] != v {
			return false
		}
	}
	if live.GetAnnotations()[AnnotationHash] != want.GetAnnotations()[AnnotationHash] {
		return false
	}
	return contains(live.Object["spec"], want.Object["spec"]) && len(foreignFields(live)) == 0
}

// ours reports whether an object of Tollgate's name is Tollgate's: it
// has the managed label, or Tollgate's field manager applied it (someone
// took the label off, which is drift like any other edit). One of the
// name that Tollgate never applied is someone else's.
func ours(obj *unstructured.Unstructured) bool {
	if obj.GetLabels()[LabelManagedBy] == ManagedBy {
		return true
	}
	for _, e := range obj.GetManagedFields() {
		if e.Manager == FieldManager && e.Operation == metav1.ManagedFieldsOperationApply {
			return true
		}
	}
	return false
}

// contains reports whether got has every field of want with the same
// value; lists must have as many items, each containing want's.
func contains(got, want any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok || !contains(gv, wv) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !contains(g[i], w[i]) {
				return false
			}
		}
		return true
	default:
		return reflect.DeepEqual(got, want)
	}
}

// foreignFields are the fields of obj's spec that a field manager other
// than Tollgate's set and Tollgate's does not manage (paths in the
// managed fields' notation), read from its managed fields.
func foreignFields(obj *unstructured.Unstructured) []string {
	ours, theirs := map[string]bool{}, map[string]bool{}
	for _, e := range obj.GetManagedFields() {
		if e.Subresource != "" || e.FieldsV1 == nil {
			continue // status is the status writers'
		}
		var tree map[string]any
		if err := json.Unmarshal(e.FieldsV1.GetRawBytes(), &tree); err != nil {
			continue
		}
		dst := theirs
		if e.Manager == FieldManager {
			dst = ours
		}
		if spec, ok := tree["f:spec"].(map[string]any); ok {
			walkFields(spec, "spec", dst)
		}
	}
	var out []string
	for p := range theirs {
		if !ours[p] {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

func walkFields(node map[string]any, prefix string, into map[string]bool) {
	for k, v := range node {
		if k == "." {
			continue
		}
		p := prefix + "." + strings.TrimPrefix(k, "f:")
		into[p] = true
		if child, ok := v.(map[string]any); ok {
			walkFields(child, p, into)
		}
	}
}
