package registry

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	ggcrtypes "github.com/google/go-containerregistry/pkg/v1/types"
	cbundle "github.com/sigstore/cosign/v2/pkg/cosign/bundle"
	"github.com/sigstore/cosign/v2/pkg/oci"
	"github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	cosignstatic "github.com/sigstore/cosign/v2/pkg/oci/static"
	ctypes "github.com/sigstore/cosign/v2/pkg/types"
	"github.com/sigstore/rekor/pkg/types"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
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
	opts := []remote.Option{remote.WithContext(ctx)}
	if r.auth != nil {
		opts = append(opts, remote.WithAuth(r.auth))
	}
	if err := remote.Write(t, img, opts...); err != nil {
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
	return SignWith(ctx, d, SignOptions{Key: signer})
}

// SignOptions say who signs and what proof of time comes with the
// signature, so one helper makes key, keyless and logged signatures.
type SignOptions struct {
	// Key signs, as `cosign sign --key` does. Set Key or Cert.
	Key signature.Signer
	// Cert signs keylessly: its key signs and the certificate and its
	// chain go in the signature's annotations, as `cosign sign` does
	// with a Fulcio certificate.
	Cert *Cert
	// Rekor, when set, enters the signature in the log and attaches the
	// offline bundle, integrated at IntegratedTime (default now).
	Rekor          *Rekor
	IntegratedTime time.Time
	// Auth writes to a registry that requires it (Registry.Auth).
	Auth authn.Authenticator
}

func (o SignOptions) remote(ctx context.Context) []remote.Option {
	opts := []remote.Option{remote.WithContext(ctx)}
	if o.Auth != nil {
		opts = append(opts, remote.WithAuth(o.Auth))
	}
	return opts
}

func (o SignOptions) signer() (signature.Signer, error) {
	switch {
	case (o.Key == nil) == (o.Cert == nil):
		return nil, errors.New("set Key or Cert")
	case o.Key != nil:
		return o.Key, nil
	default:
		return o.Cert.Signer, nil
	}
}

// publicPEM is what Rekor records as the signer: the certificate, or the
// public key.
func (o SignOptions) publicPEM() ([]byte, error) {
	if o.Cert != nil {
		return o.Cert.PEM, nil
	}
	pub, err := o.Key.PublicKey()
	if err != nil {
		return nil, err
	}
	return cryptoutils.MarshalPublicKeyToPEM(pub)
}

// layerOptions are the annotations of the signature layer: certificate,
// chain and Rekor bundle.
func (o SignOptions) layerOptions(b *cbundle.RekorBundle) []cosignstatic.Option {
	var opts []cosignstatic.Option
	if o.Cert != nil {
		opts = append(opts, cosignstatic.WithCertChain(o.Cert.PEM, o.Cert.ChainPEM))
	}
	if b != nil {
		opts = append(opts, cosignstatic.WithBundle(b))
	}
	return opts
}

func (o SignOptions) integrated() time.Time {
	if o.IntegratedTime.IsZero() {
		return time.Now()
	}
	return o.IntegratedTime
}

// SignWith signs an image digest as `cosign sign` does, with a key or a
// certificate from the test CA, optionally logged in a test Rekor.
func SignWith(ctx context.Context, d name.Digest, o SignOptions) error {
	signer, err := o.signer()
	if err != nil {
		return err
	}
	body, err := (&payload.Cosign{Image: d}).MarshalJSON()
	if err != nil {
		return err
	}
	sig, err := signer.SignMessage(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("signing %s: %w", d, err)
	}
	var b *cbundle.RekorBundle
	if o.Rekor != nil {
		pub, err := o.publicPEM()
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		b, err = o.Rekor.bundle(ctx, "hashedrekord", types.ArtifactProperties{
			PKIFormat:      "x509",
			ArtifactHash:   "sha256:" + hex.EncodeToString(sum[:]),
			SignatureBytes: sig,
			PublicKeyBytes: [][]byte{pub},
		}, o.integrated())
		if err != nil {
			return err
		}
	}
	ociSig, err := cosignstatic.NewSignature(body, base64.StdEncoding.EncodeToString(sig), o.layerOptions(b)...)
	if err != nil {
		return err
	}
	return attach(ctx, d, ociSig, false, o)
}

// Attest attaches an in-toto attestation to an image digest as `cosign
// attest` does: a statement whose subject is the digest, with the
// predicate (JSON) of predicateType, in a DSSE envelope signed as o says,
// stored under the sha256-<digest>.att tag.
func Attest(ctx context.Context, d name.Digest, predicateType string, predicate []byte, o SignOptions) error {
	signer, err := o.signer()
	if err != nil {
		return err
	}
	statement, err := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v0.1",
		"predicateType": predicateType,
		"subject": []map[string]any{{
			"name":   d.Context().Name(),
			"digest": map[string]string{"sha256": strings.TrimPrefix(d.DigestStr(), "sha256:")},
		}},
		"predicate": json.RawMessage(predicate),
	})
	if err != nil {
		return fmt.Errorf("attestation statement: %w", err)
	}
	envelope, err := dsse.WrapSigner(signer, ctypes.IntotoPayloadType).SignMessage(bytes.NewReader(statement))
	if err != nil {
		return fmt.Errorf("signing the attestation of %s: %w", d, err)
	}
	var b *cbundle.RekorBundle
	if o.Rekor != nil {
		pub, err := o.publicPEM()
		if err != nil {
			return err
		}
		b, err = o.Rekor.bundle(ctx, "dsse", types.ArtifactProperties{
			ArtifactBytes:  envelope,
			PublicKeyBytes: [][]byte{pub},
		}, o.integrated())
		if err != nil {
			return err
		}
	}
	opts := append(o.layerOptions(b), cosignstatic.WithLayerMediaType(ctypes.DssePayloadType))
	att, err := cosignstatic.NewAttestation(envelope, opts...)
	if err != nil {
		return err
	}
	return attach(ctx, d, att, true, o)
}

