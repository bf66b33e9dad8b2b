package imagesig_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/policies/imagesig"
)

// Docker Hub has one name in Tollgate, docker.io, as the rest of Tollgate
// and the CRD's documentation write it: a glob written for
// docker.io/library/* matches every Hub image however it is written, and so
// does one written with an alias; nothing else widens.
func TestOneCanonicalFormForDockerHub(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := cryptoutils.MarshalPublicKeyToPEM(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	compile := func(glob string) *imagesig.Policy {
		p, err := imagesig.Compile(context.Background(), v1alpha1.ImagePolicySpec{Images: []v1alpha1.ImageRule{{
			Glob: glob, Authorities: []v1alpha1.Authority{{Name: "a", Key: &v1alpha1.KeyAuthority{Data: string(pem)}}},
		}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	hub := []string{"nginx:1.27", "library/nginx", "docker.io/library/nginx:1.27", "index.docker.io/library/nginx",
		"registry-1.docker.io/library/nginx@sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
	for _, glob := range []string{"docker.io/library/*", "index.docker.io/library/*", "registry-1.docker.io/library/nginx"} {
		p := compile(glob)
		for _, img := range hub {
			if !p.Matches(img) {
				t.Errorf("glob %s does not match %s", glob, img)
			}
		}
		for _, img := range []string{"ghcr.io/library/nginx", "docker.io/bitnami/nginx", "mirror.example/docker.io/library/nginx", "quay.io/nginx"} {
			if p.Matches(img) {
				t.Errorf("glob %s matches %s", glob, img)
			}
		}
	}
	for img, want := range map[string]string{
		"nginx":                      "docker.io/library/nginx",
		"index.docker.io/team/app:1": "docker.io/team/app",
		"ghcr.io/corp/web:1.4":       "ghcr.io/corp/web",
		"127.0.0.1:5000/team/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef": "127.0.0.1:5000/team/app",
	} {
		ref, err := name.ParseReference(img, name.WeakValidation)
		if err != nil {
			t.Fatal(err)
		}
		if got := imagesig.Repository(ref); got != want {
			t.Errorf("Repository(%s) = %s, want %s", img, got, want)
		}
	}
}

// Every spelling of a registry that the container runtime pulls from just
// the same is one name: a glob cannot be stepped around by writing the
// host in capitals, with the HTTPS port, or an IP address in a longer
// form; and an alias in the glob matches the canonical spelling.
func TestRegistrySpellingsAreOneName(t *testing.T) {
	digest := "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for img, want := range map[string]string{
		"Ghcr.io/corp/app:1":                          "ghcr.io/corp/app",
		"GHCR.IO:443/corp/app" + digest:               "ghcr.io/corp/app",
		"ghcr.io:8443/corp/app":                       "ghcr.io:8443/corp/app",
		"Docker.io/library/nginx":                     "docker.io/library/nginx",
		"index.docker.io:443/library/nginx:1.27":      "docker.io/library/nginx",
		"REGISTRY-1.DOCKER.IO/library/nginx":          "docker.io/library/nginx",
		"nginx:1.27" + digest:                         "docker.io/library/nginx",
		"LOCALHOST:5000/team/app":                     "localhost:5000/team/app",
		"localhost/team/app":                          "localhost/team/app",
		"[::1]:5000/team/app":                         "[::1]:5000/team/app",
		"[0:0:0:0:0:0:0:1]:5000/team/app":             "[::1]:5000/team/app",
		"[::ffff:127.0.0.1]:5000/team/app":            "127.0.0.1:5000/team/app",
		"[::FFFF:7F00:1]:5000/team/app":               "127.0.0.1:5000/team/app",
		"[2001:DB8::1]/team/app":                      "[2001:db8::1]/team/app",
		"127.0.0.1:5000/team/app:1.0":                 "127.0.0.1:5000/team/app",
		"registry.corp.example:5000/team/app:1.0":     "registry.corp.example:5000/team/app",
		"registry.corp.example:443/team/app:1.0":      "registry.corp.example/team/app",
		"registry.corp.example:0443/team/app:1.0":     "registry.corp.example/team/app",
		"registry.corp.example:05000/team/app:1.0":    "registry.corp.example:5000/team/app",
		"mirror.example/docker.io/library/nginx:1.27": "mirror.example/docker.io/library/nginx",
	} {
		ref, err := name.ParseReference(img, name.WeakValidation)
		if err != nil {
			t.Errorf("%s: %v", img, err)
			continue
		}
		if got := imagesig.Repository(ref); got != want {
			t.Errorf("Repository(%s) = %s, want %s", img, got, want)
		}
	}

	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := cryptoutils.MarshalPublicKeyToPEM(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		glob        string
		match, miss []string
	}{
		{"ghcr.io/corp/*", []string{"Ghcr.io/corp/app", "ghcr.io:443/corp/app:1", "GHCR.IO/corp/app" + digest}, []string{"ghcr.io:8443/corp/app", "ghcr.io.evil.example/corp/app", "ghcr.io/corporate/app"}},
		{"GHCR.io:443/corp/*", []string{"ghcr.io/corp/app"}, []string{"ghcr.io/other/app"}},
		{"127.0.0.1:5000/team/**", []string{"[::ffff:7f00:1]:5000/team/app", "127.0.0.1:5000/team/a/b"}, []string{"127.0.0.1:5001/team/app", "[::1]:5000/team/app"}},
		{"[::1]:5000/team/*", []string{"[0:0::1]:5000/team/app"}, []string{"127.0.0.1:5000/team/app"}},
		{"localhost:5000/team/*", []string{"LOCALHOST:5000/team/app"}, []string{"localhost/team/app"}},
		{"*.corp.example/team/*", []string{"eu.corp.example/team/app"}, []string{"corp.example/team/app"}},
	} {
		p, err := imagesig.Compile(context.Background(), v1alpha1.ImagePolicySpec{Images: []v1alpha1.ImageRule{{
			Glob: tc.glob, Authorities: []v1alpha1.Authority{{Name: "a", Key: &v1alpha1.KeyAuthority{Data: string(pem)}}},
		}}}, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.glob, err)
		}
		for _, img := range tc.match {
			if !p.Matches(img) {
				t.Errorf("glob %s does not match %s", tc.glob, img)
			}
		}
		for _, img := range tc.miss {
			if p.Matches(img) {
				t.Errorf("glob %s matches %s", tc.glob, img)
			}
		}
	}
}
