package registry

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/payload"
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
		img, err := random.Image(512, 1)
		if err != nil {
			t.Fatal(err)
		}
		tag, _ := name.NewTag(r.Host()+"/"+repo+":1.0", name.Insecure)
		if err := remote.Write(tag, img, remote.WithContext(ctx)); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		return tag.Context().Digest(d.String())
	}
	newKey := func() *signature.ECDSASignerVerifier {
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		sv, err := signature.LoadECDSASignerVerifier(priv, crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		return sv
	}
	sign := func(d name.Digest, sv *signature.ECDSASignerVerifier) {
		body, err := (&payload.Cosign{Image: d}).MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		sig, err := sv.SignMessage(strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		ociSig, err := static.NewSignature(body, base64.StdEncoding.EncodeToString(sig))
		if err != nil {
			t.Fatal(err)
		}
		se, err := ociremote.SignedEntity(d)
		if err != nil {
			t.Fatal(err)
		}
		se, err = mutate.AttachSignatureToEntity(se, ociSig)
		if err != nil {
			t.Fatal(err)
		}
		if err := ociremote.WriteSignatures(d.Repository, se); err != nil {
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
