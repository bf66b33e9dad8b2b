package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/tollgate-dev/tollgate/test/cluster"
	"github.com/tollgate-dev/tollgate/test/docexample"
	"github.com/tollgate-dev/tollgate/test/registry"
)

// signedRegistry starts a real registry holding team/app:1.0 signed by a
// new key and team/unsigned:1.0; it returns the registry, the key's PEM and
// the signed digest.
func signedRegistry(t *testing.T) (*registry.Registry, []byte, name.Digest) {
	t.Helper()
	reg, err := registry.StartSigned(context.Background(), "team/app", "team/unsigned")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Stop() })
	return reg.Registry, reg.KeyPEM, reg.Image
}

// TestVerifyImage: a signed image passes, pinned to its digest; an unsigned
// one and one no rule matches fail, as docs/images.md shows them.
func TestVerifyImage(t *testing.T) {
	ctx := context.Background()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.Start(ctx, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Stop() })
	key, pem, err := registry.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	signed, err := reg.PushRandom(ctx, "payments/web", "1.4.2")
	if err != nil {
		t.Fatal(err)
	}
	if err := registry.Sign(ctx, signed, key); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.PushRandom(ctx, "payments/worker", "2.0.0"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile := write(t, dir, "release.pub", string(pem))
	indented := "              " + strings.ReplaceAll(strings.TrimSpace(string(pem)), "\n", "\n              ")
	policy := write(t, dir, "corp-images.yaml", fmt.Sprintf(`apiVersion: tollgate.dev/v1alpha1
kind: TollgateImagePolicy
metadata: {name: corp-images}
spec:
  mode: Enforce
  unmatched: deny
  images:
    - glob: %s/payments/**
      authorities:
        - name: release-key
          key:
            data: |
%s
`, reg.Host(), indented))
	good, bad, unmatched := reg.Host()+"/payments/web:1.4.2", reg.Host()+"/payments/worker:2.0.0", reg.Host()+"/search/api:3.1"

	code, out, stderr := run(t, "", "verify-image", "--insecure-registry", "--policy", policy, good)
	if code != ExitOK || !strings.Contains(out, "✓ "+good) || !strings.Contains(out, "pinned   "+good+"@"+signed.DigestStr()) || !strings.Contains(out, "signed   by release-key") {
		t.Fatalf("signed image: exit %d\n%s%s", code, out, stderr)
	}
	// From the policy's directory, as docs/images.md shows it.
	t.Chdir(dir)
	code, out, stderr = run(t, "", "verify-image", "--insecure-registry", "--policy", "corp-images.yaml", good, bad, unmatched)
	for _, want := range []string{"✓ " + good, "✗ " + bad, "release-key: no signatures found", "✗ " + unmatched, "no rule of the image policy matches"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if code != ExitFindings {
		t.Errorf("exit %d, want %d when an image fails", code, ExitFindings)
	}
	transcript := "$ tollgate verify-image --insecure-registry --policy corp-images.yaml \\\n    " + good + " " + bad + " " + unmatched + "\n" + out + stderr
	docexample.Check(t, root, "images-verify-image", transcript)
	code, out, _ = run(t, "", "verify-image", "--insecure-registry", "--key", keyFile, "--format", "json", good)
	var results []map[string]any
	if err := json.Unmarshal([]byte(out), &results); err != nil || code != ExitOK || results[0]["verified"] != true {
		t.Fatalf("json: exit %d %v\n%s", code, err, out)
	}

	// Bad input: each a usage error naming what is wrong.
	notPolicy := write(t, dir, "deployment.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n")
	typo := write(t, dir, "typo.yaml", "apiVersion: tollgate.dev/v1alpha1\nkind: TollgateImagePolicy\nspec: {imagez: []}\n")
	badKey := write(t, dir, "bad.pub", "not a key")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"verify-image", good}, "give exactly one of --policy and --key"},
		{[]string{"verify-image", "--policy", policy, "--key", keyFile, good}, "give exactly one of --policy and --key"},
		{[]string{"verify-image", "--policy", "/nonexistent.yaml", good}, "--policy: open /nonexistent.yaml"},
		{[]string{"verify-image", "--policy", notPolicy, good}, "want apiVersion tollgate.dev/v1alpha1, kind TollgateImagePolicy"},
		{[]string{"verify-image", "--policy", typo, good}, `unknown field "imagez"`},
		{[]string{"verify-image", "--key", badKey, good}, "spec.images[0].authorities[0].key: not a PEM public key"},
		{[]string{"verify-image", "--key", keyFile, "--format", "xml", good}, `--format "xml": want text or json`},
		{[]string{"verify-image", "--key", keyFile}, "requires at least 1 arg"},
	} {
		code, _, stderr := run(t, "", tc.args...)
		if code != ExitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d %q, want %d and %q", tc.args, code, stderr, ExitUsage, tc.want)
		}
	}
	// A malformed image reference is a failed image, named, not a crash.
	code, out, _ = run(t, "", "verify-image", "--insecure-registry", "--key", keyFile, "UPPER/Case:tag")
	if code != ExitFindings || !strings.Contains(out, `image "UPPER/Case:tag"`) {
		t.Errorf("malformed reference: exit %d\n%s", code, out)
	}
}

