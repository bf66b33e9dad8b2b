// Package trivytest builds what tests of Tollgate's Trivy scanning scan
// against, all on loopback: a vulnerability database written from
// advisories the test chooses (with trivy-db's own packages, by
// bin/trivy/trivy-testdb) and pushed to a local registry as the OCI
// artifact Trivy downloads; images whose layers hold a Debian or Alpine
// package database, a Go binary and an npm package at known versions; the
// advisories planted for them; and Trivy's own server.
package trivytest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ggcrtypes "github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/tollgate-dev/tollgate/test/proc"
)

// The media types of Trivy's database artifact (trivy's pkg/db and
// pkg/oci): Trivy accepts the layer only with this media type and names
// the downloaded file after the layer's title annotation.
const (
	DBConfigMediaType = "application/vnd.aquasec.trivy.config.v1+json"
	DBLayerMediaType  = "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip"
	// DBTag is the tag Trivy's database repositories use: the schema
	// version (ghcr.io/aquasecurity/trivy-db:2).
	DBTag = "2"
)

// Advisory is one vulnerability of one package, as bin/trivy/trivy-testdb
// reads it. Ecosystem is debian or alpine (Release: Debian's major
// version, Alpine's minor line such as 3.20; Fixed the fixed version, ""
// for none) or go or npm (Vulnerable: version ranges such as "<0.8.0";
// Patched: the fixed versions).
type Advisory struct {
	Ecosystem  string   `json:"ecosystem"`
	Release    string   `json:"release,omitempty"`
	Package    string   `json:"package"`
	ID         string   `json:"id"`
	Fixed      string   `json:"fixed,omitempty"`
	Vulnerable []string `json:"vulnerable,omitempty"`
	Patched    []string `json:"patched,omitempty"`
	Severity   string   `json:"severity"`
	Title      string   `json:"title,omitempty"`
}

// DBOptions sets the database's dates, for tests of stale databases.
type DBOptions struct {
	// UpdatedAt is when the database says it was built (default now);
	// NextUpdate when its next build is due (default a day later).
	UpdatedAt, NextUpdate time.Time
}

// TrivyBinary is the trivy executable: $TOLLGATE_TRIVY_BIN, or
// bin/trivy/trivy in the repository. The error says how to build it.
func TrivyBinary() (string, error) {
	return binary("TOLLGATE_TRIVY_BIN", "trivy")
}

// TestDBBinary is the database builder: $TOLLGATE_TRIVY_TESTDB_BIN, or
// bin/trivy/trivy-testdb in the repository.
func TestDBBinary() (string, error) {
	return binary("TOLLGATE_TRIVY_TESTDB_BIN", "trivy-testdb")
}

func binary(env, file string) (string, error) {
	path := os.Getenv(env)
	if path == "" {
		root, err := RepoRoot()
		if err != nil {
			return "", err
		}
		path = filepath.Join(root, "bin", "trivy", file)
	}
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("%s: %w (build it with `make trivy`, or set $%s)", file, err, env)
	}
	return path, nil
}

// RepoRoot is the nearest directory, from the working directory up, whose
// go.mod declares Tollgate's module.
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; {
		if data, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && modulePath(data) == "github.com/tollgate-dev/tollgate" {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod of github.com/tollgate-dev/tollgate in %s or above", wd)
		}
		d = parent
	}
}

func modulePath(gomod []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}

// BuildDB writes a Trivy database holding advisories into dir and returns
// the path of its db.tar.gz (trivy.db and metadata.json, the layer Trivy
// downloads).
func BuildDB(ctx context.Context, dir string, advisories []Advisory, opts ...DBOptions) (string, error) {
	bin, err := TestDBBinary()
	if err != nil {
		return "", err
	}
	var o DBOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	in := struct {
		UpdatedAt  time.Time  `json:"updatedAt,omitzero"`
		NextUpdate time.Time  `json:"nextUpdate,omitzero"`
		Advisories []Advisory `json:"advisories"`
	}{o.UpdatedAt.UTC(), o.NextUpdate.UTC(), advisories}
	data, err := json.MarshalIndent(in, "", "  ")
	if err != nil {
		return "", err
	}
	src := filepath.Join(dir, "advisories.json")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		return "", fmt.Errorf("building the test database: %w", err)
	}
	out := filepath.Join(dir, "db.tar.gz")
	cmd := exec.CommandContext(ctx, bin, src, out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the test database: %w: %s", err, strings.TrimSpace(string(msg)))
	}
	return out, nil
}

// PushDB pushes dbTarGz to registryHost/repo:2 as Trivy's database
// artifact (one layer of DBLayerMediaType titled db.tar.gz, a config of
// DBConfigMediaType) and returns the reference to pass to Trivy's
// --db-repository. opts add remote options, such as credentials.
func PushDB(ctx context.Context, registryHost, repo, dbTarGz string, opts ...remote.Option) (string, error) {
	data, err := os.ReadFile(dbTarGz)
	if err != nil {
		return "", fmt.Errorf("pushing the database: %w", err)
	}
	return pushArtifact(ctx, registryHost+"/"+repo+":"+DBTag, data, opts...)
}

