package imagesig_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/policies/imagesig"
	"github.com/tollgate-dev/tollgate/test/registry"
)

// TestExamplePolicy runs the example policy in testdata/policy.yaml (a
// key authority, a keyless one with Fulcio roots and a Rekor key and two
// attestations with Rego policies, a keyless one with a trusted root in a
// Secret) against images signed each way.
func TestExamplePolicy(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tr, platform := newTrust(t), newTrust(t)
	tmpl, err := template.New("policy.yaml").Funcs(template.FuncMap{
		"indent": func(n int, s string) string {
			pad := strings.Repeat(" ", n)
			return pad + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+pad)
		},
	}).Parse(testdata(t, "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc bytes.Buffer
	if err := tmpl.Execute(&doc, map[string]string{
		"Host":             f.reg.Host(),
		"ReleaseKey":       f.release.pem,
		"FulcioRoot":       string(tr.ca.RootPEM()),
		"RekorKey":         string(tr.rekor.PublicKeyPEM()),
		"VulnPolicy":       testdata(t, "vuln.rego"),
		"ProvenancePolicy": testdata(t, "provenance.rego"),
	}); err != nil {
		t.Fatal(err)
	}
	var obj v1alpha1.TollgateImagePolicy
	if err := yaml.UnmarshalStrict(doc.Bytes(), &obj); err != nil {
		t.Fatalf("%v\n%s", err, doc.String())
	}
	secrets := func(_ context.Context, ref v1alpha1.SecretKeyRef) ([]byte, error) {
		if ref != (v1alpha1.SecretKeyRef{Namespace: "tollgate-system", Name: "sigstore-trusted-root", Key: "trusted_root.json"}) {
			return nil, fmt.Errorf("secret %s/%s: not found", ref.Namespace, ref.Name)
		}
		return []byte(platform.trustedRoot), nil
	}
	p, err := imagesig.Compile(ctx, obj.Spec, secrets)
	if err != nil {
		t.Fatal(err)
	}

	signedNow := time.Now().Add(-time.Minute)
	ci := registry.SignOptions{Cert: tr.issue(t, releaseIdentity, signedNow), Rekor: tr.rekor}
	byKey := f.push(t, "team/by-key", "1.0", f.release)
	byCI := f.signed(t, "team/by-ci", ci)
	attest(t, byCI, ci, vulnType, testdata(t, "trivy-clean.json"), slsaV1, testdata(t, "slsa-provenance.json"))
	vulnerable := f.signed(t, "team/vulnerable", ci)
	attest(t, vulnerable, ci, vulnType, testdata(t, "trivy-critical.json"), slsaV1, testdata(t, "slsa-provenance.json"))
	bot := registry.SignOptions{Cert: platform.issue(t, registry.Identity{Issuer: "https://dex.corp.example", Subject: "platform-bot@corp.example"}, signedNow), Rekor: platform.rekor}
	tool := f.signed(t, "platform/tool", bot)
	toolByCI := f.signed(t, "platform/by-ci", ci)

	f.verifier = imagesig.NewVerifier(imagesig.Options{Insecure: true, Now: func() time.Time { return time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC) }})
	for _, tc := range []struct {
		name   string
		d      name.Digest
		expect verdict
		passed string
	}{
		{"signed by the release key", byKey, verdict{verified: true}, "release-key"},
		{"built by CI, scanned clean, with provenance", byCI, verdict{verified: true}, "ci"},
		{"built by CI with a CRITICAL finding", vulnerable, verdict{reason: "ci: attestation no-critical-vulnerabilities denied: CRITICAL CVE-2024-3094"}, ""},
		{"a platform tool signed by the platform bot", tool, verdict{verified: true}, "platform"},
		{"a platform tool signed by CI", toolByCI, verdict{reason: "platform: the certificate's subject"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := f.expect(t, p, tc.d, tc.expect)
			if tc.passed != "" && (len(res.Passed) != 1 || res.Passed[0] != tc.passed) {
				t.Errorf("passed %v, want %s", res.Passed, tc.passed)
			}
		})
	}
}
