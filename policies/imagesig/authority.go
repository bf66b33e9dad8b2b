package imagesig

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"hash"
	"regexp"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/cosign/v2/pkg/oci"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/tuf" //nolint:staticcheck // cosign v2's TrustedTransparencyLogPubKeys takes its StatusKind; deprecated in sigstore v1.10.9, the version Kyverno's engine requires

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
)

// authority is a compiled signer: the cosign checks its signatures must
// pass and the attestations it must have made.
type authority struct {
	name string
	// check holds the trust material and identities; each verification
	// copies it and sets the claim verifier for signatures or
	// attestations.
	check        cosign.CheckOpts
	keyless      *keyless // nil for a key
	attestations []attestation
}

// keyless is what explains a keyless failure: the identities and the
// trust material, checked again one at a time to say which failed.
type keyless struct {
	identities    []identity
	ignoreTlog    bool
	roots         *x509.CertPool
	intermediates *x509.CertPool
	trustedRoot   *root.TrustedRoot
}

type identity struct {
	issuer, subject matcher
}

// matcher is an exact value or an anchored regular expression.
type matcher struct {
	exact string
	re    *regexp.Regexp
}

func (m matcher) match(s string) bool {
	if m.re != nil {
		return m.re.MatchString(s)
	}
	return s == m.exact
}

// compiler reads what a policy names (inline or from Secrets) and keeps a
// digest of everything read, so the policy's identity changes when a
// Secret's content does.
type compiler struct {
	ctx      context.Context
	secrets  SecretReader
	material hash.Hash
	errs     []error
	caps     *ast.Capabilities // for attestation policies, made on first use
}

func (c *compiler) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

// read returns the document at (a key, roots, a trusted root), inline or
// from its Secret; false after reporting why not.
func (c *compiler) read(at, data string, ref *v1alpha1.SecretKeyRef) ([]byte, bool) {
	var b []byte
	switch {
	case data != "" && ref != nil:
		c.fail("%s: set data or secretRef, not both", at)
		return nil, false
	case ref != nil:
		if c.secrets == nil {
			c.fail("%s.secretRef: Secrets cannot be read here; give it inline as data", at)
			return nil, false
		}
		var err error
		if b, err = c.secrets(c.ctx, *ref); err != nil {
			c.fail("%s.secretRef: %w", at, err)
			return nil, false
		}
	case data == "":
		c.fail("%s: set data or secretRef", at)
		return nil, false
	default:
		b = []byte(data)
	}
	c.material.Write([]byte(at))
	c.material.Write(b)
	return b, true
}

func (c *compiler) source(at string, s *v1alpha1.DataSource) ([]byte, bool) {
	return c.read(at, s.Data, s.SecretRef)
}

// authority compiles one authority; false after reporting why not.
func (c *compiler) authority(at string, a v1alpha1.Authority) (authority, bool) {
	out := authority{name: a.Name}
	before := len(c.errs)
	if a.Name == "" {
		c.fail("%s.name: required", at)
	}
	switch {
	case a.Key != nil && a.Keyless != nil:
		c.fail("%s: set key or keyless, not both", at)
	case a.Key != nil:
		if v, ok := c.key(at+".key", a.Key); ok {
			out.check = cosign.CheckOpts{
				SigVerifier: v,
				IgnoreTlog:  true, // key authorities verify offline, with no log
				IgnoreSCT:   true,
			}
		}
	case a.Keyless != nil:
		out.keyless, out.check = c.keyless(at+".keyless", a.Keyless)
	default:
		c.fail("%s: set key or keyless", at)
	}
	names := map[string]bool{}
	for i, att := range a.Attestations {
		aat := fmt.Sprintf("%s.attestations[%d]", at, i)
		if names[att.Name] {
			c.fail("%s.name: %q is listed twice", aat, att.Name)
		}
		names[att.Name] = true
		if compiled, ok := c.attestation(aat, att); ok {
			out.attestations = append(out.attestations, compiled)
		}
	}
	return out, len(c.errs) == before
}

func (c *compiler) key(at string, k *v1alpha1.KeyAuthority) (signature.Verifier, bool) {
	pem, ok := c.read(at, k.Data, k.SecretRef)
	if !ok {
		return nil, false
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pem)
	if err != nil {
		c.fail("%s: not a PEM public key: %w", at, err)
		return nil, false
	}
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		c.fail("%s: %w", at, err)
		return nil, false
	}
	return v, true
}

