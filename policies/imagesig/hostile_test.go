package imagesig_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/policies/imagesig"
)

// hostileRegistry is a registry on loopback that answers its token
// endpoint, and its manifests, with a body of size bytes (sent in chunks,
// with no Content-Length, so a reader cannot tell up front), or with a
// Content-Length of size when declared is set.
type hostileRegistry struct {
	srv      *httptest.Server
	size     int64
	declared bool
	anon     bool // no token needed: manifests are answered at once
	written  atomic.Int64
}

func newHostileRegistry(t testing.TB, size int64, declared, anon bool) *hostileRegistry {
	t.Helper()
	h := &hostileRegistry{size: size, declared: declared, anon: anon}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hostileRegistry) host() string { return strings.TrimPrefix(h.srv.URL, "http://") }

func (h *hostileRegistry) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/v2/" && !h.anon:
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="hostile"`, h.srv.URL))
		w.WriteHeader(http.StatusUnauthorized)
	case r.URL.Path == "/v2/":
		w.WriteHeader(http.StatusOK)
	case r.URL.Path == "/token" || strings.Contains(r.URL.Path, "/manifests/"):
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if strings.Contains(r.URL.Path, "/manifests/") {
			w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		} else {
			w.Header().Set("Content-Type", "application/json")
		}
		if h.declared {
			w.Header().Set("Content-Length", fmt.Sprint(h.size))
		}
		chunk := []byte(`{"token":"` + strings.Repeat("a", 64<<10))
		for sent := int64(0); sent < h.size; {
			n, err := w.Write(chunk[:min(int64(len(chunk)), h.size-sent)])
			h.written.Add(int64(n))
			sent += int64(n)
			if err != nil {
				return // the client went away
			}
		}
	default:
		http.NotFound(w, r)
	}
}

// countingTransport counts the body bytes Tollgate's transport let through
// from the network.
type countingTransport struct{ read atomic.Int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	resp.Body = &countingBody{ReadCloser: resp.Body, n: &c.read}
	return resp, nil
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// imagesig's caps: one answer of the registry API but a payload, and one
// answer of its token endpoint.
const (
	maxRegistryAnswer = 4 << 20
	maxTokenAnswer    = 64 << 10
)

func hostilePolicy(t testing.TB, host string) *imagesig.Policy {
	t.Helper()
	k := newKey(t)
	p, err := imagesig.Compile(context.Background(), v1alpha1.ImagePolicySpec{Images: []v1alpha1.ImageRule{{
		Glob: host + "/**", Authorities: []v1alpha1.Authority{{Name: "release", Key: &v1alpha1.KeyAuthority{Data: k.pem}}},
	}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestHostileRegistryAnswersAreBounded: a registry whose token endpoint,
// or whose manifest, answers with 512 MiB makes tag resolution and
// verification fail with an error naming the registry and the cap, after
// reading at most the cap. Memory is logged, not asserted: the bound is
// the bytes read.
func TestHostileRegistryAnswersAreBounded(t *testing.T) {
	const huge = 512 << 20
	digest := "@sha256:" + strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name     string
		declared bool
		anon     bool
		image    string
		verify   bool
		wantPath string
		cap      int64
	}{
		{"token answer, resolving a tag", false, false, "/team/app:1.0", false, "GET /token", maxTokenAnswer},
		{"token answer, declared length, resolving a tag", true, false, "/team/app:1.0", false, "GET /token", maxTokenAnswer},
		{"token answer, verifying", false, false, "/team/app" + digest, true, "GET /token", maxTokenAnswer},
		{"signature manifest, verifying", false, true, "/team/app" + digest, true, "/manifests/sha256-", maxRegistryAnswer},
		{"signature manifest, declared length, verifying", true, true, "/team/app" + digest, true, "/manifests/sha256-", maxRegistryAnswer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHostileRegistry(t, huge, tc.declared, tc.anon)
			counted := &countingTransport{}
			v := imagesig.NewVerifier(imagesig.Options{Insecure: true, Transport: counted, Timeout: 20 * time.Second})
			image := h.host() + tc.image
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			var err error
			if tc.verify {
				var res *imagesig.Result
				res, err = v.Verify(context.Background(), hostilePolicy(t, h.host()), image, nil)
				if err == nil && res != nil {
					if res.Verified {
						t.Fatal("verified")
					}
					err = fmt.Errorf("%s", res.Reason)
				}
			} else {
				_, err = v.Resolve(context.Background(), image, nil)
			}
			runtime.ReadMemStats(&after)
			want := fmt.Sprintf("registry %s: the answer to ", h.host())
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), tc.wantPath) ||
				!strings.Contains(err.Error(), fmt.Sprintf("is larger than %d bytes, the most Tollgate reads of one registry answer", tc.cap)) {
				t.Fatalf("error = %v\nwant it to name %s, %s and the cap", err, h.host(), tc.wantPath)
			}
			read := counted.read.Load()
			if read > tc.cap+64<<10 {
				t.Errorf("read %d bytes of the registry's answers; at most the cap (%d) and one chunk", read, tc.cap)
			}
			t.Logf("%v\nregistry sent %d MiB into the socket, Tollgate read %d KiB; heap allocated during the call: %d MiB",
				err, h.written.Load()>>20, read>>10, (after.TotalAlloc-before.TotalAlloc)>>20)
		})
	}
}

// BenchmarkHostileTokenAnswer measures what one resolution against a
// registry answering its token endpoint with 512 MiB costs: bytes read
// from the network and bytes allocated, per call.
func BenchmarkHostileTokenAnswer(b *testing.B) {
	h := newHostileRegistry(b, 512<<20, false, false)
	counted := &countingTransport{}
	v := imagesig.NewVerifier(imagesig.Options{Insecure: true, Transport: counted, Timeout: 20 * time.Second})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Resolve(context.Background(), h.host()+"/team/app:1.0", nil); err == nil {
			b.Fatal("resolved")
		}
	}
	b.ReportMetric(float64(counted.read.Load())/float64(b.N), "netbytes/op")
}
