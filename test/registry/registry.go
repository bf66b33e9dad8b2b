// Package registry runs a real OCI registry for tests: Debian's
// docker-registry (the CNCF distribution registry) on a loopback port, with
// its storage in a temporary directory and, optionally, basic auth. Image
// signature tests push images, signatures and attestations to it with
// go-containerregistry and cosign, as they would to any registry. For
// keyless signatures a test CA stands in for Fulcio and a test key for
// Rekor, offline.
package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"golang.org/x/crypto/bcrypt"

	"github.com/tollgate-dev/tollgate/test/proc"
)

// DefaultBinary is where Debian's docker-registry package installs the
// registry (`apt-get install docker-registry`).
const DefaultBinary = "/usr/bin/docker-registry"

// Options configures Start.
type Options struct {
	// Binary is the registry executable; default DefaultBinary, or
	// $TOLLGATE_REGISTRY_BIN.
	Binary string
	// Username and Password, when set, require basic auth (htpasswd,
	// bcrypt) for every request.
	Username, Password string
}

// Registry is a running registry.
type Registry struct {
	host    string
	dir     string
	process *proc.Process
	out     *proc.Buffer
	// auth is the basic auth the registry requires, nil when none.
	auth authn.Authenticator

	stopOnce sync.Once
	stopErr  error
}

// Start runs a registry on a free loopback port and waits until it answers.
func Start(ctx context.Context, opts Options) (*Registry, error) {
	if opts.Binary == "" {
		opts.Binary = os.Getenv("TOLLGATE_REGISTRY_BIN")
	}
	if opts.Binary == "" {
		opts.Binary = DefaultBinary
	}
	if _, err := os.Stat(opts.Binary); err != nil {
		return nil, fmt.Errorf("registry binary %s: %w (install Debian's docker-registry: apt-get install docker-registry)", opts.Binary, err)
	}
	dir, err := os.MkdirTemp("", "tollgate-registry-")
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	r := &Registry{dir: dir, out: &proc.Buffer{}}
	ok := false
	defer func() {
		if !ok {
			_ = r.Stop()
		}
	}()
	port, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	r.host = fmt.Sprintf("127.0.0.1:%d", port)
	auth := ""
	if opts.Username != "" {
		r.auth = &authn.Basic{Username: opts.Username, Password: opts.Password}
		hash, err := bcrypt.GenerateFromPassword([]byte(opts.Password), bcrypt.MinCost)
		if err != nil {
			return nil, fmt.Errorf("registry: hashing the password: %w", err)
		}
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(opts.Username+":"+string(hash)+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("registry: %w", err)
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: tollgate-test\n    path: %s\n", htpasswd)
	}
	config := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog: {disabled: true}
storage:
  filesystem: {rootdirectory: %s}
  delete: {enabled: true}
%shttp:
  addr: %s
`, filepath.Join(dir, "data"), auth, r.host)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	if r.process, err = proc.Start(opts.Binary, []string{"serve", cfgPath}, nil, r.out); err != nil {
		return nil, fmt.Errorf("starting the registry: %w", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + r.host + "/v2/") //nolint:noctx // a readiness probe with its own deadline loop
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				ok = true
				return r, nil
			}
		}
		select {
		case <-r.process.Done():
			return nil, fmt.Errorf("the registry exited: %s", strings.TrimSpace(r.out.String()))
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, errors.New("the registry did not answer within 30s")
		}
	}
}

// Auth is the credential the registry requires (nil when it requires
// none), for SignOptions.Auth.
func (r *Registry) Auth() authn.Authenticator { return r.auth }

// Host is the registry's host:port, for image references
// (127.0.0.1:PORT/team/app:1.0).
func (r *Registry) Host() string { return r.host }

// Stop kills the registry and removes its storage. It is idempotent.
func (r *Registry) Stop() error {
	r.stopOnce.Do(func() {
		if r.process != nil {
			_ = r.process.Stop(0)
		}
		r.stopErr = os.RemoveAll(r.dir)
	})
	return r.stopErr
}
