package webhook

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tollgate-dev/tollgate/policies"
)

// decodeReview reads every review the API server could send as
// encoding/json reads it into an AdmissionRequest followed by decoding
// its objects: the library's fixture objects, and requests with every
// optional field.
func TestDecodeReviewMatchesEncodingJSON(t *testing.T) {
	bodies := libraryFixtureReviews(t)
	full := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1",
	 "kind":{"group":"apps","version":"v1","kind":"Deployment"},"resource":{"group":"apps","version":"v1","resource":"deployments"},
	 "subResource":"scale","requestKind":{"group":"autoscaling","version":"v1","kind":"Scale"},
	 "requestResource":{"group":"apps","version":"v1","resource":"deployments"},"requestSubResource":"scale",
	 "name":"web","namespace":"shop","operation":"UPDATE",
	 "userInfo":{"username":"u","uid":"1","groups":["a","b"],"extra":{"scopes":["x","y"],"empty":[]}},
	 "object":{"spec":{"replicas":3}},"oldObject":{"spec":{"replicas":2.50}},"dryRun":true,
	 "options":{"kind":"UpdateOptions","apiVersion":"meta.k8s.io/v1"}}}`
	nulls := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u2","kind":null,"resource":null,
	 "requestKind":null,"userInfo":{"groups":null,"extra":null},"object":null,"oldObject":null,"dryRun":null}}`
	bodies = append(bodies, []byte(full), []byte(nulls))
	for _, body := range bodies {
		var std struct {
			APIVersion string                        `json:"apiVersion"`
			Kind       string                        `json:"kind"`
			Request    *admissionv1.AdmissionRequest `json:"request"`
		}
		if err := json.Unmarshal(body, &std); err != nil {
			t.Fatal(err)
		}
		want, err := policies.AdmissionInput(std.Request, nil)
		if err != nil {
			t.Fatal(err)
		}
		ar, req, err := decodeReview(body, false)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if ar.APIVersion != std.APIVersion || ar.Kind != std.Kind {
			t.Errorf("envelope %+v, want %s %s", ar, std.APIVersion, std.Kind)
		}
		got := *req.AdmissionRequest
		std.Request.Object, std.Request.OldObject, std.Request.Options = runtime.RawExtension{}, runtime.RawExtension{}, runtime.RawExtension{}
		if diff := cmp.Diff(*std.Request, got); diff != "" {
			t.Errorf("request fields (-encoding/json +decodeReview):\n%s", diff)
		}
		if diff := cmp.Diff(want, admissionInput(req, nil)); diff != "" {
			t.Errorf("engine input (-policies.AdmissionInput +admissionInput):\n%s", diff)
		}
	}
}

// A field of the wrong type is an error naming the field's path.
func TestDecodeReviewNamesWrongFields(t *testing.T) {
	for _, tc := range []struct{ request, says string }{
		{`"request":5`, "request: a JSON number where an object belongs"},
		{`"request":{"uid":7}`, "request.uid: a JSON number where a string belongs"},
		{`"request":{"uid":"u","kind":"Pod"}`, "request.kind: a JSON string where an object belongs"},
		{`"request":{"uid":"u","kind":{"kind":["Pod"]}}`, "request.kind.kind: a JSON array where a string belongs"},
		{`"request":{"uid":"u","resource":{"resource":{}}}`, "request.resource.resource: a JSON object where a string belongs"},
		{`"request":{"uid":"u","requestKind":true}`, "request.requestKind: a JSON boolean where an object belongs"},
		{`"request":{"uid":"u","dryRun":"yes"}`, "request.dryRun: a JSON string where a boolean belongs"},
		{`"request":{"uid":"u","userInfo":{"groups":"admins"}}`, "request.userInfo.groups: a JSON string where an array belongs"},
		{`"request":{"uid":"u","userInfo":{"groups":["a",1]}}`, "request.userInfo.groups[1]: a JSON number where a string belongs"},
		{`"request":{"uid":"u","userInfo":{"extra":{"k":"v"}}}`, "request.userInfo.extra.k: a JSON string where an array belongs"},
		{`"request":{"uid":"u","object":[]}`, "request.object: a JSON array where an object belongs"},
		{`"request":{"uid":"u","oldObject":"x"}`, "request.oldObject: a JSON string where an object belongs"},
		{`"request":{"uid":"u","name":1,"namespace":2}`, "request.name: a JSON number where a string belongs"},
	} {
		body := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",` + tc.request + `}`
		_, _, err := decodeReview([]byte(body), false)
		if err == nil || err.Error() != tc.says {
			t.Errorf("%s: error %v, want %q", body, err, tc.says)
		}
	}
	for _, body := range []string{`{"apiVersion":1}`, `{"kind":{}}`} {
		if _, _, err := decodeReview([]byte(body), false); err == nil || !strings.Contains(err.Error(), "belongs") {
			t.Errorf("%s: error %v", body, err)
		}
	}
}

// judgedCopy is the part of an object an update is judged on, as a copy:
// the reference trivialUpdate's comparison in place must agree with.
func judgedCopy(obj map[string]any) map[string]any {
	out := make(map[string]any, len(obj))
	for k, v := range obj {
		if k != "status" {
			out[k] = v
		}
	}
	if meta, ok := obj["metadata"].(map[string]any); ok {
		m := make(map[string]any, len(meta))
		for k, v := range meta {
			switch k {
			case "resourceVersion", "generation", "managedFields", "finalizers":
			default:
				m[k] = v
			}
		}
		out["metadata"] = m
	}
	return out
}