func (c *compiler) keyless(at string, k *v1alpha1.KeylessAuthority) (*keyless, cosign.CheckOpts) {
	out := &keyless{ignoreTlog: k.IgnoreTlog}
	co := cosign.CheckOpts{
		IgnoreTlog: k.IgnoreTlog,
		// Fulcio embeds certificate-transparency proofs in its
		// certificates; Tollgate relies on the Rekor entry instead, so a
		// private CA without a CT log works.
		IgnoreSCT: true,
		// Never look an entry up online: the bundle in the signature is
		// the proof, verified with the log key the policy names.
		Offline: true,
	}
	if len(k.Identities) == 0 {
		c.fail("%s.identities: at least one is required", at)
	}
	for i, id := range k.Identities {
		iat := fmt.Sprintf("%s.identities[%d]", at, i)
		issuer, okIssuer := c.matcher(iat, "issuer", id.Issuer, id.IssuerRegExp)
		subject, okSubject := c.matcher(iat, "subject", id.Subject, id.SubjectRegExp)
		if !okIssuer || !okSubject {
			continue
		}
		out.identities = append(out.identities, identity{issuer: issuer, subject: subject})
		ci := cosign.Identity{Issuer: issuer.exact, Subject: subject.exact}
		if issuer.re != nil {
			ci.IssuerRegExp = issuer.re.String()
		}
		if subject.re != nil {
			ci.SubjectRegExp = subject.re.String()
		}
		co.Identities = append(co.Identities, ci)
	}

	switch {
	case k.Roots != nil && k.TrustedRoot != nil:
		c.fail("%s: set roots or trustedRoot, not both", at)
	case k.TrustedRoot != nil:
		if k.Intermediates != nil {
			c.fail("%s.intermediates: give intermediates in the trusted root", at)
		}
		if k.Rekor != nil {
			c.fail("%s.rekor: give the transparency log in the trusted root", at)
		}
		doc, ok := c.source(at+".trustedRoot", k.TrustedRoot)
		if !ok {
			break
		}
		tr, err := root.NewTrustedRootFromJSON(doc)
		if err != nil {
			c.fail("%s.trustedRoot: not a sigstore trusted root: %w", at, err)
			break
		}
		if len(tr.FulcioCertificateAuthorities()) == 0 {
			c.fail("%s.trustedRoot: names no certificate authority", at)
		}
		if !k.IgnoreTlog && len(tr.RekorLogs()) == 0 {
			c.fail("%s.trustedRoot: names no transparency log; add one, or set ignoreTlog", at)
		}
		out.trustedRoot, co.TrustedMaterial = tr, tr
	case k.Roots != nil:
		out.roots = c.certPool(at+".roots", k.Roots)
		if k.Intermediates != nil {
			out.intermediates = c.certPool(at+".intermediates", k.Intermediates)
		}
		co.RootCerts, co.IntermediateCerts = out.roots, out.intermediates
		switch {
		case k.IgnoreTlog && k.Rekor != nil:
			c.fail("%s.rekor: unused with ignoreTlog; remove one of them", at)
		case !k.IgnoreTlog && k.Rekor == nil:
			c.fail("%s.rekor: required with roots (signatures are checked against the transparency log), or set ignoreTlog", at)
		case k.Rekor != nil:
			co.RekorPubKeys = c.rekorKey(at+".rekor.publicKey", &k.Rekor.PublicKey)
		}
	default:
		c.fail("%s: set roots or trustedRoot", at)
	}
	return out, co
}

// matcher compiles one of field and fieldRegExp (exactly one is given);
// a regular expression is anchored so that it matches the whole value.
func (c *compiler) matcher(at, field, exact, expr string) (matcher, bool) {
	switch {
	case exact != "" && expr != "":
		c.fail("%s: set %s or %sRegExp, not both", at, field, field)
	case exact != "":
		return matcher{exact: exact}, true
	case expr != "":
		if _, err := regexp.Compile(expr); err != nil {
			c.fail("%s.%sRegExp: %w", at, field, err)
			break
		}
		return matcher{re: regexp.MustCompile("^(?:" + expr + ")$")}, true
	default:
		c.fail("%s: set %s or %sRegExp", at, field, field)
	}
	return matcher{}, false
}

func (c *compiler) certPool(at string, s *v1alpha1.DataSource) *x509.CertPool {
	doc, ok := c.source(at, s)
	if !ok {
		return nil
	}
	certs, err := cryptoutils.UnmarshalCertificatesFromPEM(doc)
	if err != nil {
		c.fail("%s: not PEM certificates: %w", at, err)
		return nil
	}
	if len(certs) == 0 {
		c.fail("%s: no certificate", at)
		return nil
	}
	pool := x509.NewCertPool()
	for i, cert := range certs {
		if !cert.IsCA {
			c.fail("%s: certificate %d is not a CA certificate", at, i+1)
		}
		pool.AddCert(cert)
	}
	return pool
}

