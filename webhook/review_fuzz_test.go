package webhook

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"

	"github.com/tollgate-dev/tollgate/policies/manifest"
)

// libraryFixtureReviews wraps every object of the policy library's fixture
// suites in an AdmissionReview, as the API server would send it on CREATE
// in a namespace the fixture's reviewer can read: real objects, allowed and
// denied, of every kind the library judges.
func libraryFixtureReviews(t testing.TB) [][]byte {
	t.Helper()
	var out [][]byte
	fixtures := os.DirFS("../policies/library")
	err := fs.WalkDir(fixtures, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.Contains(p, "testdata/") || !strings.HasSuffix(p, ".yaml") ||
			strings.HasSuffix(p, "/suite.yaml") || strings.HasSuffix(p, "/config.yaml") {
			return err
		}
		data, err := fs.ReadFile(fixtures, p)
		if err != nil {
			return err
		}
		docs, err := manifest.Read(p, bytes.NewReader(data), manifest.Options{})
		if err != nil {
			return nil //nolint:nilerr // fixtures of malformed input are seeds of the raw-bytes target below
		}
		for _, d := range docs {
			obj, err := json.Marshal(d.Object)
			if err != nil {
				return err
			}
			ns := "shop"
			if d.Kind() == "Namespace" {
				ns = d.Name()
			}
			out = append(out, review(t, "CREATE", d.Kind(), ns, d.Name(), string(obj), ""))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// FuzzAdmissionHandler posts any bytes to /validate and /mutate, served as
// tollgate serve serves them (the real policy library, the decision log,
// the metrics), and checks the answer: never a panic, even a contained
// one; a well-formed AdmissionReview in the request's version carrying
// the request's UID, or a plain-text HTTP error that says what is wrong;
// a mutation is a JSON patch that applies to the object, and applying it
// leaves nothing more to patch.
func FuzzAdmissionHandler(f *testing.F) {
	for i, body := range libraryFixtureReviews(f) {
		f.Add(body, i%2 == 0)
	}
	for _, body := range [][]byte{
		review(f, "CREATE", "Pod", "shop", "p", privilegedPod, ""),
		review(f, "CREATE", "Pod", "shop", "ok", hardenedPod, ""),
		review(f, "UPDATE", "Pod", "shop", "ok", hardenedPod, privilegedPod),
		review(f, "DELETE", "Pod", "shop", "ok", "", hardenedPod),
		review(f, "CREATE", "Pod", "nowhere", "p", privilegedPod, ""),
		review(f, "CREATE", "Pod", "shop", "p", `"just a string"`, ""),
		[]byte(`{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Pod","version":"v1"},"namespace":"shop","operation":"CREATE","object":{"kind":"Pod","apiVersion":"v1","spec":{"containers":[{}]}}}}`),
		[]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":5}}`),
		[]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","subResource":"ephemeralcontainers","kind":{"kind":"Pod","version":"v1"},"namespace":"shop","operation":"UPDATE","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p"},"spec":{"ephemeralContainers":[{"name":"d","image":"busybox"}]}}}}`),
		[]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":7}}`),
		[]byte(`{"kind":"AdmissionReview"}`),
		[]byte(`null`),
		[]byte(``),
	} {
		f.Add(body, false)
		f.Add(body, true)
	}
	fx := newFixture(f, nil, nil)
	f.Fuzz(func(t *testing.T, body []byte, mutate bool) {
		fx.log.Reset()
		h, webhook := fx.validate, WebhookValidate
		if mutate {
			h, webhook = fx.mutate, WebhookMutate
		}
		rec := post(h, body, "application/json")

		sent := readSent(body)
		uid := ""
		if sent.Request != nil {
			uid = sent.Request.UID
		}

		if rec.Code != http.StatusOK {
			msg := rec.Body.String()
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Fatalf("HTTP %d with content type %q", rec.Code, ct)
			}
			if len(strings.TrimSpace(msg)) < 10 {
				t.Fatalf("HTTP %d without a message saying what is wrong: %q", rec.Code, msg)
			}
			switch rec.Code {
			case http.StatusBadRequest:
				if uid != "" && sent.Kind == "AdmissionReview" && strings.HasPrefix(sent.APIVersion, "admission.k8s.io/v1") {
					t.Fatalf("an AdmissionReview with the UID %q was answered with HTTP 400, not a review: %s", uid, msg)
				}
			case http.StatusInternalServerError:
				if !strings.HasPrefix(msg, "tollgate could not decide") {
					t.Fatalf("HTTP 500 that is not a decision failure: %s", msg)
				}
			default:
				t.Fatalf("HTTP %d: %s", rec.Code, msg)
			}
			return
		}

		var got struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Response   *struct {
				UID       string   `json:"uid"`
				Allowed   bool     `json:"allowed"`
				Patch     []byte   `json:"patch"`
				PatchType *string  `json:"patchType"`
				Warnings  []string `json:"warnings"`
				Status    *struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
				} `json:"status"`
			} `json:"response"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatalf("response is not JSON: %v: %s", err, rec.Body)
		}
		resp := got.Response
		switch {
		case got.Kind != "AdmissionReview" || got.APIVersion != sent.APIVersion:
			t.Fatalf("answered as %s %s to a %s review", got.APIVersion, got.Kind, sent.APIVersion)
		case resp == nil:
			t.Fatalf("AdmissionReview without a response: %s", rec.Body)
		case uid == "" || resp.UID != uid:
			t.Fatalf("response UID %q, request UID %q", resp.UID, uid)
		case !resp.Allowed && (resp.Status == nil || resp.Status.Message == ""):
			t.Fatalf("a denial without a message: %s", rec.Body)
		}
		for _, s := range append(resp.Warnings, statusMessage(resp.Status)) {
			if strings.Contains(s, "internal error") {
				t.Fatalf("the %s handler panicked: %s", webhook, s)
			}
		}
		if len(resp.Patch) == 0 {
			return
		}
		if !mutate || resp.PatchType == nil || *resp.PatchType != "JSONPatch" {
			t.Fatalf("patch from %s with type %v", webhook, resp.PatchType)
		}
		patch, err := jsonpatch.DecodePatch(resp.Patch)
		if err != nil {
			t.Fatalf("patch does not decode: %v: %s", err, resp.Patch)
		}
		patched, err := patch.Apply(sent.Request.Object)
		if err != nil {
			t.Fatalf("patch does not apply to the object: %v\npatch: %s\nobject: %s", err, resp.Patch, sent.Request.Object)
		}
		// Mutation is idempotent: the patched object needs no patch.
		var again map[string]any
		if err := json.Unmarshal(body, &again); err != nil {
			t.Fatalf("a body that was answered does not decode: %v", err)
		}
		again["request"].(map[string]any)["object"] = json.RawMessage(patched)
		body2, err := json.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		var second struct {
			Response struct {
				Patch []byte `json:"patch"`
			} `json:"response"`
		}
		rec2 := post(h, body2, "application/json")
		if rec2.Code != http.StatusOK || json.Unmarshal(rec2.Body.Bytes(), &second) != nil {
			t.Fatalf("the patched object was answered with HTTP %d: %s", rec2.Code, rec2.Body)
		}
		if len(second.Response.Patch) > 0 {
			t.Fatalf("mutation is not idempotent:\nfirst patch:  %s\nsecond patch: %s", resp.Patch, second.Response.Patch)
		}
	})
}

func statusMessage(s *struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}) string {
	if s == nil {
		return ""
	}
	return s.Message
}

// sentReview is what a body says, read leniently: a field of the wrong
// type leaves that field empty and the rest read. Field names are matched
// exactly, as Kubernetes reads them (and as the API server writes them).
type sentReview struct {
	APIVersion, Kind string
	Request          *struct {
		UID    string
		Object json.RawMessage
	}
}

func readSent(body []byte) sentReview {
	var out sentReview
	var doc map[string]json.RawMessage
	if json.Unmarshal(body, &doc) != nil {
		return out
	}
	str := func(raw json.RawMessage) string {
		var s string
		_ = json.Unmarshal(raw, &s)
		return s
	}
	out.APIVersion, out.Kind = str(doc["apiVersion"]), str(doc["kind"])
	var req map[string]json.RawMessage
	if json.Unmarshal(doc["request"], &req) == nil && req != nil {
		out.Request = &struct {
			UID    string
			Object json.RawMessage
		}{UID: str(req["uid"]), Object: req["object"]}
	}
	return out
}
