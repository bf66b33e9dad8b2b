package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/cosign/v2/pkg/cosign"

	"github.com/tollgate-dev/tollgate/test/cluster"
	"github.com/tollgate-dev/tollgate/test/docexample"
	"github.com/tollgate-dev/tollgate/test/registry"
)

const corpRegistryRego = `# METADATA
# title: Images from the corporate registry
# custom:
#   id: corp-registry
#   severity: high
#   scope: pod
package corp.registry

violation contains {"msg": sprintf("image %q is not from %s", [c.image, data.corp.settings.registry]), "path": ["spec", "containers", i, "image"]} if {
	some i, c in input.pod.spec.containers
	not startswith(c.image, concat("", [data.corp.settings.registry, "/"]))
}
`

// keyPair writes an encrypted cosign key pair, as cosign
// generate-key-pair does, and returns the key files.
func keyPair(t *testing.T, dir, name, password string) (key, pub string) {
	t.Helper()
	kp, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return []byte(password), nil })
	if err != nil {
		t.Fatal(err)
	}
	return write(t, dir, name+".key", string(kp.PrivateBytes)), write(t, dir, name+".pub", string(kp.PublicBytes))
}

// TestPolicyPushSignVerifyCheck pushes a policy set to the real registry,
// signs it with an encrypted cosign key, verifies it, and judges a
// manifest with it: a set not signed by the trusted key is refused.
func TestPolicyPushSignVerifyCheck(t *testing.T) {
	reg, err := registry.Start(context.Background(), registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Stop()
	dir := t.TempDir()
	set := filepath.Join(dir, "policies")
	write(t, set, "registry/registry.rego", corpRegistryRego)
	write(t, set, "data.json", `{"corp":{"settings":{"registry":"registry.corp.example"}}}`)
	write(t, set, "README.md", "# platform policies\n")
	keyPair(t, dir, "cosign", "s3cret")
	keyPair(t, dir, "other", "other")
	t.Setenv("COSIGN_PASSWORD", "s3cret")
	ref := "oci://" + reg.Host() + "/platform/policies:v1"
	pod := `apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop}
spec:
  containers: [{name: web, image: docker.io/library/nginx:1.27}]
`
	write(t, dir, "pod.yaml", pod)
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	// In the directory, with the paths docs/policy-distribution.md shows.
	t.Chdir(dir)
	const key, pub, otherPub = "cosign.key", "cosign.pub", "other.pub"
	var transcript strings.Builder
	step := func(want int, args ...string) (string, string) {
		t.Helper()
		code, out, stdout, stderr := terminal(t, "", args...)
		if code != want {
			t.Fatalf("exit %d, want %d\n%s", code, want, out)
		}
		if transcript.Len() > 0 {
			transcript.WriteString("\n")
		}
		transcript.WriteString(out)
		return stdout, stderr
	}

	out, errs := step(0, "policy", "push", "policies", ref)
	digest := strings.TrimSpace(out)
	if !strings.HasPrefix(digest, reg.Host()+"/platform/policies@sha256:") || !strings.Contains(errs, "packed 1 Rego modules, 1 data files, 0 objects") || !strings.Contains(errs, "skipped README.md") {
		t.Fatalf("push printed %q, %q", out, errs)
	}

	// Unsigned: refused by verify and by check.
	if _, errs = step(ExitUsage, "policy", "verify", "--key", pub, ref); !strings.Contains(errs, "is not signed: no signature found") {
		t.Fatalf("verify unsigned: %s", errs)
	}
	if out, errs = step(0, "policy", "sign", "--key", key, ref); strings.TrimSpace(out) != "signed "+digest {
		t.Fatalf("sign: %q %s", out, errs)
	}
	if out, errs = step(0, "policy", "verify", "--key", pub, ref); !strings.HasPrefix(out, "verified "+digest+" (revision sha256:") {
		t.Fatalf("verify: %q %s", out, errs)
	}
	if _, errs = step(ExitUsage, "policy", "verify", "--key", otherPub, ref); !strings.Contains(errs, "none by a trusted key") {
		t.Fatalf("verify with another key: %s", errs)
	}
	docexample.Check(t, root, "policy-push-sign-verify", transcript.String())

	// A wrong password names the fix.
	t.Setenv("COSIGN_PASSWORD", "wrong")
	if code, _, errs := run(t, "", "policy", "sign", "--key", key, ref); code != ExitUsage || !strings.Contains(errs, "is COSIGN_PASSWORD set?") {
		t.Fatalf("sign with a wrong password: %d %s", code, errs)
	}

	code, r, errs := checkJSON(t, pod, "--no-builtin", "--policy-source", ref, "--policy-source-key", pub, "-")
	if code != ExitFindings || len(r.Results) != 1 || r.Results[0].Policy != "corp-registry" ||
		r.Results[0].Message != `image "docker.io/library/nginx:1.27" is not from registry.corp.example` {
		t.Fatalf("check: %d %+v %s", code, r.Results, errs)
	}
	if !strings.Contains(errs, "policy set sha256:") {
		t.Errorf("check does not say which set judged: %s", errs)
	}
	code, out, _, _ = terminal(t, "", "check", "--no-builtin", "--policy-source", ref, "--policy-source-key", pub, "pod.yaml")
	if code != ExitFindings {
		t.Fatalf("check text: %d\n%s", code, out)
	}
	docexample.Check(t, root, "policy-check-source", out)
	code, _, errs = run(t, pod, "check", "--policy-source", ref, "--policy-source-key", otherPub, "-")
	if code != ExitUsage || !strings.Contains(errs, "none by a trusted key") {
		t.Fatalf("check with another key: %d %s", code, errs)
	}
	if code, _, errs = run(t, "", "policy", "push", "nope", ref); code != ExitUsage || !strings.Contains(errs, "no such file") {
		t.Fatalf("push a missing directory: %d %s", code, errs)
	}
	if code, _, errs = run(t, "", "policy", "push", "policies", "oci://"+reg.Host()+"/platform/policies@"+strings.Split(digest, "@")[1]); code != ExitUsage || !strings.Contains(errs, "push to a tag") {
		t.Fatalf("push to a digest: %d %s", code, errs)
	}
}
