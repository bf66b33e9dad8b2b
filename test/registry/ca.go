package registry

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cyberphone/json-canonicalization/go/src/webpki.org/jsoncanonicalizer"
	cbundle "github.com/sigstore/cosign/v2/pkg/cosign/bundle"
	"github.com/sigstore/rekor/pkg/types"
	_ "github.com/sigstore/rekor/pkg/types/dsse/v0.0.1"         // registers the dsse kind, for attestation entries
	_ "github.com/sigstore/rekor/pkg/types/hashedrekord/v0.0.1" // registers the hashedrekord kind, for signature entries
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// Fulcio's certificate extensions carrying the OIDC issuer that
// authenticated the signer: 57264.1.1 holds the raw string (read by
// cosign), 57264.1.8 the same as a DER UTF8String (read by sigstore-go).
var (
	oidIssuerV1 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}
	oidIssuerV2 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}
)

// CertValidity is how long a certificate from the CA is valid: ten
// minutes, as Fulcio issues them.
const CertValidity = 10 * time.Minute

// CA stands in for Fulcio: a root and, optionally, an intermediate that
// issue short-lived code-signing certificates naming the signer's OIDC
// issuer and identity. Keyless tests trust its root as a Fulcio root.
type CA struct {
	Root         *x509.Certificate
	Intermediate *x509.Certificate // nil when the root issues directly

	issuer    *x509.Certificate
	issuerKey *ecdsa.PrivateKey
}

// NewCA makes a CA whose root is valid from two days ago for a year,
// so certificates issued in the past chain to it too. With intermediate,
// certificates are issued by an intermediate under the root.
func NewCA(intermediate bool) (*CA, error) {
	start := time.Now().Add(-48 * time.Hour).Truncate(time.Second)
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	rootTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tollgate test fulcio root", Organization: []string{"tollgate test"}},
		NotBefore:             start,
		NotAfter:              start.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
	}
	rootCert, err := createCert(rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		return nil, fmt.Errorf("making the root: %w", err)
	}
	ca := &CA{Root: rootCert, issuer: rootCert, issuerKey: rootKey}
	if !intermediate {
		return ca, nil
	}
	intKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	intTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(2),
		Subject:               pkix.Name{CommonName: "tollgate test fulcio intermediate", Organization: []string{"tollgate test"}},
		NotBefore:             start,
		NotAfter:              start.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	if ca.Intermediate, err = createCert(intTmpl, rootCert, &intKey.PublicKey, rootKey); err != nil {
		return nil, fmt.Errorf("making the intermediate: %w", err)
	}
	ca.issuer, ca.issuerKey = ca.Intermediate, intKey
	return ca, nil
}

// RootPEM is the root certificate, for a policy's keyless roots.
func (ca *CA) RootPEM() []byte { return pemCerts(ca.Root) }

// IntermediatePEM is the intermediate certificate (nil without one), for
// a policy's keyless intermediates.
func (ca *CA) IntermediatePEM() []byte {
	if ca.Intermediate == nil {
		return nil
	}
	return pemCerts(ca.Intermediate)
}

// Identity is who a certificate says signed: the OIDC issuer that
// authenticated the signer and the signer's identity, an email address or
// a URI (a CI workflow).
type Identity struct {
	Issuer, Subject string
}

// Cert is what keyless signing gets from Fulcio for one signature: an
// ephemeral key and a certificate binding it to an identity.
type Cert struct {
	Signer *signature.ECDSASignerVerifier
	Cert   *x509.Certificate
	// PEM is the certificate; ChainPEM its issuers, up to the root, as
	// cosign stores them beside a signature.
	PEM, ChainPEM []byte
}

// Issue issues a code-signing certificate for id, valid from notBefore for
// CertValidity. A notBefore an hour ago gives an expired certificate.
func (ca *CA) Issue(id Identity, notBefore time.Time) (*Cert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	issuerV2, err := asn1.MarshalWithParams(id.Issuer, "utf8")
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		NotBefore:    notBefore.Truncate(time.Second),
		NotAfter:     notBefore.Truncate(time.Second).Add(CertValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: []pkix.Extension{
			{Id: oidIssuerV1, Value: []byte(id.Issuer)},
			{Id: oidIssuerV2, Value: issuerV2},
		},
	}
	if strings.Contains(id.Subject, "://") {
		u, err := url.Parse(id.Subject)
		if err != nil {
			return nil, fmt.Errorf("subject %q: %w", id.Subject, err)
		}
		tmpl.URIs = []*url.URL{u}
	} else {
		tmpl.EmailAddresses = []string{id.Subject}
	}
	cert, err := createCert(tmpl, ca.issuer, &key.PublicKey, ca.issuerKey)
	if err != nil {
		return nil, fmt.Errorf("issuing a certificate for %s: %w", id.Subject, err)
	}
	sv, err := signature.LoadECDSASignerVerifier(key, crypto.SHA256)
	if err != nil {
		return nil, err
	}
	chain := []*x509.Certificate{ca.Root}
	if ca.Intermediate != nil {
		chain = []*x509.Certificate{ca.Intermediate, ca.Root}
	}
	return &Cert{Signer: sv, Cert: cert, PEM: pemCerts(cert), ChainPEM: pemCerts(chain...)}, nil
}

