package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/sigstore/pkg/signature"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/test/cluster"
	"github.com/tollgate-dev/tollgate/test/docexample"
	"github.com/tollgate-dev/tollgate/test/registry"
)

// imageFixture is a real registry on loopback.
type imageFixture struct {
	reg  *registry.Registry
	host string
}

// registryKeyPair is a cosign key pair.
type registryKeyPair struct {
	sv  *signature.ECDSASignerVerifier
	pem []byte
}

func newKeyPair(t *testing.T) registryKeyPair {
	t.Helper()
	sv, pem, err := registry.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return registryKeyPair{sv, pem}
}

func newImageFixture(t *testing.T) *imageFixture {
	t.Helper()
	reg, err := registry.Start(context.Background(), registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Stop() })
	return &imageFixture{reg: reg, host: reg.Host()}
}

// imagePolicy is a TollgateImagePolicy trusting pem for glob.
func imagePolicy(name, glob, pem, mode string) string {
	return fmt.Sprintf(`apiVersion: tollgate.dev/v1alpha1
kind: TollgateImagePolicy
metadata: {name: %s}
spec:
  mode: %s
  unmatched: allow
  images:
  - glob: %q
    authorities:
    - name: release-key
      key:
        data: %q
`, name, mode, glob, pem)
}

func waitImagePolicyReady(t *testing.T, name string) {
	t.Helper()
	eventually(t, 30*time.Second, func() error {
		var p v1alpha1.TollgateImagePolicy
		if err := env.client.Get(context.Background(), client.ObjectKey{Name: name}, &p); err != nil {
			return err
		}
		for _, c := range p.Status.Conditions {
			if c.Type == v1alpha1.ConditionReady && c.ObservedGeneration == p.Generation {
				if c.Status != metav1.ConditionTrue {
					return fmt.Errorf("not loaded: %s", c.Message)
				}
				return nil
			}
		}
		return fmt.Errorf("status %+v", p.Status)
	})
}

func imagePod(ns, name string, images ...string) string {
	var cs []string
	for i, img := range images {
		cs = append(cs, fmt.Sprintf(`{"name":"c%d","image":%q}`, i, img))
	}
	return fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":%q,"namespace":%q},"spec":{"containers":[%s]}}`,
		name, ns, strings.Join(cs, ","))
}

