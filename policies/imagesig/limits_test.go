package imagesig_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/policies/imagesig"
	"github.com/tollgate-dev/tollgate/test/registry"
)

// recorder records the registry requests of a verification.
type recorder struct {
	mu   sync.Mutex
	reqs []string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req.Method+" "+req.URL.Path)
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

// blobReads counts the blobs fetched (signature and attestation
// payloads), as opposed to manifests.
func (r *recorder) blobReads() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, q := range r.reqs {
		if strings.HasPrefix(q, "GET ") && strings.Contains(q, "/blobs/") {
			out = append(out, q)
		}
	}
	return out
}

// TestSignatureLayerCap: a signature manifest of 5,000 layers (anyone who
// can push to the repository can write one) fails at once with the cap as
// the reason; not one of its layers is read. The cap is an option.
func TestSignatureLayerCap(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	flooded := f.push(t, "team/flooded", "1.0")
	if err := registry.PushSignatureLayers(ctx, flooded, 5000); err != nil {
		t.Fatal(err)
	}
	p := f.policy(t, "", "", "")
	rec := &recorder{}
	v := imagesig.NewVerifier(imagesig.Options{Insecure: true, Transport: rec})
	res, err := v.Verify(ctx, p, flooded.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := flooded.String() + " cannot be verified: the signature manifest has 5000 layers; at most 100 are read"
	if res.Verified || res.Action != imagesig.ActionDeny || res.Reason != want {
		t.Fatalf("verified %v action %s reason %q, want %q", res.Verified, res.Action, res.Reason, want)
	}
	if blobs := rec.blobReads(); len(blobs) > 0 {
		t.Errorf("%d blobs read past the cap: %v", len(blobs), blobs[:min(len(blobs), 3)])
	}

	// Three genuine signatures: over a cap of two, within a cap of three.
	thrice := f.push(t, "team/thrice", "1.0", f.release, f.second, newKey(t))
	for _, tc := range []struct {
		max      int
		verified bool
	}{{2, false}, {3, true}} {
		v := imagesig.NewVerifier(imagesig.Options{Insecure: true, MaxSignatures: tc.max})
		res, err := v.Verify(ctx, p, thrice.String(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Verified != tc.verified {
			t.Errorf("MaxSignatures %d: verified %v (%s)", tc.max, res.Verified, res.Reason)
		}
		if !tc.verified && !strings.Contains(res.Reason, "the signature manifest has 3 layers; at most 2 are read") {
			t.Errorf("MaxSignatures %d: reason %q", tc.max, res.Reason)
		}
	}
}

// TestPayloadCap: an attestation whose payload is over the cap fails with
// the cap as the reason, before the payload is read; a signature payload
// over a lower cap likewise.
func TestPayloadCap(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	d := f.push(t, "team/app", "1.0", f.release)
	padding := strings.Repeat("x", 3<<19) // a 1.5 MiB predicate
	attest(t, d, registry.SignOptions{Key: f.release.sv}, vulnType, fmt.Sprintf(`{"padding": %q}`, padding))
	p := f.rulePolicy(t, v1alpha1.Authority{Name: "release", Key: &v1alpha1.KeyAuthority{Data: f.release.pem},
		Attestations: []v1alpha1.Attestation{{Name: "vulnerabilities", PredicateType: vulnType}}})

	rec := &recorder{}
	v := imagesig.NewVerifier(imagesig.Options{Insecure: true, Transport: rec, Timeout: 5 * time.Second})
	res, err := v.Verify(ctx, p, d.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verified || !strings.Contains(res.Reason, "release: attestation vulnerabilities: the attestation manifest's layer 1 is ") ||
		!strings.Contains(res.Reason, " bytes; at most 1048576 are read") {
		t.Fatalf("verified %v, reason %q", res.Verified, res.Reason)
	}
	// Only the signature's payload was read.
	if blobs := rec.blobReads(); len(blobs) != 1 {
		t.Errorf("blobs read: %v, want the signature's only", blobs)
	}

	small := imagesig.NewVerifier(imagesig.Options{Insecure: true, MaxPayloadBytes: 100})
	res, err = small.Verify(ctx, f.policy(t, "", "", ""), d.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verified || !strings.Contains(res.Reason, "the signature manifest's layer 1 is") || !strings.Contains(res.Reason, "at most 100 are read") {
		t.Fatalf("verified %v, reason %q", res.Verified, res.Reason)
	}
}
