package registry

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/cosign/v2/pkg/oci"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/tuf" //nolint:staticcheck // cosign v2's TrustedTransparencyLogPubKeys takes its StatusKind; deprecated in sigstore v1.10.9, the version Kyverno's engine requires
)

// TestKeylessSignaturesOnTheRealRegistry checks the stand-ins for Fulcio
// and Rekor against the cosign library itself: a certificate from the test
// CA with a Rekor bundle verifies with the CA's roots and the log's key,
// and with a trusted root naming both; the identity is enforced; an
// expired certificate passes only with a log time inside its validity.
func TestKeylessSignaturesOnTheRealRegistry(t *testing.T) {
	ctx := context.Background()
	r, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	ca, err := NewCA(true)
	if err != nil {
		t.Fatal(err)
	}
	rekor, err := NewRekor()
	if err != nil {
		t.Fatal(err)
	}
	id := Identity{Issuer: "https://token.actions.githubusercontent.com", Subject: "https://github.com/corp/app/.github/workflows/release.yml@refs/heads/main"}
	fresh, err := ca.Issue(id, time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	expired, err := ca.Issue(id, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}

	roots, intermediates := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(ca.Root)
	intermediates.AddCert(ca.Intermediate)
	rekorKeys := cosign.NewTrustedTransparencyLogPubKeys()
	if err := rekorKeys.AddTransparencyLogPubKey(rekor.PublicKeyPEM(), tuf.Active); err != nil {
		t.Fatal(err)
	}
	trJSON, err := TrustedRootJSON(ca, rekor)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := root.NewTrustedRootFromJSON(trJSON)
	if err != nil {
		t.Fatal(err)
	}
	withRoots := func(co cosign.CheckOpts) *cosign.CheckOpts {
		co.RootCerts, co.IntermediateCerts, co.RekorPubKeys = roots, intermediates, &rekorKeys
		return &co
	}
	withTrustedRoot := func(co cosign.CheckOpts) *cosign.CheckOpts {
		co.TrustedMaterial = tr
		return &co
	}
	base := cosign.CheckOpts{
		Identities:    []cosign.Identity{{Issuer: id.Issuer, Subject: id.Subject}},
		IgnoreSCT:     true,
		Offline:       true,
		ClaimVerifier: cosign.SimpleClaimVerifier,
	}
	push := func(repo string, o SignOptions) name.Digest {
		t.Helper()
		d, err := r.PushRandom(ctx, repo, "1.0")
		if err != nil {
			t.Fatal(err)
		}
		if err := SignWith(ctx, d, o); err != nil {
			t.Fatal(err)
		}
		return d
	}
	logged := push("team/logged", SignOptions{Cert: fresh, Rekor: rekor})
	unlogged := push("team/unlogged", SignOptions{Cert: fresh})
	expiredLogged := push("team/expired-logged", SignOptions{Cert: expired, Rekor: rekor, IntegratedTime: expired.Cert.NotBefore.Add(time.Minute)})
	expiredUnlogged := push("team/expired", SignOptions{Cert: expired})
	otherIssuer := base
	otherIssuer.Identities = []cosign.Identity{{Issuer: "https://accounts.google.com", Subject: id.Subject}}
	noTlog := base
	noTlog.IgnoreTlog = true

	for _, tc := range []struct {
		name string
		d    name.Digest
		co   *cosign.CheckOpts
		want string // empty: verifies
	}{
		{"roots and rekor key", logged, withRoots(base), ""},
		{"trusted root", logged, withTrustedRoot(base), ""},
		{"another issuer", logged, withRoots(otherIssuer), "none of the expected identities matched"},
		{"no bundle, log required", unlogged, withRoots(base), "offline verification failed"},
		{"no bundle, log ignored", unlogged, withRoots(noTlog), ""},
		{"expired, logged in time", expiredLogged, withRoots(base), ""},
		{"expired, logged in time, trusted root", expiredLogged, withTrustedRoot(base), ""},
		{"expired, no log time", expiredUnlogged, withRoots(noTlog), "expired certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := cosign.VerifyImageSignatures(ctx, tc.d, tc.co)
			if tc.want == "" && err != nil {
				t.Fatal(err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}

	// Attestations: a DSSE envelope, keyless and logged, and with a key.
	d, err := r.PushRandom(ctx, "team/attested", "1.0")
	if err != nil {
		t.Fatal(err)
	}
	predicate := []byte(`{"scanner":{"uri":"pkg:github/aquasecurity/trivy"}}`)
	if err := Attest(ctx, d, "https://cosign.sigstore.dev/attestation/vuln/v1", predicate, SignOptions{Cert: fresh, Rekor: rekor}); err != nil {
		t.Fatal(err)
	}
	key, _, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := Attest(ctx, d, "https://slsa.dev/provenance/v1", []byte(`{}`), SignOptions{Key: key}); err != nil {
		t.Fatal(err)
	}
	attOpts := base
	attOpts.ClaimVerifier = cosign.IntotoSubjectClaimVerifier
	atts, _, err := cosign.VerifyImageAttestations(ctx, d, withTrustedRoot(attOpts))
	if err != nil || len(atts) != 1 {
		t.Fatalf("keyless attestation: %d verified, %v", len(atts), err)
	}
	keyOpts := cosign.CheckOpts{SigVerifier: key, IgnoreTlog: true, IgnoreSCT: true, ClaimVerifier: cosign.IntotoSubjectClaimVerifier}
	if atts, _, err = cosign.VerifyImageAttestations(ctx, d, &keyOpts); err != nil || len(atts) != 1 {
		t.Fatalf("key attestation: %d verified, %v", len(atts), err)
	}

	// A signature manifest of many layers is pushed as such (cosign itself
	// stops at 1,000).
	many, err := r.PushRandom(ctx, "team/many", "1.0")
	if err != nil {
		t.Fatal(err)
	}
	if err := PushSignatureLayers(ctx, many, 1500); err != nil {
		t.Fatal(err)
	}
	_, _, err = cosign.VerifyImageSignatures(ctx, many, &keyOpts)
	var tooMany *oci.MaxLayersExceeded
	if !errors.As(err, &tooMany) || !strings.Contains(err.Error(), "1500") {
		t.Fatalf("1500 layers: %v, want cosign's own layer limit", err)
	}
}