func push(t *testing.T, reg *registry.Registry, repo, tag string, signers ...registryKeyPair) name.Digest {
	t.Helper()
	d, err := reg.PushRandom(context.Background(), repo, tag)
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

// TestImageSignaturesInAdmission: the image policy through the real API
// server — signed images admitted and pinned to the digest that was
// verified, everything else denied with the reason.
func TestImageSignaturesInAdmission(t *testing.T) {
	ctx := context.Background()
	f := newImageFixture(t)
	release, stranger := newKeyPair(t), newKeyPair(t)
	host := f.host
	signed := push(t, f.reg, "team/app", "1.0", release)
	push(t, f.reg, "team/unsigned", "1.0")
	push(t, f.reg, "team/foreign", "1.0", stranger)
	push(t, f.reg, "team/moved", "1.0", release)
	movedUnsigned := push(t, f.reg, "team/moved", "2.0")

	if _, stderr, err := apply(t, imagePolicy("signed-team-images", host+"/team/**", string(release.pem), "Enforce")); err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	t.Cleanup(func() { kubectl(t, "delete", "tollgateimagepolicy", "signed-team-images", "--ignore-not-found") })
	waitImagePolicyReady(t, "signed-team-images")
	teamNamespace(t, "images")

	t.Run("signed by the right key: admitted and pinned", func(t *testing.T) {
		deploy := fmt.Sprintf(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"images"},
		 "spec":{"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},
		 "spec":{"initContainers":[{"name":"init","image":%q}],"containers":[{"name":"app","image":%q}]}}}}`,
			host+"/team/app:1.0", host+"/team/app:1.0")
		eventually(t, 30*time.Second, func() error {
			_, stderr, err := apply(t, deploy)
			if err != nil {
				return fmt.Errorf("%w: %s", err, stderr)
			}
			return nil
		})
		want := host + "/team/app:1.0@" + signed.DigestStr()
		got := kubectl(t, "get", "deployment", "web", "-n", "images", "-o", "jsonpath={.spec.template.spec.initContainers[0].image} {.spec.template.spec.containers[0].image}")
		if got != want+" "+want {
			t.Fatalf("images %q, want both pinned to %s", got, want)
		}
		ann := kubectl(t, "get", "deployment", "web", "-n", "images", "-o", `jsonpath={.metadata.annotations.tollgate\.dev/injected}`)
		if !strings.Contains(ann, `"images":["`+want+`"]`) {
			t.Errorf("injected annotation %s does not list the pinned image", ann)
		}
		// Applied again, the manifest's tag is pinned to the same digest:
		// the template does not change, so nothing rolls out.
		gen := kubectl(t, "get", "deployment", "web", "-n", "images", "-o", "jsonpath={.metadata.generation}")
		if _, stderr, err := apply(t, deploy); err != nil {
			t.Fatalf("%v: %s", err, stderr)
		}
		if again := kubectl(t, "get", "deployment", "web", "-n", "images", "-o", "jsonpath={.metadata.generation}"); again != gen {
			t.Errorf("re-applying the same manifest changed the generation %s -> %s", gen, again)
		}
	})

	denied := []struct{ name, image, want string }{
		{"unsigned", host + "/team/unsigned:1.0", "release-key: no signatures found"},
		{"signed by another key", host + "/team/foreign:1.0", "release-key: no signature matches its key"},
		{"tag@digest: the digest is what is verified", host + "/team/moved:1.0@" + movedUnsigned.DigestStr(), movedUnsigned.DigestStr() + " is not signed"},
	}
	for i, tc := range denied {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, err := apply(t, imagePod("images", fmt.Sprintf("denied-%d", i), tc.image))
			if err == nil {
				t.Fatalf("admitted %s", tc.image)
			}
			if !strings.Contains(stderr, "[image-policy/signed-team-images] spec.containers[0].image:") || !strings.Contains(stderr, tc.want) {
				t.Fatalf("denial does not say %q:\n%s", tc.want, stderr)
			}
		})
	}

	t.Run("a user-set verified annotation is not trusted", func(t *testing.T) {
		image := host + "/team/unsigned:1.0"
		pod := fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"forged","namespace":"images",
		 "annotations":{"tollgate.dev/injected":"{\"images\":[\"%s\"]}","tollgate.dev/verified":"true"}},
		 "spec":{"containers":[{"name":"c","image":%q}]}}`, image, image)
		_, stderr, err := apply(t, pod)
		if err == nil || !strings.Contains(stderr, "no signatures found") {
			t.Fatalf("forged annotation: %v\n%s", err, stderr)
		}
	})

	t.Run("a tag moved to an unsigned image between two admissions", func(t *testing.T) {
		first := push(t, f.reg, "team/rolling", "stable", release)
		if _, stderr, err := apply(t, imagePod("images", "before-move", host+"/team/rolling:stable")); err != nil {
			t.Fatalf("%v: %s", err, stderr)
		}
		if got := kubectl(t, "get", "pod", "before-move", "-n", "images", "-o", "jsonpath={.spec.containers[0].image}"); got != host+"/team/rolling:stable@"+first.DigestStr() {
			t.Fatalf("pinned %s", got)
		}
		moved := push(t, f.reg, "team/rolling", "stable") // unsigned, same tag
		_, stderr, err := apply(t, imagePod("images", "after-move", host+"/team/rolling:stable"))
		if err == nil || !strings.Contains(stderr, "no signatures found") {
			t.Fatalf("after the tag moved to %s: %v\n%s", moved.DigestStr(), err, stderr)
		}
	})

	t.Run("the same image in 8 containers is resolved and verified once", func(t *testing.T) {
		push(t, f.reg, "team/eight", "1.0", release)
		image := host + "/team/eight:1.0"
		pod := imagePod("images", "eight", image, image, image, image, image, image, image, image)
		if _, stderr, err := apply(t, pod); err != nil {
			t.Fatalf("%v: %s", err, stderr)
		}
		if n := env.registryCalls.count("HEAD /v2/team/eight/manifests/1.0"); n != 1 {
			t.Errorf("the tag was resolved %d times, want once", n)
		}
		// The signature is read once (cosign reads the .sig manifest by tag).
		if n := env.registryCalls.count("GET /v2/team/eight/manifests/sha256-"); n != 1 {
			t.Errorf("the signature manifest was read %d times, want once (the validating webhook answers from the cache)", n)
		}
	})

	t.Run("kubectl debug with an unsigned image is denied", func(t *testing.T) {
		if _, stderr, err := apply(t, imagePod("images", "debug-target", host+"/team/app:1.0")); err != nil {
			t.Fatalf("%v: %s", err, stderr)
		}
		_, stderr, err := env.cluster.Kubectl(ctx, "debug", "debug-target", "-n", "images", "--image="+host+"/team/unsigned:1.0", "-c", "shell")
		if err == nil || !strings.Contains(stderr, "spec.ephemeralContainers[0].image") || !strings.Contains(stderr, "no signatures found") {
			t.Fatalf("unsigned debug container: %v\n%s", err, stderr)
		}
		if _, stderr, err := env.cluster.Kubectl(ctx, "debug", "debug-target", "-n", "images", "--image="+host+"/team/app:1.0", "-c", "signed-shell"); err != nil {
			t.Fatalf("signed debug container: %v\n%s", err, stderr)
		}
		got := kubectl(t, "get", "pod", "debug-target", "-n", "images", "-o", "jsonpath={.spec.ephemeralContainers[0].image}")
		if got != host+"/team/app:1.0@"+signed.DigestStr() {
			t.Errorf("debug container image %s: not pinned", got)
		}
	})
}