func TestTrivialUpdate(t *testing.T) {
	base := func() map[string]any {
		return map[string]any{"apiVersion": "v1", "kind": "Pod",
			"metadata": map[string]any{"name": "p", "resourceVersion": "1", "generation": json.Number("1"),
				"labels": map[string]any{"team": "a"}, "finalizers": []any{"x", "y"}, "managedFields": []any{map[string]any{"manager": "m"}}},
			"spec":   map[string]any{"containers": []any{map[string]any{"name": "c"}}},
			"status": map[string]any{"phase": "Pending"}}
	}
	meta := func(o map[string]any) map[string]any { return o["metadata"].(map[string]any) }
	for _, tc := range []struct {
		name    string
		change  func(o map[string]any)
		trivial bool
	}{
		{"nothing", func(map[string]any) {}, true},
		{"status", func(o map[string]any) { o["status"] = map[string]any{"phase": "Running"} }, true},
		{"status removed", func(o map[string]any) { delete(o, "status") }, true},
		{"bookkeeping", func(o map[string]any) {
			meta(o)["resourceVersion"], meta(o)["generation"], meta(o)["managedFields"] = "2", json.Number("2"), nil
		}, true},
		{"finalizer removed", func(o map[string]any) { meta(o)["finalizers"] = []any{"x"} }, true},
		{"finalizer added", func(o map[string]any) { meta(o)["finalizers"] = []any{"x", "y", "z"} }, false},
		{"label changed", func(o map[string]any) { meta(o)["labels"] = map[string]any{"team": "b"} }, false},
		{"annotation added", func(o map[string]any) { meta(o)["annotations"] = map[string]any{"a": "b"} }, false},
		{"spec changed", func(o map[string]any) { o["spec"] = map[string]any{} }, false},
		{"top-level key added", func(o map[string]any) { o["data"] = "x" }, false},
		{"top-level key removed", func(o map[string]any) { delete(o, "spec") }, false},
		{"metadata removed", func(o map[string]any) { delete(o, "metadata") }, false},
		{"metadata not an object", func(o map[string]any) { o["metadata"] = "m" }, false},
	} {
		old, cur := base(), base()
		tc.change(cur)
		if got := trivialUpdate(old, cur); got != tc.trivial {
			t.Errorf("%s: trivial %v, want %v", tc.name, got, tc.trivial)
		}
		if ref := reflect.DeepEqual(judgedCopy(old), judgedCopy(cur)); tc.name != "finalizer added" && ref != tc.trivial {
			t.Errorf("%s: the reference comparison says %v", tc.name, ref)
		}
	}
	if trivialUpdate(nil, base()) || trivialUpdate(base(), nil) {
		t.Error("an update without both objects was found trivial")
	}
}

// With managedFields left out, the decoded request is what encoding/json
// reads less the managedFields of the object and the old object, and
// nothing else: not a managedFields key elsewhere, not a field of the
// same name at another depth. The left-out value is still checked.
func TestDecodeReviewLeavesOutManagedFields(t *testing.T) {
	pod, err := os.ReadFile("testdata/pod-create.json")
	if err != nil {
		t.Fatal(err)
	}
	managed := `[{"manager":"kubectl","operation":"Update","apiVersion":"v1","fieldsType":"FieldsV1",
	  "fieldsV1":{"f:spec":{"f:containers":{"k:{\"name\":\"app\"}":{".":{},"f:image":{}}}}},"time":"2026-12-05T07:00:00Z"}]`
	update := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"UPDATE",
	 "kind":{"group":"","version":"v1","kind":"ConfigMap"},"name":"c","namespace":"shop",
	 "object":{"metadata":{"name":"c","managedFields":` + managed + `,"labels":{"managedFields":"kept"}},"data":{"managedFields":"kept"}},
	 "oldObject":{"metadata":{"name":"c","managedFields":` + managed + `}},
	 "managedFields":"kept at the top"}}`
	for _, body := range [][]byte{pod, []byte(update)} {
		_, full, err := decodeReview(body, false)
		if err != nil {
			t.Fatal(err)
		}
		_, lean, err := decodeReview(body, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, obj := range []map[string]any{full.Object, full.OldObject} {
			if meta, ok := obj["metadata"].(map[string]any); ok {
				if _, ok := meta["managedFields"]; !ok {
					t.Fatalf("the fixture has no managedFields to leave out: %s", body)
				}
				delete(meta, "managedFields")
			}
		}
		if diff := cmp.Diff(full.Object, lean.Object); diff != "" {
			t.Errorf("object (-without managedFields +left out):\n%s", diff)
		}
		if diff := cmp.Diff(full.OldObject, lean.OldObject); diff != "" {
			t.Errorf("old object (-without managedFields +left out):\n%s", diff)
		}
	}
	// What is left out is still JSON: each of these is an error either way.
	for _, bad := range []string{
		`[{"fieldsV1":{"k:{\"name\":\"app\x01\"}":{}}}]`,
		`[{"fieldsV1":{"k:{\q}":{}}}]`,
		`[{"fieldsV1":{"\u12":{}}}]`,
		`[{"fieldsV1":{"a" {}}}]`,
		`[{"fieldsV1":{"a":{},}}]`,
		`[1,]`,
		`[tru]`,
		`[-]`,
		`[{"a":1}`,
		`"unterminated`,
		strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1),
	} {
		body := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","object":{"metadata":{"managedFields":` + bad + `}}}}`
		_, _, errFull := decodeReview([]byte(body), false)
		_, _, errLean := decodeReview([]byte(body), true)
		if errFull == nil || errLean == nil {
			t.Errorf("%s: errors %v (decoded) and %v (left out), want both", bad, errFull, errLean)
		}
	}
}