// TestVerifyImageAttestations: an authority requiring a vulnerability
// attestation; verify-image shows each attestation that passed, and the
// policy's messages under one that failed.
func TestVerifyImageAttestations(t *testing.T) {
	ctx := context.Background()
	reg, err := registry.Start(ctx, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Stop()
	sv, pem, err := registry.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	const vulnType = "https://cosign.sigstore.dev/attestation/vuln/v1"
	push := func(repo string, severity string) string {
		d, err := reg.PushRandom(ctx, repo, "1.0")
		if err != nil {
			t.Fatal(err)
		}
		if err := registry.Sign(ctx, d, sv); err != nil {
			t.Fatal(err)
		}
		scan := fmt.Sprintf(`{"scanner":{"uri":"pkg:github/aquasecurity/trivy","version":"0.50.0","result":{"Results":[{"Target":"app","Vulnerabilities":[{"VulnerabilityID":"CVE-2024-3094","PkgName":"liblzma5","Severity":%q}]}]}}}`, severity)
		if err := registry.Attest(ctx, d, vulnType, []byte(scan), registry.SignOptions{Key: sv}); err != nil {
			t.Fatal(err)
		}
		return reg.Host() + "/" + repo + ":1.0"
	}
	clean, critical := push("team/clean", "LOW"), push("team/critical", "CRITICAL")
	indent := func(n int, s string) string {
		pad := strings.Repeat(" ", n)
		return pad + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n"+pad)
	}
	policy := write(t, t.TempDir(), "policy.yaml", fmt.Sprintf(`apiVersion: tollgate.dev/v1alpha1
kind: TollgateImagePolicy
metadata: {name: corp}
spec:
  images:
    - glob: %s/team/**
      authorities:
        - name: release
          key:
            data: |
%s
          attestations:
            - name: vulnerabilities
              predicateType: vuln
              policy: |
%s
`, reg.Host(), indent(14, string(pem)), indent(16, `package vulns

deny contains msg if {
	some r in input.predicate.scanner.result.Results
	some v in r.Vulnerabilities
	v.Severity == "CRITICAL"
	msg := sprintf("%s %s in %s", [v.Severity, v.VulnerabilityID, v.PkgName])
}`)))

	code, out, stderr := run(t, "", "verify-image", "--insecure-registry", "--policy", policy, clean, critical)
	if code != ExitFindings {
		t.Errorf("exit %d, want %d\n%s%s", code, ExitFindings, out, stderr)
	}
	for _, want := range []string{
		"✓ " + clean + "\n",
		"    attested release/vulnerabilities (" + vulnType + ")\n",
		"✗ " + critical + "\n",
		"    failed   release/vulnerabilities (" + vulnType + ")\n               CRITICAL CVE-2024-3094 in liblzma5\n",
		"reason   " + reg.Host() + "/team/critical@sha256:",
		"does not satisfy any one of the rule's authorities (release: attestation vulnerabilities denied: CRITICAL CVE-2024-3094 in liblzma5)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	code, out, _ = run(t, "", "verify-image", "--insecure-registry", "--policy", policy, "--format", "json", critical)
	var results []struct {
		Verified     bool `json:"verified"`
		Attestations []struct {
			Name   string   `json:"name"`
			Passed bool     `json:"passed"`
			Denied []string `json:"denied"`
		} `json:"attestations"`
	}
	if err := json.Unmarshal([]byte(out), &results); err != nil || code != ExitFindings || len(results) != 1 {
		t.Fatalf("json: exit %d %v\n%s", code, err, out)
	}
	if r := results[0]; r.Verified || len(r.Attestations) != 1 || r.Attestations[0].Passed ||
		len(r.Attestations[0].Denied) != 1 || r.Attestations[0].Denied[0] != "CRITICAL CVE-2024-3094 in liblzma5" {
		t.Errorf("json result: %+v", r)
	}
}
