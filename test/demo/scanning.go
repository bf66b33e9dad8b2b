package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/tollgate-dev/tollgate/test/trivytest"
)

// demoScanning is the demo's image scanning: a Trivy vulnerability
// database built from planted advisories (the tests' own), pushed to the
// demo registry as the OCI artifact Trivy downloads, an Alpine image with
// a fixable CRITICAL vulnerability, and a production namespace that runs
// it. There is no internet here: the public database is out of reach, and
// so are the other images of the tour (their scans fail, quietly: the demo
// config audits images-unscanned).
type demoScanning struct {
	trivy    string
	dbRef    string
	cacheDir string
	image    string // repo:tag
	ledger   string // the manifest: namespace and Deployment
}

func startScanning(ctx context.Context, dir, registryHost string) (*demoScanning, error) {
	bin, err := trivytest.TrivyBinary()
	if err != nil {
		return nil, err
	}
	s := &demoScanning{trivy: bin, cacheDir: filepath.Join(dir, "trivy-cache"), ledger: filepath.Join(dir, "ledger.yaml")}
	work, err := os.MkdirTemp(dir, "trivy-db-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(work) }()
	db, err := trivytest.BuildDB(ctx, work, trivytest.Advisories())
	if err != nil {
		return nil, fmt.Errorf("building the demo's vulnerability database: %w", err)
	}
	if s.dbRef, err = trivytest.PushDB(ctx, registryHost, "aquasec/trivy-db", db); err != nil {
		return nil, fmt.Errorf("pushing the demo's vulnerability database: %w", err)
	}
	digest, err := trivytest.PushAlpineImage(ctx, registryHost, "ledger/api")
	if err != nil {
		return nil, fmt.Errorf("pushing the demo's vulnerable image: %w", err)
	}
	d, err := name.NewDigest(digest, name.Insecure)
	if err != nil {
		return nil, err
	}
	desc, err := remote.Get(d, remote.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	tag := d.Context().Tag("2.3")
	if err := remote.Tag(tag, desc, remote.WithContext(ctx)); err != nil {
		return nil, err
	}
	s.image = tag.String()
	manifest := fmt.Sprintf(`# The ledger team's production namespace (tier=production: the library's
# images-vulnerabilities policy watches it) and its API.
apiVersion: v1
kind: Namespace
metadata:
  name: ledger
  labels:
    team: ledger
    owner: dana
    cost-center: CC-7001
    environment: prod
    tier: production
---
%s`, deploymentIn("ledger", "api", s.image))
	if err := os.WriteFile(s.ledger, []byte(manifest), 0o600); err != nil {
		return nil, err
	}
	return s, nil
}

// serveArgs are the flags that turn scanning on in the demo's server.
func (s *demoScanning) serveArgs() []string {
	return []string{"--scan-images", "--trivy", s.trivy, "--trivy-db-repository", s.dbRef, "--trivy-cache-dir", s.cacheDir}
}