// TestImageRegistryDownOrSlow: a registry that is down or never answers
// gives a clear denial in Enforce mode and a warning in Warn mode, well
// within the webhook timeout.
func TestImageRegistryDownOrSlow(t *testing.T) {
	release := newKeyPair(t)
	// A registry that accepts connections and never answers.
	blackhole, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer blackhole.Close()
	go func() {
		for {
			c, err := blackhole.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	// A registry that is down: a port nothing listens on.
	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downHost := down.Addr().String()
	down.Close()
	slowHost := blackhole.Addr().String()
	teamNamespace(t, "images-down")

	policy := func(mode string) string {
		return fmt.Sprintf(`apiVersion: tollgate.dev/v1alpha1
kind: TollgateImagePolicy
metadata: {name: unreachable}
spec:
  mode: %s
  unmatched: allow
  images:
  - glob: %q
    authorities: [{name: release-key, key: {data: %q}}]
  - glob: %q
    authorities: [{name: release-key, key: {data: %q}}]
`, mode, downHost+"/**", release.pem, slowHost+"/**", release.pem)
	}
	t.Cleanup(func() { kubectl(t, "delete", "tollgateimagepolicy", "unreachable", "--ignore-not-found") })
	for _, mode := range []string{"Enforce", "Warn"} {
		if _, stderr, err := apply(t, policy(mode)); err != nil {
			t.Fatalf("%v: %s", err, stderr)
		}
		waitImagePolicyReady(t, "unreachable")
		for _, host := range []string{downHost, slowHost} {
			image := host + "/team/app:1.0"
			podName := fmt.Sprintf("%s-%s", strings.ToLower(mode), strings.ReplaceAll(strings.ReplaceAll(host, ".", "-"), ":", "-"))
			var stderr string
			var err error
			var took time.Duration
			eventually(t, 30*time.Second, func() error {
				start := time.Now()
				_, stderr, err = apply(t, imagePod("images-down", podName, image), "--dry-run=server")
				took = time.Since(start)
				if mode == "Warn" && err != nil && strings.Contains(stderr, "denied") {
					return fmt.Errorf("still the Enforce policy: %s", stderr) // the reload has not landed yet
				}
				return nil
			})
			t.Logf("%s, registry %s: answered in %s: %s", mode, host, took, strings.TrimSpace(stderr))
			switch mode {
			case "Enforce":
				if err == nil || !strings.Contains(stderr, "could not be verified") {
					t.Errorf("%s registry %s: %v\n%s", mode, host, err, stderr)
				}
			case "Warn":
				if err != nil || !strings.Contains(stderr, "Warning: tollgate: [image-policy/unreachable]") {
					t.Errorf("%s registry %s: %v\n%s", mode, host, err, stderr)
				}
			}
		}
	}
}

// TestImagePrivateRegistry: a registry that requires credentials is read
// with the pod's imagePullSecrets, or its service account's; without them
// the image cannot be verified and is denied.
func TestImagePrivateRegistry(t *testing.T) {
	ctx := context.Background()
	reg, err := registry.Start(ctx, registry.Options{Username: "robot", Password: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Stop() })
	release := newKeyPair(t)
	d, err := reg.PushRandom(ctx, "team/private", "1.0")
	if err != nil {
		t.Fatal(err)
	}
	if err := registry.SignWith(ctx, d, registry.SignOptions{Key: release.sv, Auth: reg.Auth()}); err != nil {
		t.Fatal(err)
	}
	host := reg.Host()
	image := host + "/team/private:1.0"
	if _, stderr, err := apply(t, imagePolicy("private-images", host+"/**", string(release.pem), "Enforce")); err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	t.Cleanup(func() { kubectl(t, "delete", "tollgateimagepolicy", "private-images", "--ignore-not-found") })
	waitImagePolicyReady(t, "private-images")
	teamNamespace(t, "images-private")
	auth := base64.StdEncoding.EncodeToString([]byte("robot:s3cret"))
	secret := fmt.Sprintf(`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"regcred","namespace":"images-private"},
	 "type":"kubernetes.io/dockerconfigjson","stringData":{".dockerconfigjson":"{\"auths\":{\"%s\":{\"auth\":\"%s\"}}}"}}`, host, auth)
	sa := `{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"builder","namespace":"images-private"},"imagePullSecrets":[{"name":"regcred"}]}`
	for _, m := range []string{secret, sa} {
		if _, stderr, err := apply(t, m); err != nil {
			t.Fatalf("%v: %s", err, stderr)
		}
	}

	_, stderr, err := apply(t, imagePod("images-private", "anonymous", image))
	if err == nil || !strings.Contains(stderr, "401 Unauthorized") || !strings.Contains(stderr, "the registry wants credentials") {
		t.Fatalf("without credentials: %v\n%s", err, stderr)
	}
	withSecret := strings.Replace(imagePod("images-private", "pull-secret", image), `"spec":{`, `"spec":{"imagePullSecrets":[{"name":"regcred"}],`, 1)
	withSA := strings.Replace(imagePod("images-private", "service-account", image), `"spec":{`, `"spec":{"serviceAccountName":"builder",`, 1)
	for name, pod := range map[string]string{"pull-secret": withSecret, "service-account": withSA} {
		if _, stderr, err := apply(t, pod); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, stderr)
		}
		if got := kubectl(t, "get", "pod", name, "-n", "images-private", "-o", "jsonpath={.spec.containers[0].image}"); got != image+"@"+d.DigestStr() {
			t.Errorf("%s: image %s, want it pinned", name, got)
		}
	}
}