func (c *compiler) rekorKey(at string, s *v1alpha1.DataSource) *cosign.TrustedTransparencyLogPubKeys {
	doc, ok := c.source(at, s)
	if !ok {
		return nil
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(doc)
	if err != nil {
		c.fail("%s: not a PEM public key: %w", at, err)
		return nil
	}
	if _, ok := pub.(*ecdsa.PublicKey); !ok {
		c.fail("%s: a %T; Rekor signs with ECDSA keys", at, pub)
		return nil
	}
	keys := cosign.NewTrustedTransparencyLogPubKeys()
	if err := keys.AddTransparencyLogPubKey(doc, tuf.Active); err != nil {
		c.fail("%s: %w", at, err)
		return nil
	}
	return &keys
}

// verifySignatures reports whether one of sigs is the authority's
// signature of h; if none is, why (each distinct problem once).
func (a *authority) verifySignatures(ctx context.Context, sigs []oci.Signature, h v1.Hash) (bool, string) {
	if len(sigs) == 0 {
		return false, "no signatures found"
	}
	co := a.check
	co.ClaimVerifier = cosign.SimpleClaimVerifier
	var problems []string
	for _, sig := range sigs {
		if ctx.Err() != nil {
			return false, ctx.Err().Error()
		}
		if _, err := cosign.VerifyImageSignature(ctx, sig, h, &co); err == nil {
			return true, ""
		} else if a.keyless == nil {
			problems = appendNew(problems, "no signature matches its key")
		} else {
			problems = appendNew(problems, a.keyless.explain(sig, &co, err))
		}
	}
	return false, strings.Join(problems, "; ")
}

// explain says why cosign rejected a keyless signature, checking the
// certificate the way cosign did, one step at a time: the verdict is
// cosign's, the words are for the person who has to fix it.
func (k *keyless) explain(sig oci.Signature, co *cosign.CheckOpts, err error) string {
	cert, cerr := sig.Cert()
	if cerr != nil {
		return "unreadable certificate: " + cerr.Error()
	}
	if cert == nil {
		return "signed with a key, not a certificate"
	}
	if p := k.identityProblem(cert); p != "" {
		return p
	}
	if !k.chains(sig, cert) {
		return "the certificate does not chain to the authority's roots"
	}
	validity := fmt.Sprintf("valid %s to %s", cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
	if !k.ignoreTlog {
		b, berr := sig.Bundle()
		switch {
		case berr != nil:
			return "unreadable Rekor bundle: " + berr.Error()
		case b == nil:
			return "no Rekor bundle: the signature's transparency-log entry cannot be checked"
		}
		if _, verr := cosign.VerifyBundle(sig, co); verr != nil {
			return "the Rekor bundle does not verify with the authority's log key: " + verr.Error()
		}
		logged := time.Unix(b.Payload.IntegratedTime, 0).UTC()
		if cosign.CheckExpiry(cert, logged) != nil {
			return fmt.Sprintf("the certificate (%s) was not valid when the signature was logged (%s)", validity, logged.Format(time.RFC3339))
		}
	} else if cosign.CheckExpiry(cert, time.Now()) != nil {
		return fmt.Sprintf("the certificate (%s) is not valid now, and with ignoreTlog there is no transparency-log time to show it was used while valid", validity)
	}
	return trim(err.Error())
}

// identityProblem says which of issuer and subject no identity accepts.
func (k *keyless) identityProblem(cert *x509.Certificate) string {
	issuer := certIssuer(cert)
	sans := cryptoutils.GetSubjectAlternateNames(cert)
	issuerKnown := false
	for _, id := range k.identities {
		if !id.issuer.match(issuer) {
			continue
		}
		issuerKnown = true
		for _, san := range sans {
			if id.subject.match(san) {
				return ""
			}
		}
	}
	if !issuerKnown {
		return fmt.Sprintf("the certificate's issuer %q is not one the authority accepts", issuer)
	}
	return fmt.Sprintf("the certificate's subject %q is not one the authority accepts from issuer %q", strings.Join(sans, ", "), issuer)
}

// chains repeats cosign's chain check: the certificate, at the time it
// was issued, chains to the roots (through the configured
// intermediates, or those the signature carries).
func (k *keyless) chains(sig oci.Signature, cert *x509.Certificate) bool {
	if k.trustedRoot != nil {
		_, err := verify.VerifyLeafCertificate(cert.NotBefore, cert, k.trustedRoot)
		return err == nil
	}
	pool := k.intermediates
	if chain, err := sig.Chain(); err == nil && pool == nil && len(chain) > 1 {
		pool = x509.NewCertPool()
		for _, c := range chain[:len(chain)-1] {
			pool.AddCert(c)
		}
	}
	_, err := cosign.TrustedCert(cert, k.roots, pool)
	return err == nil
}

// Fulcio's OIDC issuer extensions: the raw string (what cosign reads)
// and its DER-encoded successor.
var (
	oidIssuerV1 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}
	oidIssuerV2 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}
)

func certIssuer(cert *x509.Certificate) string {
	var v2 string
	for _, ext := range cert.Extensions {
		switch {
		case ext.Id.Equal(oidIssuerV1):
			return string(ext.Value)
		case ext.Id.Equal(oidIssuerV2):
			if _, err := asn1.Unmarshal(ext.Value, &v2); err != nil {
				v2 = ""
			}
		}
	}
	return v2
}

func appendNew(list []string, s string) []string {
	for _, have := range list {
		if have == s {
			return list
		}
	}
	return append(list, s)
}

func trim(msg string) string {
	if len(msg) > 300 {
		return msg[:300] + "..."
	}
	return msg
}