func createCert(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, priv *ecdsa.PrivateKey) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func pemCerts(certs ...*x509.Certificate) []byte {
	b, err := cryptoutils.MarshalCertificatesToPEM(certs)
	if err != nil {
		panic(err) // marshalling a parsed certificate cannot fail
	}
	return b
}

// Rekor stands in for a Rekor transparency log, offline: its key signs
// the timestamps of entries (the SignedEntryTimestamp of an offline
// bundle), which verifiers check with its public key.
type Rekor struct {
	key   *ecdsa.PrivateKey
	logID string // hex SHA-256 of the public key, as Rekor names its log
	index atomic.Int64
}

// NewRekor makes a log with a fresh key.
func NewRekor() (*Rekor, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	return &Rekor{key: key, logID: hex.EncodeToString(sum[:])}, nil
}

// PublicKeyPEM is the log's public key, for a policy's rekor.publicKey.
func (r *Rekor) PublicKeyPEM() []byte {
	b, err := cryptoutils.MarshalPublicKeyToPEM(&r.key.PublicKey)
	if err != nil {
		panic(err) // an ECDSA P-256 key always marshals
	}
	return b
}

// bundle enters a proposed entry (kind and artifact as `cosign sign` or
// `cosign attest` would upload them) in the log at integrated and returns
// the offline bundle Rekor would answer with: the canonical entry, its
// time and index, signed with the log's key.
func (r *Rekor) bundle(ctx context.Context, kind string, props types.ArtifactProperties, integrated time.Time) (*cbundle.RekorBundle, error) {
	pe, err := types.NewProposedEntry(ctx, kind, "0.0.1", props)
	if err != nil {
		return nil, fmt.Errorf("rekor %s entry: %w", kind, err)
	}
	entry, err := types.CreateVersionedEntry(pe)
	if err != nil {
		return nil, fmt.Errorf("rekor %s entry: %w", kind, err)
	}
	body, err := types.CanonicalizeEntry(ctx, entry)
	if err != nil {
		return nil, fmt.Errorf("rekor %s entry: %w", kind, err)
	}
	payload := cbundle.RekorPayload{
		Body:           base64.StdEncoding.EncodeToString(body),
		IntegratedTime: integrated.Unix(),
		LogIndex:       r.index.Add(1),
		LogID:          r.logID,
	}
	raw, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	canonical, err := jsoncanonicalizer.Transform(raw)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(canonical)
	set, err := ecdsa.SignASN1(rand.Reader, r.key, sum[:])
	if err != nil {
		return nil, err
	}
	return &cbundle.RekorBundle{SignedEntryTimestamp: set, Payload: payload}, nil
}

// TrustedRootJSON writes a sigstore trusted root (the document a private
// sigstore deployment publishes in place of the public TUF root) trusting
// ca as its Fulcio and, when rekor is not nil, rekor as its transparency
// log.
func TrustedRootJSON(ca *CA, rekor *Rekor) ([]byte, error) {
	fulcio := &root.FulcioCertificateAuthority{
		Root:                ca.Root,
		ValidityPeriodStart: ca.Root.NotBefore,
		URI:                 "https://fulcio.tollgate.test",
	}
	if ca.Intermediate != nil {
		fulcio.Intermediates = []*x509.Certificate{ca.Intermediate}
	}
	tlogs := map[string]*root.TransparencyLog{}
	if rekor != nil {
		id, err := hex.DecodeString(rekor.logID)
		if err != nil {
			return nil, err
		}
		tlogs[rekor.logID] = &root.TransparencyLog{
			BaseURL:             "https://rekor.tollgate.test",
			ID:                  id,
			ValidityPeriodStart: ca.Root.NotBefore,
			HashFunc:            crypto.SHA256,
			PublicKey:           &rekor.key.PublicKey,
			SignatureHashFunc:   crypto.SHA256,
		}
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, []root.CertificateAuthority{fulcio}, nil, nil, tlogs)
	if err != nil {
		return nil, err
	}
	return tr.MarshalJSON()
}