// TestImageKeylessAndAttestations: a keyless authority (a test CA standing
// in for Fulcio, a test Rekor key) requiring a vulnerability attestation,
// through the real API server: the release workflow's clean image is
// admitted; a wrong subject, a CRITICAL finding, and a signature manifest
// of 5,000 layers are denied.
func TestImageKeylessAndAttestations(t *testing.T) {
	ctx := context.Background()
	f := newImageFixture(t)
	ca, err := registry.NewCA(true)
	if err != nil {
		t.Fatal(err)
	}
	rekor, err := registry.NewRekor()
	if err != nil {
		t.Fatal(err)
	}
	const issuer = "https://token.actions.githubusercontent.com"
	const subject = "https://github.com/corp/app/.github/workflows/release.yml@refs/tags/v1.4.0"
	issue := func(subject string) *registry.Cert {
		c, err := ca.Issue(registry.Identity{Issuer: issuer, Subject: subject}, time.Now().Add(-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	scan := func(severity string) []byte {
		now := time.Now().UTC().Format(time.RFC3339)
		return fmt.Appendf(nil, `{"scanner":{"uri":"pkg:github/aquasecurity/trivy","version":"0.50.0","result":{"Results":[{"Target":"app",
		 "Vulnerabilities":[{"VulnerabilityID":"CVE-2024-3094","PkgName":"liblzma5","InstalledVersion":"5.6.0","Severity":%q}]}]}},
		 "metadata":{"scanStartedOn":%q,"scanFinishedOn":%q}}`, severity, now, now)
	}
	release := registry.SignOptions{Cert: issue(subject), Rekor: rekor}
	image := func(repo, severity string, o registry.SignOptions) string {
		d := push(t, f.reg, repo, "1.0")
		if err := registry.SignWith(ctx, d, o); err != nil {
			t.Fatal(err)
		}
		if err := registry.Attest(ctx, d, "https://cosign.sigstore.dev/attestation/vuln/v1", scan(severity), o); err != nil {
			t.Fatal(err)
		}
		return f.host + "/" + repo + ":1.0"
	}
	clean := image("ci/clean", "LOW", release)
	critical := image("ci/critical", "CRITICAL", release)
	debugBuild := image("ci/debug", "LOW", registry.SignOptions{Cert: issue("https://github.com/corp/app/.github/workflows/debug.yml@refs/heads/main"), Rekor: rekor})
	layered := push(t, f.reg, "ci/layers", "1.0")
	if err := registry.PushSignatureLayers(ctx, layered, 5000); err != nil {
		t.Fatal(err)
	}

	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	rego, err := os.ReadFile(filepath.Join(root, "policies", "imagesig", "testdata", "vuln.rego"))
	if err != nil {
		t.Fatal(err)
	}
	policy := v1alpha1.TollgateImagePolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "tollgate.dev/v1alpha1", Kind: "TollgateImagePolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: "ci-keyless"},
		Spec: v1alpha1.ImagePolicySpec{Mode: "Enforce", Unmatched: "allow", Images: []v1alpha1.ImageRule{{
			Glob: f.host + "/ci/**",
			Authorities: []v1alpha1.Authority{{
				Name: "release-workflow",
				Keyless: &v1alpha1.KeylessAuthority{
					Identities: []v1alpha1.Identity{{Issuer: issuer, SubjectRegExp: `https://github\.com/corp/[^/]+/\.github/workflows/release\.yml@refs/tags/v.+`}},
					Roots:      &v1alpha1.DataSource{Data: string(ca.RootPEM())},
					Rekor:      &v1alpha1.RekorAuthority{PublicKey: v1alpha1.DataSource{Data: string(rekor.PublicKeyPEM())}},
				},
				Attestations: []v1alpha1.Attestation{{Name: "vulnerabilities", PredicateType: "vuln", Policy: string(rego)}},
			}},
		}}},
	}
	doc, err := json.Marshal(policy)
	if err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := apply(t, string(doc)); err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	t.Cleanup(func() { kubectl(t, "delete", "tollgateimagepolicy", "ci-keyless", "--ignore-not-found") })
	waitImagePolicyReady(t, "ci-keyless")
	teamNamespace(t, "images-ci")

	if _, stderr, err := apply(t, imagePod("images-ci", "clean", clean)); err != nil {
		t.Fatalf("the release workflow's clean image: %v\n%s", err, stderr)
	}
	// Applied from files, as docs/images.md shows them.
	dir := t.TempDir()
	var transcript strings.Builder
	for i, tc := range []struct{ name, file, image, want string }{
		{"a CRITICAL finding", "critical.yaml", critical, "attestation vulnerabilities denied: CRITICAL CVE-2024-3094 in liblzma5"},
		{"a wrong subject", "debug.yaml", debugBuild, `the certificate's subject "https://github.com/corp/app/.github/workflows/debug.yml@refs/heads/main" is not one the authority accepts`},
		{"5,000 signature layers", "layers.yaml", f.host + "/ci/layers:1.0", "manifest has 5000 layers; at most 100 are read"},
	} {
		if err := os.WriteFile(filepath.Join(dir, tc.file), []byte(imagePod("images-ci", fmt.Sprintf("denied-%d", i), tc.image)), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := console(t, dir, "apply", "-f", tc.file)
		if err == nil || !strings.Contains(out, "[image-policy/ci-keyless]") || !strings.Contains(out, tc.want) {
			t.Errorf("%s: %v\n%s", tc.name, err, out)
		}
		t.Logf("%s:\n%s", tc.name, out)
		if i < 2 {
			transcript.WriteString(out)
		}
	}
	out := transcript.String()
	docexample.Check(t, root, "e2e-images-ci-denied", out)
}

// TestImagePolicyKeyFromSecret: an authority's key kept in a Secret is
// read when the policy loads, and again every few seconds; a missing
// Secret is reported in the status (with the field at fault) and the
// policy comes into force once the Secret exists.
func TestImagePolicyKeyFromSecret(t *testing.T) {
	f := newImageFixture(t)
	release := newKeyPair(t)
	d := push(t, f.reg, "vault/app", "1.0", release)
	policy := fmt.Sprintf(`apiVersion: tollgate.dev/v1alpha1
kind: TollgateImagePolicy
metadata: {name: key-in-secret}
spec:
  unmatched: allow
  images:
  - glob: %q
    authorities:
    - name: release-key
      key: {secretRef: {namespace: tollgate-system, name: cosign-release, key: cosign.pub}}
`, f.host+"/vault/**")
	t.Cleanup(func() { kubectl(t, "delete", "tollgateimagepolicy", "key-in-secret", "--ignore-not-found") })
	if _, stderr, err := apply(t, policy); err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	eventually(t, 30*time.Second, func() error {
		msg := kubectl(t, "get", "tollgateimagepolicy", "key-in-secret", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].message}`)
		if !strings.Contains(msg, "spec.images[0].authorities[0].key.secretRef") || !strings.Contains(msg, "not found") {
			return fmt.Errorf("status message %q", msg)
		}
		return nil
	})
	secret := fmt.Sprintf(`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"cosign-release","namespace":"tollgate-system"},"stringData":{"cosign.pub":%q}}`, release.pem)
	for _, m := range []string{`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"tollgate-system"}}`, secret} {
		if _, stderr, err := apply(t, m); err != nil {
			t.Fatalf("%v: %s", err, stderr)
		}
	}
	// The policy is compiled again on its own once the Secret exists,
	// without being touched.
	waitImagePolicyReady(t, "key-in-secret")
	teamNamespace(t, "images-vault")
	if _, stderr, err := apply(t, imagePod("images-vault", "app", f.host+"/vault/app:1.0")); err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	if got := kubectl(t, "get", "pod", "app", "-n", "images-vault", "-o", "jsonpath={.spec.containers[0].image}"); got != f.host+"/vault/app:1.0@"+d.DigestStr() {
		t.Errorf("image %s, want it pinned", got)
	}
	// The key is rotated in the Secret: images signed only by the old key
	// are no longer admitted (cached verdicts belong to the old key).
	rotated := newKeyPair(t)
	secret = fmt.Sprintf(`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"cosign-release","namespace":"tollgate-system"},"stringData":{"cosign.pub":%q}}`, rotated.pem)
	if _, stderr, err := apply(t, secret); err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	eventually(t, 30*time.Second, func() error {
		_, stderr, err := apply(t, imagePod("images-vault", "after-rotation", f.host+"/vault/app:1.0"), "--dry-run=server")
		if err == nil {
			return fmt.Errorf("still admitted with the old key")
		}
		if !strings.Contains(stderr, "release-key: no signature matches its key") {
			return fmt.Errorf("unexpected denial: %s", stderr)
		}
		return nil
	})
}
