package webhook

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func dockerSecret(ns, name, config string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: []byte(config)},
	}
}

func authFor(t *testing.T, kc authn.Keychain, image string) string {
	t.Helper()
	ref, err := name.ParseReference(image)
	if err != nil {
		t.Fatal(err)
	}
	a, err := kc.Resolve(ref.Context())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := a.Authorization()
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Username + ":" + cfg.Password
}

func TestPullSecretsKeychain(t *testing.T) {
	basic := base64.StdEncoding.EncodeToString([]byte("robot:s3cret"))
	c := fake.NewClientBuilder().WithScheme(Scheme()).WithObjects(
		dockerSecret("shop", "pod-creds", `{"auths":{"registry.corp.example":{"auth":"`+basic+`"}}}`),
		dockerSecret("shop", "sa-creds", `{"auths":{"https://index.docker.io/v1/":{"username":"hub","password":"pw"},
			"registry.corp.example/payments":{"username":"payments","password":"pw2"}}}`),
		dockerSecret("shop", "broken", `{"auths":`),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "builder"},
			ImagePullSecrets: []corev1.LocalObjectReference{{Name: "sa-creds"}, {Name: "missing"}}},
	).Build()
	ps := &PullSecrets{Reader: c}
	spec := map[string]any{
		"serviceAccountName": "builder",
		"imagePullSecrets":   []any{map[string]any{"name": "pod-creds"}, map[string]any{"name": "gone"}},
	}
	kc, err := ps.Keychain(context.Background(), "shop", spec)
	if err != nil {
		t.Fatalf("missing secrets are skipped, as the kubelet skips them: %v", err)
	}
	for image, want := range map[string]string{
		"registry.corp.example/search/api:1":   "robot:s3cret", // the pod's secret
		"registry.corp.example/payments/api:1": "payments:pw2", // the more specific path of the service account's
		"nginx:1.27":                           "hub:pw",       // docker.io, however it is written
		"ghcr.io/corp/app:1":                   ":",            // anonymous
	} {
		if got := authFor(t, kc, image); got != want {
			t.Errorf("%s: credentials %q, want %q", image, got, want)
		}
	}

	// A pull secret that is not a docker config says which and why, and
	// the others still count.
	spec["imagePullSecrets"] = []any{map[string]any{"name": "broken"}, map[string]any{"name": "pod-creds"}}
	kc, err = ps.Keychain(context.Background(), "shop", spec)
	if err == nil || !strings.Contains(err.Error(), "pull secret shop/broken") {
		t.Errorf("broken secret: %v", err)
	}
	if got := authFor(t, kc, "registry.corp.example/search/api:1"); got != "robot:s3cret" {
		t.Errorf("after a broken secret: %q", got)
	}
	// No service account object (a namespace just created): the default
	// one is simply not there yet.
	if kc, err := ps.Keychain(context.Background(), "empty", map[string]any{}); err != nil || kc != nil {
		t.Errorf("empty namespace: %v %v", kc, err)
	}
}
