package cli

import (
	"fmt"
	"strings"
	"testing"
)

// imagePolicyYAML trusts pem for host/team/**, and denies everything else.
func imagePolicyYAML(host string, pem []byte) string {
	indented := "              " + strings.ReplaceAll(strings.TrimSpace(string(pem)), "\n", "\n              ")
	return fmt.Sprintf(`apiVersion: tollgate.dev/v1alpha1
kind: TollgateImagePolicy
metadata: {name: corp-images}
spec:
  unmatched: deny
  images:
    - glob: %s/team/**
      authorities:
        - name: release
          key:
            data: |
%s
`, host, indented)
}

func podManifest(name string, images ...string) string {
	var cs []string
	for i, img := range images {
		cs = append(cs, fmt.Sprintf("    - {name: c%d, image: %q, securityContext: {runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}, seccompProfile: {type: RuntimeDefault}}, resources: {requests: {cpu: 10m, memory: 16Mi}, limits: {cpu: 100m, memory: 64Mi}}}", i, img))
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: shop, labels: {team: payments, owner: alice, cost-center: CC-1}}
spec:
  containers:
%s
`, name, strings.Join(cs, "\n"))
}

func TestCheckImagePolicies(t *testing.T) {
	reg, pem, _ := signedRegistry(t)
	host := reg.Host()
	dir := t.TempDir()
	write(t, dir, "policy.yaml", imagePolicyYAML(host, pem))
	pod := write(t, dir, "pod.yaml", podManifest("web", host+"/team/app:1.0", host+"/team/unsigned:1.0", "docker.io/library/nginx:1.27"))

	// --verify-images: the unsigned image fails, the signed one passes.
	code, out, stderr := run(t, "", "check", "--verify-images", "--insecure-registry", "--image-policy", dir+"/policy.yaml", pod)
	if code != ExitFindings {
		t.Fatalf("verify: exit %d\n%s%s", code, out, stderr)
	}
	if !strings.Contains(out, "spec.containers[1].image") || !strings.Contains(out, "release: no signatures found") {
		t.Errorf("verify output lacks the unsigned image:\n%s", out)
	}
	findings, injected, _ := strings.Cut(out, "admission would inject")
	if strings.Contains(findings, "spec.containers[0].image") {
		t.Errorf("the signed image was reported:\n%s", out)
	}
	// The signed image is pinned to the digest it verified, as admission
	// pins it; the unsigned one is not.
	if !strings.Contains(injected, "~ spec.containers[0].image: \""+host+"/team/app:1.0@sha256:") || strings.Contains(injected, "spec.containers[1].image") {
		t.Errorf("the signed image is not pinned in the mutations:\n%s", out)
	}

	// Offline: only the image no rule matches is judged; no registry is
	// called (it is stopped now: a call would report the matched images).
	if err := reg.Stop(); err != nil {
		t.Fatal(err)
	}
	code, out, stderr = run(t, "", "check", dir)
	if code != ExitFindings {
		t.Fatalf("offline: exit %d\n%s%s", code, out, stderr)
	}
	for _, want := range []string{
		"image-policy/corp-images", "spec.containers[2].image", "no rule of the image policy matches docker.io/library/nginx",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("offline output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "spec.containers[1].image") {
		t.Errorf("offline check judged a matched image without the registry:\n%s", out)
	}

	// Bad input: a malformed image policy is a problem with its file and line.
	bad := write(t, t.TempDir(), "bad.yaml", "apiVersion: tollgate.dev/v1alpha1\nkind: TollgateImagePolicy\nmetadata: {name: bad}\nspec:\n  images:\n  - glob: \"\"\n    authorities: []\n")
	code, out, stderr = run(t, "", "check", "--image-policy", bad, pod)
	if code != ExitUsage || !strings.Contains(out+stderr, "bad.yaml:1") || !strings.Contains(out+stderr, "spec.images[0].glob") {
		t.Errorf("malformed image policy: exit %d\n%s%s", code, out, stderr)
	}
	code, out, stderr = run(t, "", "check", "--image-policy", pod, pod)
	if code != ExitUsage || !strings.Contains(out+stderr, "no TollgateImagePolicy") {
		t.Errorf("a file without an image policy: exit %d\n%s%s", code, out, stderr)
	}
}
