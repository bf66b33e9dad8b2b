package webhook

import (
	"encoding/json"
	"fmt"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// wireReview is the envelope of an AdmissionReview as the API server sends
// it.
type wireReview struct {
	APIVersion string
	Kind       string
}

// decodeReview reads a body in one pass: every byte is parsed once, into
// the JSON values the engine judges, and the request's own fields are
// taken from those values, so an object is never kept as raw bytes and
// decoded again. A field of the wrong type is an error naming its path;
// null reads as the field left out, as encoding/json reads it. Field names
// are matched exactly, as the API server writes them and as Kubernetes
// reads JSON (encoding/json would also take "UID" for "uid"). req is nil
// when the review carries no request. With skipManagedFields the
// metadata.managedFields of the object and the old object are checked but
// left out (for a policy set that does not read them).
func decodeReview(body []byte, skipManagedFields bool) (*wireReview, *Request, error) {
	doc, err := decodeJSON(body, skipManagedFields)
	if err != nil {
		return nil, nil, err
	}
	f := &fields{m: doc, err: new(error)}
	ar := &wireReview{APIVersion: f.str("apiVersion"), Kind: f.str("kind")}
	rf, present := f.sub("request")
	if !present {
		return ar, nil, *f.err
	}
	r := &admissionv1.AdmissionRequest{
		UID:                types.UID(rf.str("uid")),
		Kind:               rf.gvk("kind"),
		Resource:           rf.gvr("resource"),
		SubResource:        rf.str("subResource"),
		RequestSubResource: rf.str("requestSubResource"),
		Name:               rf.str("name"),
		Namespace:          rf.str("namespace"),
		Operation:          admissionv1.Operation(rf.str("operation")),
	}
	if rf.m["requestKind"] != nil {
		gvk := rf.gvk("requestKind")
		r.RequestKind = &gvk
	}
	if rf.m["requestResource"] != nil {
		gvr := rf.gvr("requestResource")
		r.RequestResource = &gvr
	}
	if v := rf.m["dryRun"]; v != nil {
		b, ok := v.(bool)
		if !ok {
			rf.fail("dryRun", v, "a boolean")
		}
		r.DryRun = &b
	}
	if uf, ok := rf.sub("userInfo"); ok {
		r.UserInfo = authenticationv1.UserInfo{Username: uf.str("username"), UID: uf.str("uid"), Groups: uf.strings("groups")}
		if ef, ok := uf.sub("extra"); ok && len(ef.m) > 0 {
			r.UserInfo.Extra = make(map[string]authenticationv1.ExtraValue, len(ef.m))
			for k := range ef.m {
				r.UserInfo.Extra[k] = ef.strings(k)
			}
		}
	}
	req := &Request{AdmissionRequest: r}
	if of, ok := rf.sub("object"); ok {
		req.Object = of.m
	}
	if of, ok := rf.sub("oldObject"); ok {
		req.OldObject = of.m
	}
	if *f.err != nil {
		return nil, nil, *f.err
	}
	return ar, req, nil
}

// fields reads typed fields of a decoded JSON object. The first field of
// the wrong type is kept in err, which nested objects share, so one error
// names the first wrong field with its path.
type fields struct {
	m    map[string]any
	path string
	err  *error
}

func (f *fields) fail(key string, v any, want string) {
	if *f.err == nil {
		*f.err = fmt.Errorf("%s%s: a JSON %s where %s belongs", f.path, key, jsonKindOf(v), want)
	}
}

func (f *fields) str(key string) string {
	switch v := f.m[key].(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		f.fail(key, v, "a string")
		return ""
	}
}

func (f *fields) strings(key string) []string {
	switch v := f.m[key].(type) {
	case nil:
		return nil
	case []any:
		out := make([]string, len(v))
		for i, e := range v {
			s, ok := e.(string)
			if !ok && e != nil {
				f.fail(fmt.Sprintf("%s[%d]", key, i), e, "a string")
			}
			out[i] = s
		}
		return out
	default:
		f.fail(key, v, "an array")
		return nil
	}
}

// sub reads a nested object: its fields (empty when missing or null) and
// whether it is there.
func (f *fields) sub(key string) (*fields, bool) {
	n := &fields{path: f.path + key + ".", err: f.err}
	switch v := f.m[key].(type) {
	case nil:
		return n, false
	case map[string]any:
		n.m = v
		return n, true
	default:
		f.fail(key, v, "an object")
		return n, false
	}
}

func (f *fields) gvk(key string) metav1.GroupVersionKind {
	n, _ := f.sub(key)
	return metav1.GroupVersionKind{Group: n.str("group"), Version: n.str("version"), Kind: n.str("kind")}
}

func (f *fields) gvr(key string) metav1.GroupVersionResource {
	n, _ := f.sub(key)
	return metav1.GroupVersionResource{Group: n.str("group"), Version: n.str("version"), Resource: n.str("resource")}
}

// jsonKindOf names the JSON kind of a decoded value.
func jsonKindOf(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "boolean"
	default:
		return "null"
	}
}
