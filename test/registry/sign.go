package registry

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// PushRandom pushes a small random image as host/repo:tag and returns its
// digest reference.
func (r *Registry) PushRandom(ctx context.Context, repo, tag string) (name.Digest, error) {
	img, err := random.Image(512, 1)
	if err != nil {
		return name.Digest{}, fmt.Errorf("making an image: %w", err)
	}
	t, err := name.NewTag(r.host+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		return name.Digest{}, err
	}
	if err := remote.Write(t, img, remote.WithContext(ctx)); err != nil {
		return name.Digest{}, fmt.Errorf("pushing %s: %w", t, err)
	}
	d, err := img.Digest()
	if err != nil {
		return name.Digest{}, err
	}
	return t.Context().Digest(d.String()), nil
}

// Sign signs an image digest the way `cosign sign --key` does: a
// simple-signing payload naming the digest, signed with signer, stored
// beside the image under the sha256-<digest>.sig tag.
func Sign(ctx context.Context, d name.Digest, signer signature.Signer) error {
	body, err := (&payload.Cosign{Image: d}).MarshalJSON()
	if err != nil {
		return err
	}
	sig, err := signer.SignMessage(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("signing %s: %w", d, err)
	}
	ociSig, err := static.NewSignature(body, base64.StdEncoding.EncodeToString(sig))
	if err != nil {
		return err
	}
	ropts := ociremote.WithRemoteOptions(remote.WithContext(ctx))
	se, err := ociremote.SignedEntity(d, ropts)
	if err != nil {
		return fmt.Errorf("reading %s: %w", d, err)
	}
	if se, err = mutate.AttachSignatureToEntity(se, ociSig); err != nil {
		return err
	}
	if err := ociremote.WriteSignatures(d.Repository, se, ropts); err != nil {
		return fmt.Errorf("writing the signature of %s: %w", d, err)
	}
	return nil
}

// NewKey generates an ECDSA P-256 signing key, as `cosign generate-key-pair`
// does, and returns it with its PEM public key.
func NewKey() (*signature.ECDSASignerVerifier, []byte, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	sv, err := signature.LoadECDSASignerVerifier(priv, crypto.SHA256)
	if err != nil {
		return nil, nil, err
	}
	pem, err := cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		return nil, nil, err
	}
	return sv, pem, nil
}