func attach(ctx context.Context, d name.Digest, sig oci.Signature, attestation bool, o SignOptions) error {
	ropts := ociremote.WithRemoteOptions(o.remote(ctx)...)
	se, err := ociremote.SignedEntity(d, ropts)
	if err != nil {
		return fmt.Errorf("reading %s: %w", d, err)
	}
	if attestation {
		if se, err = mutate.AttachAttestationToEntity(se, sig); err != nil {
			return err
		}
		if err := ociremote.WriteAttestations(d.Repository, se, ropts); err != nil {
			return fmt.Errorf("writing the attestation of %s: %w", d, err)
		}
		return nil
	}
	if se, err = mutate.AttachSignatureToEntity(se, sig); err != nil {
		return err
	}
	if err := ociremote.WriteSignatures(d.Repository, se, ropts); err != nil {
		return fmt.Errorf("writing the signature of %s: %w", d, err)
	}
	return nil
}

// PushSignatureLayers writes a signature manifest for d with n layers
// (one signature blob listed n times, each with a signature annotation),
// as an attacker who can push to the repository could, to show that a
// verifier reads only so many.
func PushSignatureLayers(ctx context.Context, d name.Digest, n int) error {
	ropts := []remote.Option{remote.WithContext(ctx)}
	body, err := (&payload.Cosign{Image: d}).MarshalJSON()
	if err != nil {
		return err
	}
	layer := static.NewLayer(body, ggcrtypes.MediaType(ctypes.SimpleSigningMediaType))
	config := static.NewLayer([]byte("{}"), ggcrtypes.OCIConfigJSON)
	for _, l := range []v1.Layer{layer, config} {
		if err := remote.WriteLayer(d.Repository, l, ropts...); err != nil {
			return fmt.Errorf("pushing a blob: %w", err)
		}
	}
	desc := func(l v1.Layer, mt ggcrtypes.MediaType) (v1.Descriptor, error) {
		dg, err := l.Digest()
		if err != nil {
			return v1.Descriptor{}, err
		}
		size, err := l.Size()
		return v1.Descriptor{MediaType: mt, Digest: dg, Size: size}, err
	}
	cfg, err := desc(config, ggcrtypes.OCIConfigJSON)
	if err != nil {
		return err
	}
	sigLayer, err := desc(layer, ggcrtypes.MediaType(ctypes.SimpleSigningMediaType))
	if err != nil {
		return err
	}
	sigLayer.Annotations = map[string]string{"dev.cosignproject.cosign/signature": base64.StdEncoding.EncodeToString([]byte("not a signature"))}
	m := v1.Manifest{SchemaVersion: 2, MediaType: ggcrtypes.OCIManifestSchema1, Config: cfg}
	for range n {
		m.Layers = append(m.Layers, sigLayer)
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tag, err := ociremote.SignatureTag(d)
	if err != nil {
		return err
	}
	if err := remote.Put(tag, rawManifest{raw, ggcrtypes.OCIManifestSchema1}, ropts...); err != nil {
		return fmt.Errorf("pushing a %d-layer signature manifest: %w", n, err)
	}
	return nil
}

type rawManifest struct {
	raw []byte
	mt  ggcrtypes.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)            { return m.raw, nil }
func (m rawManifest) MediaType() (ggcrtypes.MediaType, error) { return m.mt, nil }

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

// Signed is a registry holding one image signed by a fresh key and one
// left unsigned: what most image-policy tests, and the demo, start from.
type Signed struct {
	*Registry
	// Key signed Image; KeyPEM is its public key for a policy.
	Key    *signature.ECDSASignerVerifier
	KeyPEM []byte
	// Image is the signed image's digest; Unsigned is the other one's.
	Image, Unsigned name.Digest
}

// StartSigned starts a registry and pushes signedRepo:1.0, signed by a new
// key, and unsignedRepo:1.0. On failure nothing is left running.
func StartSigned(ctx context.Context, signedRepo, unsignedRepo string) (_ *Signed, err error) {
	reg, err := Start(ctx, Options{})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = reg.Stop()
		}
	}()
	s := &Signed{Registry: reg}
	if s.Key, s.KeyPEM, err = NewKey(); err != nil {
		return nil, err
	}
	if s.Image, err = reg.PushRandom(ctx, signedRepo, "1.0"); err != nil {
		return nil, err
	}
	if err = Sign(ctx, s.Image, s.Key); err != nil {
		return nil, err
	}
	if s.Unsigned, err = reg.PushRandom(ctx, unsignedRepo, "1.0"); err != nil {
		return nil, err
	}
	return s, nil
}
