package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tollgate-dev/tollgate/test/registry"
)

// demoImages is the demo's registry: Debian's distribution registry on
// loopback (as in the tests) with one image signed by the release key and
// one unsigned, and
// the manifests that use them (written beside the demo's logs, since the
// registry's port and the key are made at start).
type demoImages struct {
	reg            *registry.Registry
	signed         string // repo:tag
	digest         string
	policy         string // file paths
	signedDeploy   string
	unsignedDeploy string
}

func startImages(ctx context.Context, dir string) (*demoImages, error) {
	set, err := registry.StartSigned(ctx, "payments/api", "payments/untrusted")
	if err != nil {
		return nil, fmt.Errorf("preparing the demo registry: %w", err)
	}
	reg, pem, host := set.Registry, set.KeyPEM, set.Host()
	im := &demoImages{reg: reg, signed: host + "/payments/api:1.0", digest: set.Image.DigestStr(),
		policy:         filepath.Join(dir, "image-policy.yaml"),
		signedDeploy:   filepath.Join(dir, "api.yaml"),
		unsignedDeploy: filepath.Join(dir, "untrusted.yaml"),
	}
	key := "              " + strings.ReplaceAll(strings.TrimSpace(string(pem)), "\n", "\n              ")
	files := map[string]string{
		im.policy: fmt.Sprintf(`# Images from the team registry must carry a cosign signature by the
# release key; images from elsewhere are left to the other policies.
apiVersion: tollgate.dev/v1alpha1
kind: TollgateImagePolicy
metadata:
  name: release-signed
spec:
  mode: Enforce
  unmatched: allow
  images:
    - glob: "%s/payments/**"
      authorities:
        - name: release-key
          key:
            data: |
%s
`, host, key),
		im.signedDeploy:   deployment("api", host+"/payments/api:1.0"),
		im.unsignedDeploy: deployment("untrusted", host+"/payments/untrusted:1.0"),
	}
	for path, text := range files {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			_ = reg.Stop()
			return nil, err
		}
	}
	return im, nil
}

func deployment(name, image string) string { return deploymentIn("shop", name, image) }

// deploymentIn is a bare one-replica Deployment of image in namespace.
func deploymentIn(namespace, name, image string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %s
  namespace: %s
spec:
  replicas: 1
  selector:
    matchLabels: {app: %s}
  template:
    metadata:
      labels: {app: %s}
    spec:
      containers:
        - name: %s
          image: %s
`, name, namespace, name, name, name, image)
}
