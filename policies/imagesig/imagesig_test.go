package imagesig_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/policies/imagesig"
	"github.com/tollgate-dev/tollgate/test/registry"
)

type key struct {
	sv  *signature.ECDSASignerVerifier
	pem string
}

func newKey(t testing.TB) key {
	t.Helper()
	sv, pem, err := registry.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return key{sv, string(pem)}
}

type fixture struct {
	reg             *registry.Registry
	release, second key
	verifier        *imagesig.Verifier
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	reg, err := registry.Start(context.Background(), registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Stop() })
	return &fixture{reg: reg, release: newKey(t), second: newKey(t),
		verifier: imagesig.NewVerifier(imagesig.Options{Insecure: true, Timeout: 2 * time.Second})}
}

func (f *fixture) push(t testing.TB, repo, tag string, signers ...key) name.Digest {
	t.Helper()
	d, err := f.reg.PushRandom(context.Background(), repo, tag)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range signers {
		if err := registry.Sign(context.Background(), d, k.sv); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func (f *fixture) policy(t testing.TB, mode, unmatched, require string) *imagesig.Policy {
	t.Helper()
	p, err := imagesig.Compile(context.Background(), v1alpha1.ImagePolicySpec{
		Mode: mode, Unmatched: unmatched,
		Images: []v1alpha1.ImageRule{{
			Glob:    f.reg.Host() + "/team/**",
			Require: require,
			Authorities: []v1alpha1.Authority{
				{Name: "release", Key: &v1alpha1.KeyAuthority{Data: f.release.pem}},
				{Name: "second", Key: &v1alpha1.KeyAuthority{Data: f.second.pem}},
			},
		}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVerifyAgainstARealRegistry(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	stranger := newKey(t)
	signed := f.push(t, "team/app", "1.0", f.release)
	f.push(t, "team/both", "1.0", f.release, f.second)
	f.push(t, "team/unsigned", "1.0")
	f.push(t, "team/foreign", "1.0", stranger)
	// The tag is signed; a different, unsigned digest is pushed under another tag.
	f.push(t, "team/moved", "1.0", f.release)
	movedUnsigned := f.push(t, "team/moved", "2.0")
	host := f.reg.Host()

	cases := []struct {
		name, image, mode, unmatched, require string
		verified                              bool
		action, pinned, digest, reason        string
	}{
		{name: "signed by the rule's key: admitted and pinned", image: host + "/team/app:1.0",
			verified: true, action: "allow", pinned: host + "/team/app:1.0@" + signed.DigestStr()},
		{name: "by digest", image: signed.String(), verified: true, action: "allow", pinned: signed.String()},
		{name: "unsigned", image: host + "/team/unsigned:1.0", action: "deny", reason: "release: no signatures found"},
		{name: "signed by another key", image: host + "/team/foreign:1.0", action: "deny", reason: "release: no signature matches its key"},
		{name: "unsigned in Warn mode warns", image: host + "/team/unsigned:1.0", mode: "Warn", action: "warn"},
		{name: "all-of with one signature missing", image: host + "/team/app:1.0", require: "all", action: "deny", reason: "not signed by all of"},
		{name: "all-of with both", image: host + "/team/both:1.0", require: "all", verified: true, action: "allow"},
		{name: "tag@digest: the digest is verified, not the tag", image: host + "/team/moved:1.0@" + movedUnsigned.DigestStr(),
			action: "deny", digest: movedUnsigned.DigestStr()},
		{name: "no rule matches: denied by default", image: host + "/other/app:1.0", action: "deny", reason: "no rule of the image policy matches"},
		{name: "no rule matches: allowed when configured", image: host + "/other/app:1.0", unmatched: "allow", action: "allow"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := f.verifier.Verify(ctx, f.policy(t, tc.mode, tc.unmatched, tc.require), tc.image, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Verified != tc.verified || res.Action != tc.action {
				t.Fatalf("verified %v action %s (%s), want %v %s", res.Verified, res.Action, res.Reason, tc.verified, tc.action)
			}
			if tc.pinned != "" && res.Pinned != tc.pinned {
				t.Errorf("pinned %s, want %s", res.Pinned, tc.pinned)
			}
			if tc.digest != "" && res.Digest != tc.digest {
				t.Errorf("digest %s, want %s", res.Digest, tc.digest)
			}
			if !res.Verified && res.Pinned != "" {
				t.Errorf("an unverified image was pinned: %s", res.Pinned)
			}
			if !strings.Contains(res.Reason, tc.reason) {
				t.Errorf("reason %q does not say %q", res.Reason, tc.reason)
			}
		})
	}
}

func TestTagMovedBetweenAdmissions(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	p := f.policy(t, "", "", "")
	first := f.push(t, "team/app", "1.0", f.release)
	res, err := f.verifier.Verify(ctx, p, f.reg.Host()+"/team/app:1.0", nil)
	if err != nil || !res.Verified || res.Digest != first.DigestStr() {
		t.Fatalf("first: %+v %v", res, err)
	}
	// Someone pushes an unsigned image under the same tag: the tag resolves
	// anew, and the new digest fails (the cached verdict of the old one does
	// not carry over).
	moved := f.push(t, "team/app", "1.0")
	res, err = f.verifier.Verify(ctx, p, f.reg.Host()+"/team/app:1.0", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verified || res.Digest != moved.DigestStr() || res.Cached {
		t.Fatalf("after the tag moved: %+v", res)
	}
}

func TestCacheAndRegistryDown(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	p := f.policy(t, "", "", "")
	d := f.push(t, "team/app", "1.0", f.release)
	if res, err := f.verifier.Verify(ctx, p, d.String(), nil); err != nil || !res.Verified || res.Cached {
		t.Fatalf("cold: %+v %v", res, err)
	}
	if err := f.reg.Stop(); err != nil {
		t.Fatal(err)
	}
	// A digest verified before answers from the cache, with no registry call.
	res, err := f.verifier.Verify(ctx, p, d.String(), nil)
	if err != nil || !res.Verified || !res.Cached {
		t.Fatalf("cached: %+v %v", res, err)
	}
	// A tag needs the registry to resolve: with it down, a clear error, fast.
	start := time.Now()
	_, err = f.verifier.Verify(ctx, p, f.reg.Host()+"/team/app:1.0", nil)
	if err == nil || !strings.Contains(err.Error(), "resolving") {
		t.Fatalf("registry down: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("the registry deadline did not hold: %s", time.Since(start))
	}
}

func TestCompileErrors(t *testing.T) {
	good := newKey(t).pem
	_, err := imagesig.Compile(context.Background(), v1alpha1.ImagePolicySpec{
		Mode: "Sometimes", Unmatched: "shrug",
		Images: []v1alpha1.ImageRule{
			{Glob: "", Authorities: []v1alpha1.Authority{{Name: "a", Key: &v1alpha1.KeyAuthority{Data: good}}}},
			{Glob: "registry/*", Require: "most", Authorities: []v1alpha1.Authority{
				{Name: "a", Key: &v1alpha1.KeyAuthority{Data: "not a key"}},
				{Name: "b"},
				{Name: "c", Key: &v1alpha1.KeyAuthority{SecretRef: &v1alpha1.SecretKeyRef{Name: "k"}}},
			}},
		},
	}, nil)
	for _, want := range []string{
		`spec.mode: "Sometimes": want Enforce or Warn`,
		`spec.unmatched: "shrug": want allow, warn or deny`,
		"spec.images[0].glob: empty",
		`spec.images[1].require: "most": want any or all`,
		"spec.images[1].authorities[0].key: not a PEM public key",
		"spec.images[1].authorities[1]: set key",
		"spec.images[1].authorities[2].key.secretRef: Secrets cannot be read here",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
}

// BenchmarkCachedVerdict: an image verified before, verified again by
// digest (the webhook's path once the mutating webhook has pinned it).
// Target: under 1 ms.
func BenchmarkCachedVerdict(b *testing.B) {
	f := newFixture(b)
	p := f.policy(b, "", "", "")
	d := f.push(b, "team/app", "1.0", f.release)
	ctx := context.Background()
	if res, err := f.verifier.Verify(ctx, p, d.String(), nil); err != nil || !res.Verified {
		b.Fatalf("%+v %v", res, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if res, err := f.verifier.Verify(ctx, p, d.String(), nil); err != nil || !res.Cached {
			b.Fatalf("%+v %v", res, err)
		}
	}
}

// BenchmarkColdVerification: a tag resolved and its signature verified
// against the local registry, cache bypassed.
func BenchmarkColdVerification(b *testing.B) {
	f := newFixture(b)
	p := f.policy(b, "", "", "")
	f.push(b, "team/app", "1.0", f.release)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		v := imagesig.NewVerifier(imagesig.Options{Insecure: true})
		if res, err := v.Verify(ctx, p, f.reg.Host()+"/team/app:1.0", nil); err != nil || !res.Verified {
			b.Fatalf("%+v %v", res, err)
		}
	}
}

// TestCompileErrorsKeylessAndAttestations: every field of keyless
// authorities and attestations is checked when the policy is compiled,
// and each error names its field (and, in Rego, its line).
func TestCompileErrorsKeylessAndAttestations(t *testing.T) {
	tr := newTrust(t)
	key := newKey(t).pem
	roots := &v1alpha1.DataSource{Data: string(tr.ca.RootPEM())}
	rekor := &v1alpha1.RekorAuthority{PublicKey: v1alpha1.DataSource{Data: string(tr.rekor.PublicKeyPEM())}}
	id := v1alpha1.Identity{Issuer: githubIssuer, Subject: releaseSubject}
	leaf := tr.issue(t, releaseIdentity, time.Now())
	noLog, err := registry.TrustedRootJSON(tr.ca, nil)
	if err != nil {
		t.Fatal(err)
	}
	edKey := "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n"
	keyless := func(k v1alpha1.KeylessAuthority) v1alpha1.Authority {
		if k.Identities == nil {
			k.Identities = []v1alpha1.Identity{id}
		}
		return v1alpha1.Authority{Name: "ci", Keyless: &k}
	}
	attested := func(atts ...v1alpha1.Attestation) v1alpha1.Authority {
		return v1alpha1.Authority{Name: "release", Key: &v1alpha1.KeyAuthority{Data: key}, Attestations: atts}
	}
	secrets := func(_ context.Context, ref v1alpha1.SecretKeyRef) ([]byte, error) {
		return nil, fmt.Errorf("secret %s/%s: not found", ref.Namespace, ref.Name)
	}
	_, err = imagesig.Compile(context.Background(), v1alpha1.ImagePolicySpec{Images: []v1alpha1.ImageRule{{
		Glob: "registry.corp.example/**",
		Authorities: []v1alpha1.Authority{
			/* 0 */ {Name: "both", Key: &v1alpha1.KeyAuthority{Data: key}, Keyless: &v1alpha1.KeylessAuthority{Identities: []v1alpha1.Identity{id}, Roots: roots, Rekor: rekor}},
			/* 1 */ keyless(v1alpha1.KeylessAuthority{Identities: []v1alpha1.Identity{}, Roots: roots, Rekor: rekor}),
			/* 2 */ keyless(v1alpha1.KeylessAuthority{Roots: roots, Rekor: rekor, Identities: []v1alpha1.Identity{
				{Subject: releaseSubject},
				{Issuer: githubIssuer},
				{Issuer: githubIssuer, IssuerRegExp: ".*", Subject: releaseSubject},
				{Issuer: githubIssuer, SubjectRegExp: "release(.yml"},
			}}),
			/* 3 */ keyless(v1alpha1.KeylessAuthority{}),
			/* 4 */ keyless(v1alpha1.KeylessAuthority{Roots: roots, TrustedRoot: &v1alpha1.DataSource{Data: tr.trustedRoot}}),
			/* 5 */ keyless(v1alpha1.KeylessAuthority{Roots: &v1alpha1.DataSource{Data: "not a certificate"}, Intermediates: &v1alpha1.DataSource{Data: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}, Rekor: rekor}),
			/* 6 */ keyless(v1alpha1.KeylessAuthority{Roots: &v1alpha1.DataSource{Data: string(leaf.PEM)}, Rekor: rekor}),
			/* 7 */ keyless(v1alpha1.KeylessAuthority{Roots: roots}),
			/* 8 */ keyless(v1alpha1.KeylessAuthority{Roots: roots, Rekor: rekor, IgnoreTlog: true}),
			/* 9 */ keyless(v1alpha1.KeylessAuthority{Roots: roots, Rekor: &v1alpha1.RekorAuthority{PublicKey: v1alpha1.DataSource{Data: "not a key"}}}),
			/* 10 */ keyless(v1alpha1.KeylessAuthority{Roots: roots, Rekor: &v1alpha1.RekorAuthority{PublicKey: v1alpha1.DataSource{Data: edKey}}}),
			/* 11 */ keyless(v1alpha1.KeylessAuthority{TrustedRoot: &v1alpha1.DataSource{Data: `{"mediaType": "nonsense"`}}),
			/* 12 */ keyless(v1alpha1.KeylessAuthority{TrustedRoot: &v1alpha1.DataSource{Data: string(noLog)}}),
			/* 13 */ keyless(v1alpha1.KeylessAuthority{TrustedRoot: &v1alpha1.DataSource{Data: tr.trustedRoot}, Intermediates: roots, Rekor: rekor}),
			/* 14 */ keyless(v1alpha1.KeylessAuthority{TrustedRoot: &v1alpha1.DataSource{SecretRef: &v1alpha1.SecretKeyRef{Namespace: "tollgate-system", Name: "sigstore", Key: "trusted_root.json"}}}),
			/* 15 */ keyless(v1alpha1.KeylessAuthority{Roots: &v1alpha1.DataSource{Data: "x", SecretRef: &v1alpha1.SecretKeyRef{Name: "s"}}, Rekor: &v1alpha1.RekorAuthority{}}),
			/* 16 */ attested(
				v1alpha1.Attestation{PredicateType: "vuln"},
				v1alpha1.Attestation{Name: "twice", PredicateType: "vuln"},
				v1alpha1.Attestation{Name: "twice", PredicateType: "not a uri"},
				v1alpha1.Attestation{Name: "parse", PredicateType: "vuln", Policy: "package p\n\ndeny contains msg if {\n  msg := \n}\n"},
				v1alpha1.Attestation{Name: "no-deny", PredicateType: "vuln", Policy: "package p\n\nallow := true\n"},
				v1alpha1.Attestation{Name: "boolean", PredicateType: "vuln", Policy: "package p\n\ndeny := true\n"},
				v1alpha1.Attestation{Name: "network", PredicateType: "vuln", Policy: "package p\n\ndeny contains msg if {\n  resp := http.send({\"method\": \"get\", \"url\": \"https://example.com\"})\n  msg := resp.body\n}\n"},
				v1alpha1.Attestation{Name: "unsafe", PredicateType: "vuln", Policy: "package p\n\n\ndeny contains msg if {\n  x == 1\n  msg := \"m\"\n}\n"},
			),
		},
	}}}, secrets)
	for _, want := range []string{
		"spec.images[0].authorities[0]: set key or keyless, not both",
		"spec.images[0].authorities[1].keyless.identities: at least one is required",
		"spec.images[0].authorities[2].keyless.identities[0]: set issuer or issuerRegExp",
		"spec.images[0].authorities[2].keyless.identities[1]: set subject or subjectRegExp",
		"spec.images[0].authorities[2].keyless.identities[2]: set issuer or issuerRegExp, not both",
		"spec.images[0].authorities[2].keyless.identities[3].subjectRegExp: error parsing regexp: missing closing ): `release(.yml`",
		"spec.images[0].authorities[3].keyless: set roots or trustedRoot",
		"spec.images[0].authorities[4].keyless: set roots or trustedRoot, not both",
		"spec.images[0].authorities[5].keyless.roots: not PEM certificates",
		"spec.images[0].authorities[5].keyless.intermediates: not PEM certificates",
		"spec.images[0].authorities[6].keyless.roots: certificate 1 is not a CA certificate",
		"spec.images[0].authorities[7].keyless.rekor: required with roots (signatures are checked against the transparency log), or set ignoreTlog",
		"spec.images[0].authorities[8].keyless.rekor: unused with ignoreTlog",
		"spec.images[0].authorities[9].keyless.rekor.publicKey: not a PEM public key",
		"spec.images[0].authorities[10].keyless.rekor.publicKey: a ed25519.PublicKey; Rekor signs with ECDSA keys",
		"spec.images[0].authorities[11].keyless.trustedRoot: not a sigstore trusted root",
		"spec.images[0].authorities[12].keyless.trustedRoot: names no transparency log; add one, or set ignoreTlog",
		"spec.images[0].authorities[13].keyless.intermediates: give intermediates in the trusted root",
		"spec.images[0].authorities[13].keyless.rekor: give the transparency log in the trusted root",
		"spec.images[0].authorities[14].keyless.trustedRoot.secretRef: secret tollgate-system/sigstore: not found",
		"spec.images[0].authorities[15].keyless.roots: set data or secretRef, not both",
		"spec.images[0].authorities[15].keyless.rekor.publicKey: set data or secretRef",
		"spec.images[0].authorities[16].attestations[0].name: required",
		`spec.images[0].authorities[16].attestations[2].name: "twice" is listed twice`,
		`spec.images[0].authorities[16].attestations[2].predicateType: "not a uri": want a URI (https://slsa.dev/provenance/v1) or one of vuln,`,
		"spec.images[0].authorities[16].attestations[3].policy:5: rego_parse_error: unexpected } token",
		"spec.images[0].authorities[16].attestations[4].policy: defines no deny rule (deny contains msg if {...})",
		"spec.images[0].authorities[16].attestations[5].policy:3: deny must be a set of messages",
		"spec.images[0].authorities[16].attestations[6].policy:4: rego_type_error: undefined function http.send",
		"spec.images[0].authorities[16].attestations[7].policy:5: rego_unsafe_var_error: var x is unsafe",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
}

// TestSecretRotationIsANewPolicy: a policy whose key lives in a Secret
// gets a new identity when the Secret's content changes, so verdicts
// cached under the old key do not answer for the new one.
func TestSecretRotationIsANewPolicy(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	d := f.push(t, "team/app", "1.0", f.release)
	spec := v1alpha1.ImagePolicySpec{Images: []v1alpha1.ImageRule{{Glob: f.reg.Host() + "/**", Authorities: []v1alpha1.Authority{
		{Name: "release", Key: &v1alpha1.KeyAuthority{SecretRef: &v1alpha1.SecretKeyRef{Namespace: "tollgate-system", Name: "release", Key: "cosign.pub"}}},
	}}}}
	compile := func(pem string) *imagesig.Policy {
		p, err := imagesig.Compile(ctx, spec, func(context.Context, v1alpha1.SecretKeyRef) ([]byte, error) { return []byte(pem), nil })
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if res, err := f.verifier.Verify(ctx, compile(f.release.pem), d.String(), nil); err != nil || !res.Verified {
		t.Fatalf("before the rotation: %+v %v", res, err)
	}
	res, err := f.verifier.Verify(ctx, compile(f.second.pem), d.String(), nil)
	if err != nil || res.Verified || res.Cached {
		t.Fatalf("after the rotation: %+v %v", res, err)
	}
}
