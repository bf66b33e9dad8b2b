package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/tollgate-dev/tollgate/policies"
)

// BenchmarkValidateReview: one AdmissionReview of a compliant Deployment
// through the validating handler (decode, namespace, engine, response), as
// tollgate serve answers it minus TLS. make bench's load test measures the
// rest.
func BenchmarkValidateReview(b *testing.B) {
	benchReview(b, "validate")
}

// BenchmarkMutateReview: the same through the mutating handler.
func BenchmarkMutateReview(b *testing.B) {
	benchReview(b, "mutate")
}

const benchDeployment = `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web-%d","namespace":"shop",
 "labels":{"team":"payments","owner":"alice","cost-center":"CC-1234","app":"web"}},
 "spec":{"replicas":3,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web","team":"payments","owner":"alice","cost-center":"CC-1234"}},
 "spec":{"securityContext":{"runAsNonRoot":true,"seccompProfile":{"type":"RuntimeDefault"}},
  "initContainers":[{"name":"migrate","image":"ghcr.io/corp/web-migrate:1.4.2","securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}},"resources":{"requests":{"cpu":"100m","memory":"128Mi"},"limits":{"memory":"256Mi"}}}],
  "containers":[
   {"name":"web","image":"ghcr.io/corp/web:1.4.2","ports":[{"containerPort":8080}],"securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}},"resources":{"requests":{"cpu":"500m","memory":"512Mi"},"limits":{"memory":"1Gi"}}},
   {"name":"envoy","image":"ghcr.io/corp/envoy:1.30.1","securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}},"resources":{"requests":{"cpu":"100m","memory":"128Mi"},"limits":{"memory":"256Mi"}}},
   {"name":"logs","image":"ghcr.io/corp/fluent-bit:3.1.0","securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}},"resources":{"requests":{"cpu":"50m","memory":"64Mi"},"limits":{"memory":"128Mi"}}}]}}}}`

func benchReview(b *testing.B, webhook string) {
	f := newFixture(b, nil, nil)
	h := f.validate
	if webhook == "mutate" {
		h = f.mutate
	}
	f.reviewer.opts.DecisionLog = nil
	bodies := make([][]byte, 64)
	for i := range bodies {
		bodies[i] = review(b, "CREATE", "Deployment", "shop", fmt.Sprintf("web-%d", i), fmt.Sprintf(benchDeployment, i), "")
	}
	if rec := post(h, bodies[0], "application/json"); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"allowed":true`) {
		b.Fatalf("HTTP %d %s", rec.Code, rec.Body)
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/"+webhook, bytes.NewReader(bodies[i%len(bodies)]))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(rec, req)
		i++
	}
}

// BenchmarkValidatePodReview: a Pod as kube-apiserver sends it when a
// ReplicaSet creates one (defaulted fields, the projected service-account
// token volume, default tolerations, managedFields; testdata/pod-create.json)
// through the validating handler, JSON in and JSON out.
func BenchmarkValidatePodReview(b *testing.B) {
	benchFixture(b, "validate", "testdata/pod-create.json")
}

// BenchmarkMutatePodReview: the same Pod through the mutating handler.
func BenchmarkMutatePodReview(b *testing.B) {
	benchFixture(b, "mutate", "testdata/pod-create.json")
}

func benchFixture(b *testing.B, webhook, path string) {
	body, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	f := newFixture(b, nil, nil)
	h := f.validate
	if webhook == "mutate" {
		h = f.mutate
	}
	f.reviewer.opts.DecisionLog = nil
	f.reviewer.opts.ProfileEvery = 64 // as tollgate serve samples
	if rec := post(h, body, "application/json"); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"allowed":true`) || strings.Contains(rec.Body.String(), "warnings") {
		b.Fatalf("HTTP %d %s", rec.Code, rec.Body)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/"+webhook, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(rec, req)
	}
}

// BenchmarkDecodePodReview compares, on the Pod fixture, the decoding a
// request took before (the request with its objects as raw bytes, then
// each object decoded again into JSON values) with decodeReview.
func BenchmarkDecodePodReview(b *testing.B) {
	body, err := os.ReadFile("testdata/pod-create.json")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("raw-then-values", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var ar struct {
				Request *admissionv1.AdmissionRequest `json:"request"`
			}
			if err := json.Unmarshal(body, &ar); err != nil {
				b.Fatal(err)
			}
			if _, err := policies.AdmissionInput(ar.Request, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, skip := range []bool{false, true} {
		name := "once"
		if skip {
			name = "once-without-managed-fields"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				_, req, err := decodeReview(body, skip)
				if err != nil {
					b.Fatal(err)
				}
				_ = admissionInput(req, nil)
			}
		})
	}
}