// PushDBBlob pushes data, whatever it holds, as the database artifact's
// layer: tests of a corrupt database push bytes that are not one.
func PushDBBlob(ctx context.Context, registryHost, repo string, data []byte, opts ...remote.Option) (string, error) {
	return pushArtifact(ctx, registryHost+"/"+repo+":"+DBTag, data, opts...)
}

func pushArtifact(ctx context.Context, ref string, data []byte, opts ...remote.Option) (string, error) {
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		return "", err
	}
	layer := staticLayer{data: data, mediaType: DBLayerMediaType}
	img, err := mutate.Append(empty.Image, mutate.Addendum{
		Layer:       layer,
		MediaType:   DBLayerMediaType,
		Annotations: map[string]string{"org.opencontainers.image.title": "db.tar.gz"},
	})
	if err != nil {
		return "", err
	}
	img = mutate.MediaType(img, ggcrtypes.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, DBConfigMediaType)
	if err := remote.Write(tag, img, append([]remote.Option{remote.WithContext(ctx)}, opts...)...); err != nil {
		return "", fmt.Errorf("pushing the database to %s: %w", tag, err)
	}
	return tag.String(), nil
}

// staticLayer is a layer whose compressed bytes are data, whatever they
// are: go-containerregistry's own layers would check or recompress them.
type staticLayer struct {
	data      []byte
	mediaType ggcrtypes.MediaType
}

func (l staticLayer) Digest() (v1.Hash, error) {
	h, _, err := v1.SHA256(bytes.NewReader(l.data))
	return h, err
}
func (l staticLayer) DiffID() (v1.Hash, error) { return l.Digest() }
func (l staticLayer) Compressed() (rc io.ReadCloser, err error) {
	return io.NopCloser(bytes.NewReader(l.data)), nil
}
func (l staticLayer) Uncompressed() (io.ReadCloser, error) { return l.Compressed() }
func (l staticLayer) Size() (int64, error)                 { return int64(len(l.data)), nil }
func (l staticLayer) MediaType() (ggcrtypes.MediaType, error) {
	return l.mediaType, nil
}

var _ v1.Layer = staticLayer{}

// Server is a running `trivy server`.
type Server struct {
	// URL is the server's address, for `trivy image --server`.
	URL     string
	process *proc.Process
	out     *proc.Buffer
}

// Output is what the server printed so far.
func (s *Server) Output() string { return s.out.String() }

// Stop stops the server.
func (s *Server) Stop() error { return s.process.Stop(5 * time.Second) }

// StartServer runs Trivy's own server as its documentation starts it
// (`trivy server --listen 127.0.0.1:PORT`), with its database downloaded
// from dbRepo into cacheDir, and waits until /healthz answers. Pass
// trivyBin "" for TrivyBinary. The stop func stops it.
func StartServer(ctx context.Context, trivyBin, cacheDir, dbRepo string) (*Server, func() error, error) {
	if trivyBin == "" {
		var err error
		if trivyBin, err = TrivyBinary(); err != nil {
			return nil, nil, err
		}
	}
	port, err := proc.FreePort()
	if err != nil {
		return nil, nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args := []string{
		"server", "--listen", addr, "--cache-dir", cacheDir,
		"--db-repository", dbRepo, "--insecure", "--quiet",
	}
	s := &Server{URL: "http://" + addr, out: &proc.Buffer{}}
	if s.process, err = proc.Start(trivyBin, args, OfflineEnv(cacheDir), s.out); err != nil {
		return nil, nil, fmt.Errorf("starting trivy server: %w", err)
	}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/healthz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, s.Stop, nil
			}
		}
		select {
		case <-s.process.Done():
			return nil, nil, fmt.Errorf("trivy server exited (%w): %s", s.process.ExitErr(), strings.TrimSpace(s.out.String()))
		case <-ctx.Done():
			_ = s.Stop()
			return nil, nil, fmt.Errorf("trivy server did not answer: %w: %s", ctx.Err(), strings.TrimSpace(s.out.String()))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// OfflineEnv is the environment tests run Trivy in: this process's
// environment without proxies or registry credentials, with a private
// HOME and DOCKER_CONFIG under dir, so that nothing outside the test
// reaches it.
func OfflineEnv(dir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "HOME", "DOCKER_CONFIG", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY":
			continue
		}
		if strings.HasPrefix(k, "TRIVY_") {
			continue
		}
		env = append(env, kv)
	}
	home := filepath.Join(dir, "home")
	_ = os.MkdirAll(home, 0o700)
	return append(env, "HOME="+home, "DOCKER_CONFIG="+filepath.Join(home, ".docker"))
}
