package imagesig_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/policies/imagesig"
	"github.com/tollgate-dev/tollgate/test/registry"
)

const (
	vulnType = "https://cosign.sigstore.dev/attestation/vuln/v1"
	slsaV1   = "https://slsa.dev/provenance/v1"
)

func testdata(t testing.TB, file string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// attest attaches attestations (predicate type, predicate JSON pairs)
// signed with o.
func attest(t testing.TB, d name.Digest, o registry.SignOptions, typeAndPredicate ...string) {
	t.Helper()
	for i := 0; i < len(typeAndPredicate); i += 2 {
		if err := registry.Attest(context.Background(), d, typeAndPredicate[i], []byte(typeAndPredicate[i+1]), o); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAttestations: an authority with attestations is satisfied when the
// image carries its signature and, for each attestation, one it signed of
// exactly that predicate type that passes the attestation's Rego policy:
// a Trivy scan (cosign's vuln predicate) with no CRITICAL finding and no
// older than 7 days, a SLSA v1 provenance from an allowed builder.
func TestAttestations(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	clean, critical, provenance := testdata(t, "trivy-clean.json"), testdata(t, "trivy-critical.json"), testdata(t, "slsa-provenance.json")
	otherBuilder := strings.Replace(provenance, "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.1.0", "https://github.com/someone/builder@v1", 1)
	key := registry.SignOptions{Key: f.release.sv}
	stranger := registry.SignOptions{Key: newKey(t).sv}

	attested := func(repo string, typeAndPredicate ...string) name.Digest {
		d := f.push(t, repo, "1.0", f.release)
		attest(t, d, key, typeAndPredicate...)
		return d
	}
	scanClean := attested("team/clean", vulnType, clean)
	scanCritical := attested("team/critical", vulnType, critical)
	scanBoth := attested("team/rescanned", vulnType, critical, vulnType, clean)
	wrongType := attested("team/wrong-type", "https://cosign.sigstore.dev/attestation/vuln/v2", clean, "https://cosign.sigstore.dev/attestation/v1", clean)
	notAttested := f.push(t, "team/not-attested", "1.0", f.release)
	byStranger := f.push(t, "team/by-stranger", "1.0", f.release)
	attest(t, byStranger, stranger, vulnType, clean)
	unsigned := f.push(t, "team/unsigned", "1.0")
	attest(t, unsigned, key, vulnType, clean)
	built := attested("team/built", slsaV1, provenance)
	builtElsewhere := attested("team/built-elsewhere", slsaV1, otherBuilder)
	builtV02 := attested("team/built-v02", "https://slsa.dev/provenance/v0.2", provenance)

	withAttestations := func(atts ...v1alpha1.Attestation) *imagesig.Policy {
		return f.rulePolicy(t, v1alpha1.Authority{Name: "release", Key: &v1alpha1.KeyAuthority{Data: f.release.pem}, Attestations: atts})
	}
	vulns := withAttestations(v1alpha1.Attestation{Name: "vulnerabilities", PredicateType: "vuln", Policy: testdata(t, "vuln.rego")})
	slsa := withAttestations(v1alpha1.Attestation{Name: "provenance", PredicateType: slsaV1, Policy: testdata(t, "provenance.rego")})
	anySLSA := withAttestations(v1alpha1.Attestation{Name: "provenance", PredicateType: "slsaprovenance1"})

	// The scans finished 2026-01-08; the policy accepts them for 7 days.
	day := func(d int) func() time.Time {
		return func() time.Time { return time.Date(2026, 1, d, 0, 0, 0, 0, time.UTC) }
	}
	for _, tc := range []struct {
		name   string
		p      *imagesig.Policy
		d      name.Digest
		now    func() time.Time
		expect verdict
		denied []string
	}{
		{"clean, recent scan", vulns, scanClean, day(10), verdict{verified: true}, nil},
		{"a CRITICAL finding", vulns, scanCritical, day(10), verdict{reason: "release: attestation vulnerabilities denied: CRITICAL CVE-2024-3094 in liblzma5 5.6.0-0.2"},
			[]string{"CRITICAL CVE-2024-3094 in liblzma5 5.6.0-0.2 (registry.corp.example/team/app (debian 12.5))"}},
		{"a scan older than 7 days", vulns, scanClean, day(20), verdict{reason: "does not satisfy any one of"},
			[]string{"the scan finished 2026-01-08T10:02:13Z, 11 days ago; at most 7 are accepted"}},
		{"a clean scan beside a critical one: one passing is enough", vulns, scanBoth, day(10), verdict{verified: true}, nil},
		{"the wrong predicate types", vulns, wrongType, day(10),
			verdict{reason: "release: attestation vulnerabilities: no attestation of type " + vulnType + " (the authority's are of types https://cosign.sigstore.dev/attestation/vuln/v2, https://cosign.sigstore.dev/attestation/v1)"}, nil},
		{"no attestation", vulns, notAttested, day(10), verdict{reason: "release: attestation vulnerabilities: no attestations found"}, nil},
		{"attested by another key", vulns, byStranger, day(10), verdict{reason: "release: attestation vulnerabilities: no attestation is the authority's"}, nil},
		{"attested but not signed", vulns, unsigned, day(10), verdict{reason: "is not signed by any one of the rule's authorities (release: no signatures found)"}, nil},
		{"SLSA provenance from an allowed builder", slsa, built, day(10), verdict{verified: true}, nil},
		{"SLSA provenance from another builder", slsa, builtElsewhere, day(10),
			verdict{reason: `release: attestation provenance denied: built by "https://github.com/someone/builder@v1", which is not an allowed builder`}, nil},
		{"SLSA v0.2 where v1 is required", slsa, builtV02, day(10), verdict{reason: "no attestation of type " + slsaV1}, nil},
		{"no policy: a verified attestation of the type is enough", anySLSA, built, day(10), verdict{verified: true}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.verifier = imagesig.NewVerifier(imagesig.Options{Insecure: true, Timeout: 5 * time.Second, Now: tc.now})
			res := f.expect(t, tc.p, tc.d, tc.expect)
			if len(res.Attestations) == 0 {
				if tc.expect.verified {
					t.Fatal("verified with no attestation result")
				}
				return
			}
			got := res.Attestations[0]
			if got.Passed != tc.expect.verified || got.Authority != "release" {
				t.Errorf("attestation result %+v", got)
			}
			if tc.denied != nil {
				if diff := cmp.Diff(tc.denied, got.Denied); diff != "" {
					t.Errorf("denied (-want +got):\n%s", diff)
				}
			}
		})
	}
	// The result names each attestation, with its type made a URI.
	f.verifier = imagesig.NewVerifier(imagesig.Options{Insecure: true, Now: day(10)})
	res, err := f.verifier.Verify(ctx, vulns, scanCritical.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []imagesig.AttestationResult{{Authority: "release", Name: "vulnerabilities", PredicateType: vulnType,
		Denied: []string{"CRITICAL CVE-2024-3094 in liblzma5 5.6.0-0.2 (registry.corp.example/team/app (debian 12.5))"}}}
	if diff := cmp.Diff(want, res.Attestations); diff != "" {
		t.Errorf("attestations (-want +got):\n%s", diff)
	}
	// A cached verdict carries them too, and a caller changing it changes
	// nothing in the cache.
	res.Attestations[0].Denied[0] = "changed"
	cached, err := f.verifier.Verify(ctx, vulns, scanCritical.String(), nil)
	if err != nil || !cached.Cached {
		t.Fatalf("cached: %+v %v", cached, err)
	}
	if diff := cmp.Diff(want, cached.Attestations); diff != "" {
		t.Errorf("cached attestations (-want +got):\n%s", diff)
	}
}

// TestKeylessAttestations: attestations signed keylessly, logged in
// Rekor (a DSSE entry), verified with a trusted root; any authority of
// the rule with all its attestations satisfies it.
func TestKeylessAttestations(t *testing.T) {
	f := newFixture(t)
	tr := newTrust(t)
	ci := registry.SignOptions{Cert: tr.issue(t, releaseIdentity, time.Now().Add(-time.Minute)), Rekor: tr.rekor}
	provenance := testdata(t, "slsa-provenance.json")
	d := f.signed(t, "team/app", ci)
	attest(t, d, ci, slsaV1, provenance, vulnType, testdata(t, "trivy-critical.json"))

	keyless := tr.withTrustedRoot(v1alpha1.Identity{Issuer: githubIssuer, Subject: releaseSubject})
	p := f.rulePolicy(t,
		v1alpha1.Authority{Name: "scanned", Keyless: keyless, Attestations: []v1alpha1.Attestation{
			{Name: "vulnerabilities", PredicateType: "vuln", Policy: testdata(t, "vuln.rego")},
		}},
		v1alpha1.Authority{Name: "built", Keyless: keyless, Attestations: []v1alpha1.Attestation{
			{Name: "provenance", PredicateType: slsaV1, Policy: testdata(t, "provenance.rego")},
		}},
	)
	f.verifier = imagesig.NewVerifier(imagesig.Options{Insecure: true, Now: func() time.Time { return time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC) }})
	res := f.expect(t, p, d, verdict{verified: true})
	if diff := cmp.Diff([]string{"built"}, res.Passed); diff != "" {
		t.Errorf("passed (-want +got):\n%s", diff)
	}
	if len(res.Attestations) != 2 || res.Attestations[0].Passed || !res.Attestations[1].Passed {
		t.Errorf("attestations: %+v", res.Attestations)
	}
}
