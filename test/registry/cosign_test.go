package registry

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/sigstore/pkg/signature"
)

// TestCosignKeySignaturesOnTheRealRegistry signs an image in the registry
// with the cosign library, the way `cosign sign --key` does (a simple-signing
// payload naming the digest, stored under the sha256-<digest>.sig tag), and
// verifies it: the right key passes, another key and an unsigned image fail.
func TestCosignKeySignaturesOnTheRealRegistry(t *testing.T) {
	ctx := context.Background()
	r, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()

	push := func(repo string) name.Digest {
		d, err := r.PushRandom(ctx, repo, "1.0")
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	newKey := func() *signature.ECDSASignerVerifier {
		sv, _, err := NewKey()
		if err != nil {
			t.Fatal(err)
		}
		return sv
	}
	sign := func(d name.Digest, sv *signature.ECDSASignerVerifier) {
		if err := Sign(ctx, d, sv); err != nil {
			t.Fatal(err)
		}
	}
	verify := func(d name.Digest, sv *signature.ECDSASignerVerifier) error {
		_, _, err := cosign.VerifyImageSignatures(ctx, d, &cosign.CheckOpts{
			SigVerifier:   sv,
			IgnoreTlog:    true, // key-based and offline: no transparency log
			IgnoreSCT:     true,
			ClaimVerifier: cosign.SimpleClaimVerifier,
		})
		return err
	}

	right, other := newKey(), newKey()
	signed := push("team/signed")
	sign(signed, right)
	if err := verify(signed, right); err != nil {
		t.Fatalf("signed by the right key: %v", err)
	}
	if err := verify(signed, other); err == nil {
		t.Fatal("a signature by another key was accepted")
	}
	unsigned := push("team/unsigned")
	if err := verify(unsigned, right); err == nil || !strings.Contains(err.Error(), "no signatures found") {
		t.Fatalf("unsigned image: %v", err)
	}
}
