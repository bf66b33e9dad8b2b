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
