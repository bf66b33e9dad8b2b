package imagesig_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/policies/imagesig"
	"github.com/tollgate-dev/tollgate/test/registry"
)

const (
	githubIssuer   = "https://token.actions.githubusercontent.com"
	releaseSubject = "https://github.com/corp/app/.github/workflows/release.yml@refs/tags/v1.4.0"
)

var releaseIdentity = registry.Identity{Issuer: githubIssuer, Subject: releaseSubject}

// trust is a private sigstore for tests: a CA standing in for Fulcio
// (with an intermediate) and a Rekor key, both offline.
type trust struct {
	ca          *registry.CA
	rekor       *registry.Rekor
	trustedRoot string
}

func newTrust(t testing.TB) trust {
	t.Helper()
	ca, err := registry.NewCA(true)
	if err != nil {
		t.Fatal(err)
	}
	rekor, err := registry.NewRekor()
	if err != nil {
		t.Fatal(err)
	}
	tr, err := registry.TrustedRootJSON(ca, rekor)
	if err != nil {
		t.Fatal(err)
	}
	return trust{ca: ca, rekor: rekor, trustedRoot: string(tr)}
}

func (tr trust) issue(t testing.TB, id registry.Identity, notBefore time.Time) *registry.Cert {
	t.Helper()
	c, err := tr.ca.Issue(id, notBefore)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// withRoots is a keyless authority trusting the CA's root (signatures
// carry the intermediate) and the Rekor key.
func (tr trust) withRoots(ids ...v1alpha1.Identity) *v1alpha1.KeylessAuthority {
	return &v1alpha1.KeylessAuthority{
		Identities: ids,
		Roots:      &v1alpha1.DataSource{Data: string(tr.ca.RootPEM())},
		Rekor:      &v1alpha1.RekorAuthority{PublicKey: v1alpha1.DataSource{Data: string(tr.rekor.PublicKeyPEM())}},
	}
}

// withTrustedRoot is a keyless authority trusting the same CA and log
// through a trusted root document.
func (tr trust) withTrustedRoot(ids ...v1alpha1.Identity) *v1alpha1.KeylessAuthority {
	return &v1alpha1.KeylessAuthority{Identities: ids, TrustedRoot: &v1alpha1.DataSource{Data: tr.trustedRoot}}
}

func (f *fixture) signed(t testing.TB, repo string, o registry.SignOptions) name.Digest {
	t.Helper()
	d := f.push(t, repo, "1.0")
	if err := registry.SignWith(context.Background(), d, o); err != nil {
		t.Fatal(err)
	}
	return d
}

// rulePolicy is a policy with one rule, for every image in the registry.
func (f *fixture) rulePolicy(t testing.TB, authorities ...v1alpha1.Authority) *imagesig.Policy {
	t.Helper()
	p, err := imagesig.Compile(context.Background(), v1alpha1.ImagePolicySpec{
		Images: []v1alpha1.ImageRule{{Glob: f.reg.Host() + "/**", Authorities: authorities}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type verdict struct {
	verified bool
	reason   string // a part of the reason
}

func (f *fixture) expect(t *testing.T, p *imagesig.Policy, d name.Digest, want verdict) *imagesig.Result {
	t.Helper()
	res, err := f.verifier.Verify(context.Background(), p, d.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verified != want.verified {
		t.Fatalf("verified %v, want %v (%s)", res.Verified, want.verified, res.Reason)
	}
	if !strings.Contains(res.Reason, want.reason) {
		t.Fatalf("reason %q does not say %q", res.Reason, want.reason)
	}
	return res
}

// TestKeylessIdentities: a keyless signature verifies when the
// certificate chains to the authority's CA, its Rekor bundle verifies
// with the log's key, and its issuer and subject both match an identity;
// each way it can fail says which part did.
func TestKeylessIdentities(t *testing.T) {
	f := newFixture(t)
	tr := newTrust(t)
	now := time.Now().Add(-time.Minute)
	other := newTrust(t)

	logged := f.signed(t, "team/logged", registry.SignOptions{Cert: tr.issue(t, releaseIdentity, now), Rekor: tr.rekor})
	wrongSubject := f.signed(t, "team/wrong-subject", registry.SignOptions{
		Cert: tr.issue(t, registry.Identity{Issuer: githubIssuer, Subject: "https://github.com/corp/app/.github/workflows/debug.yml@refs/heads/main"}, now), Rekor: tr.rekor})
	wrongIssuer := f.signed(t, "team/wrong-issuer", registry.SignOptions{
		Cert: tr.issue(t, registry.Identity{Issuer: "https://accounts.google.com", Subject: releaseSubject}, now), Rekor: tr.rekor})
	// The regular expression matches the whole subject, not a part of it.
	embedded := f.signed(t, "team/embedded", registry.SignOptions{
		Cert: tr.issue(t, registry.Identity{Issuer: githubIssuer, Subject: "https://evil.example/?u=" + releaseSubject}, now), Rekor: tr.rekor})
	unlogged := f.signed(t, "team/unlogged", registry.SignOptions{Cert: tr.issue(t, releaseIdentity, now)})
	otherCA := f.signed(t, "team/other-ca", registry.SignOptions{Cert: other.issue(t, releaseIdentity, now), Rekor: tr.rekor})
	otherLog := f.signed(t, "team/other-log", registry.SignOptions{Cert: tr.issue(t, releaseIdentity, now), Rekor: other.rekor})
	keySigned := f.push(t, "team/key-signed", "1.0", f.release)

	exact := v1alpha1.Identity{Issuer: githubIssuer, Subject: releaseSubject}
	pattern := v1alpha1.Identity{IssuerRegExp: `https://token\.actions\.githubusercontent\.com`, SubjectRegExp: `https://github\.com/corp/[^/]+/\.github/workflows/release\.yml@refs/tags/v.+`}
	roots := f.rulePolicy(t, v1alpha1.Authority{Name: "ci", Keyless: tr.withRoots(pattern)})
	trustedRoot := f.rulePolicy(t, v1alpha1.Authority{Name: "ci", Keyless: tr.withTrustedRoot(exact)})

	for _, tc := range []struct {
		name   string
		p      *imagesig.Policy
		d      name.Digest
		expect verdict
	}{
		{"right issuer and subject, roots and rekor key", roots, logged, verdict{verified: true}},
		{"right issuer and subject, trusted root", trustedRoot, logged, verdict{verified: true}},
		{"wrong subject", roots, wrongSubject, verdict{reason: `ci: the certificate's subject "https://github.com/corp/app/.github/workflows/debug.yml@refs/heads/main" is not one the authority accepts from issuer "https://token.actions.githubusercontent.com"`}},
		{"wrong subject, trusted root", trustedRoot, wrongSubject, verdict{reason: "the certificate's subject"}},
		{"wrong issuer", roots, wrongIssuer, verdict{reason: `ci: the certificate's issuer "https://accounts.google.com" is not one the authority accepts`}},
		{"wrong issuer, trusted root", trustedRoot, wrongIssuer, verdict{reason: "the certificate's issuer"}},
		{"subject pattern matched inside a longer subject", roots, embedded, verdict{reason: "the certificate's subject"}},
		{"no Rekor bundle", roots, unlogged, verdict{reason: "ci: no Rekor bundle"}},
		{"no Rekor bundle, trusted root", trustedRoot, unlogged, verdict{reason: "ci: no Rekor bundle"}},
		{"another CA", roots, otherCA, verdict{reason: "ci: the certificate does not chain to the authority's roots"}},
		{"another CA, trusted root", trustedRoot, otherCA, verdict{reason: "does not chain"}},
		{"another log", roots, otherLog, verdict{reason: "ci: the Rekor bundle does not verify with the authority's log key"}},
		{"another log, trusted root", trustedRoot, otherLog, verdict{reason: "the Rekor bundle does not verify"}},
		{"signed with a key", roots, keySigned, verdict{reason: "ci: signed with a key, not a certificate"}},
	} {
		t.Run(tc.name, func(t *testing.T) { f.expect(t, tc.p, tc.d, tc.expect) })
	}
}

// TestKeylessCertificateTime: a keyless certificate lasts ten minutes.
// Without a transparency-log time it is checked now, so an expired one
// fails; the same certificate with a Rekor bundle logged while it was
// valid passes; logged after it expired, it fails.
func TestKeylessCertificateTime(t *testing.T) {
	f := newFixture(t)
	tr := newTrust(t)
	expired := tr.issue(t, releaseIdentity, time.Now().Add(-time.Hour))
	fresh := tr.issue(t, releaseIdentity, time.Now().Add(-time.Minute))

	expiredUnlogged := f.signed(t, "team/expired-unlogged", registry.SignOptions{Cert: expired})
	expiredLoggedInTime := f.signed(t, "team/expired-logged", registry.SignOptions{Cert: expired, Rekor: tr.rekor, IntegratedTime: expired.Cert.NotBefore.Add(2 * time.Minute)})
	expiredLoggedLate := f.signed(t, "team/expired-logged-late", registry.SignOptions{Cert: expired, Rekor: tr.rekor})
	freshUnlogged := f.signed(t, "team/fresh-unlogged", registry.SignOptions{Cert: fresh})

	id := v1alpha1.Identity{Issuer: githubIssuer, Subject: releaseSubject}
	noTlog := tr.withRoots(id)
	noTlog.Rekor, noTlog.IgnoreTlog = nil, true
	noTlogTrustedRoot := tr.withTrustedRoot(id)
	noTlogTrustedRoot.IgnoreTlog = true
	withoutLog := f.rulePolicy(t, v1alpha1.Authority{Name: "ci", Keyless: noTlog})
	withoutLogTrustedRoot := f.rulePolicy(t, v1alpha1.Authority{Name: "ci", Keyless: noTlogTrustedRoot})
	withLog := f.rulePolicy(t, v1alpha1.Authority{Name: "ci", Keyless: tr.withRoots(id)})
	withLogTrustedRoot := f.rulePolicy(t, v1alpha1.Authority{Name: "ci", Keyless: tr.withTrustedRoot(id)})

	for _, tc := range []struct {
		name   string
		p      *imagesig.Policy
		d      name.Digest
		expect verdict
	}{
		{"expired, ignoreTlog", withoutLog, expiredUnlogged, verdict{reason: "is not valid now, and with ignoreTlog there is no transparency-log time"}},
		{"expired, ignoreTlog, trusted root", withoutLogTrustedRoot, expiredUnlogged, verdict{reason: "is not valid now"}},
		{"expired, logged while valid", withLog, expiredLoggedInTime, verdict{verified: true}},
		{"expired, logged while valid, trusted root", withLogTrustedRoot, expiredLoggedInTime, verdict{verified: true}},
		{"expired, logged after", withLog, expiredLoggedLate, verdict{reason: "was not valid when the signature was logged"}},
		{"expired, logged while valid, ignoreTlog: the log time is not used", withoutLog, expiredLoggedInTime, verdict{reason: "is not valid now"}},
		{"valid now, ignoreTlog", withoutLog, freshUnlogged, verdict{verified: true}},
	} {
		t.Run(tc.name, func(t *testing.T) { f.expect(t, tc.p, tc.d, tc.expect) })
	}
}
