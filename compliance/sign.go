package compliance

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"

	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
)

// Sign signs data as `cosign sign-blob --key` does with a cosign private
// key (the encrypted PEM `cosign generate-key-pair` writes, and password
// its password, COSIGN_PASSWORD): the key signs the SHA-256 digest of the
// bytes (ECDSA P-256 for cosign's own keys) and the signature is returned
// base64-encoded, the content of the .sig file cosign writes.
//
// `cosign verify-blob --key cosign.pub --signature report.sig
// --insecure-ignore-tlog=true report.html` accepts it; the flag is needed
// because the signature is not uploaded to a transparency log, as a report
// signed inside a private network cannot be. [Verify] checks it the same
// way.
func Sign(privateKeyPEM, password, data []byte) ([]byte, error) {
	sv, err := cosign.LoadPrivateKey(privateKeyPEM, password, nil)
	if err != nil {
		return nil, fmt.Errorf("loading the cosign private key: %w", err)
	}
	sig, err := sv.SignMessage(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	return []byte(base64.StdEncoding.EncodeToString(sig)), nil
}

// ErrBadSignature is returned by Verify when the signature does not match
// the data and key: the report was edited, or signed with another key.
var ErrBadSignature = errors.New("the signature does not match the report and key")

// Verify checks a signature made by Sign (or `cosign sign-blob`) over the
// bytes read from data, with the PEM public key (cosign.pub). sig may be
// base64 (as cosign writes it) or raw. A mismatch is ErrBadSignature; a
// malformed key is another error.
func Verify(publicKeyPEM []byte, data io.Reader, sig []byte) error {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(publicKeyPEM)
	if err != nil {
		return fmt.Errorf("loading the public key: %w", err)
	}
	// The verifier Sign's key implies: SHA-256 for ECDSA and RSA, and
	// Ed25519ph for Ed25519, as cosign.LoadPrivateKey signs.
	v, err := signature.LoadDefaultVerifier(pub, options.WithED25519ph())
	if err != nil {
		return fmt.Errorf("loading the public key: %w", err)
	}
	raw := bytes.TrimSpace(sig)
	if dec, err := base64.StdEncoding.DecodeString(string(raw)); err == nil {
		raw = dec
	}
	if len(raw) == 0 {
		return fmt.Errorf("%w: the signature is empty", ErrBadSignature)
	}
	if err := v.VerifySignature(bytes.NewReader(raw), data); err != nil {
		return fmt.Errorf("%w (%w)", ErrBadSignature, err)
	}
	return nil
}
