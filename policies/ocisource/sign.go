package ocisource

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	cosignstatic "github.com/sigstore/cosign/v2/pkg/oci/static"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// Caps on the signatures stored beside a policy set (the sha256-….sig
// manifest): read before anything else, they are bounded too.
const (
	maxSignatures     = 32
	maxSignatureBytes = 64 << 10
)

// LoadPrivateKey reads a cosign private key (cosign.key, as `cosign
// generate-key-pair` writes it), decrypting it with password.
func LoadPrivateKey(pem, password []byte) (signature.SignerVerifier, error) {
	sv, err := cosign.LoadPrivateKey(pem, password, nil)
	if err != nil {
		return nil, fmt.Errorf("loading the cosign key: %w", err)
	}
	return sv, nil
}

// Sign signs the policy set at d as `cosign sign --key` signs an image: a
// simple-signing payload naming the digest, signed with signer and stored
// beside it under the sha256-<digest>.sig tag.
func (r Registry) Sign(ctx context.Context, d name.Digest, signer signature.Signer) error {
	body, err := (&payload.Cosign{Image: d}).MarshalJSON()
	if err != nil {
		return err
	}
	raw, err := signer.SignMessage(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("signing %s: %w", d, err)
	}
	sig, err := cosignstatic.NewSignature(body, base64.StdEncoding.EncodeToString(raw))
	if err != nil {
		return err
	}
	ropts := ociremote.WithRemoteOptions(r.remote(ctx)...)
	se, err := ociremote.SignedEntity(d, ropts)
	if err != nil {
		return fmt.Errorf("reading %s: %w", d, err)
	}
	if se, err = mutate.AttachSignatureToEntity(se, sig); err != nil {
		return err
	}
	if err := ociremote.WriteSignatures(d.Repository, se, ropts); err != nil {
		return fmt.Errorf("writing the signature of %s: %w", d, err)
	}
	return nil
}

// Trust is the trust policy of a policy source: the public keys one of
// which must have signed a set before anything in it is read.
type Trust struct {
	verifiers []signature.Verifier
}

// NewTrust reads PEM public keys (cosign.pub). Each entry may name its
// source for errors.
func NewTrust(keys map[string][]byte) (*Trust, error) {
	if len(keys) == 0 {
		return nil, errors.New("no public key: a policy set is verified before it is loaded (--policy-source-key cosign.pub)")
	}
	t := &Trust{}
	var problems []error
	for src, pem := range keys {
		pub, err := cryptoutils.UnmarshalPEMToPublicKey(pem)
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: not a PEM public key: %w", src, err))
			continue
		}
		v, err := signature.LoadVerifier(pub, crypto.SHA256)
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: not a PEM public key: %w", src, err))
			continue
		}
		t.verifiers = append(t.verifiers, v)
	}
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	return t, nil
}

// SignatureError says a policy set is unsigned or not signed by a trusted
// key: it is refused, and retried on the next poll (a signature may come
// after the push).
type SignatureError struct{ msg string }

func (e *SignatureError) Error() string { return e.msg }

// Verify checks that one of the trusted keys signed d. Nothing of the
// artifact itself is read: only the signatures stored beside it, whose
// manifest is checked for count and sizes before any is read.
func (r Registry) Verify(ctx context.Context, d name.Digest, t *Trust) error {
	o := ociremote.WithRemoteOptions(r.remote(ctx)...)
	tag, err := ociremote.SignatureTag(d, o)
	if err != nil {
		return err
	}
	list, err := ociremote.Signatures(tag, o)
	if err != nil {
		var te *transport.Error
		if errors.As(err, &te) && te.StatusCode == 404 {
			return &SignatureError{fmt.Sprintf("%s is not signed: no signature found", d.DigestStr())}
		}
		return fmt.Errorf("reading the signatures of %s: %w", d.DigestStr(), err)
	}
	m, err := list.Manifest()
	if err != nil {
		return fmt.Errorf("reading the signatures of %s: %w", d.DigestStr(), err)
	}
	if n := len(m.Layers); n > maxSignatures {
		return &SignatureError{fmt.Sprintf("%s: the signature manifest has %d layers; at most %d are read", d.DigestStr(), n, maxSignatures)}
	}
	for i, l := range m.Layers {
		if len(l.URLs) > 0 || l.Size < 0 || l.Size > maxSignatureBytes {
			return &SignatureError{fmt.Sprintf("%s: signature %d is %d bytes or fetched elsewhere; refused", d.DigestStr(), i+1, l.Size)}
		}
	}
	got, err := list.Get()
	if err != nil {
		return fmt.Errorf("reading the signatures of %s: %w", d.DigestStr(), err)
	}
	if len(got) == 0 {
		return &SignatureError{fmt.Sprintf("%s is not signed: no signature found", d.DigestStr())}
	}
	h, err := v1.NewHash(d.DigestStr())
	if err != nil {
		return err
	}
	for _, sig := range got {
		for _, v := range t.verifiers {
			co := &cosign.CheckOpts{SigVerifier: v, IgnoreTlog: true, IgnoreSCT: true, ClaimVerifier: cosign.SimpleClaimVerifier}
			if _, err := cosign.VerifyImageSignature(ctx, sig, h, co); err == nil {
				return nil
			}
		}
	}
	return &SignatureError{fmt.Sprintf("%s: %d signature(s), none by a trusted key", d.DigestStr(), len(got))}
}
