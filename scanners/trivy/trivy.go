// Package trivy scans container images for vulnerabilities by running the
// trivy command as its own process and reading its JSON report.
//
// Trivy is not linked into Tollgate: v0.74 needs GOEXPERIMENT=jsonv2, which
// would change encoding/json for all of Tollgate, and it would double the
// binary (docs/scanning.md). A Runner runs `trivy image` against a local
// database cache, or against Trivy's own server (`trivy server`) with
// --server, and turns the report into a vuln.Report. Trivy never reaches
// the internet on its own: version checks, telemetry, the Java database and
// the checks bundle are off, and the vulnerability database comes only from
// the configured repository, fetched by UpdateDB.
package trivy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/tollgate-dev/tollgate/policies/vuln"
)

// DefaultDBRepository is Trivy's own default database repository.
const DefaultDBRepository = "mirror.gcr.io/aquasec/trivy-db:2"

// Defaults of Options.
const (
	DefaultTimeout        = 5 * time.Minute
	DefaultMaxReportBytes = 64 << 20
	DefaultMaxSBOMBytes   = 16 << 20
)

// Options configures a Runner.
type Options struct {
	// Binary is the trivy executable (default "trivy", looked up in PATH).
	Binary string
	// CacheDir holds the vulnerability database (CacheDir/db) and
	// Trivy's layer cache. Required.
	CacheDir string
	// DBRepository is the OCI repository of the vulnerability database
	// (default DefaultDBRepository; a mirror for air-gapped clusters).
	DBRepository string
	// Server, when set, is the URL of a `trivy server`: scans send the
	// image's packages there and the server's database judges them.
	Server string
	// Token is sent to Server as Trivy's token (through the environment,
	// never on the command line).
	Token string
	// Insecure allows plain-HTTP and unverified-TLS registries.
	Insecure bool
	// Timeout bounds one scan or database download (default
	// DefaultTimeout).
	Timeout time.Duration
	// MaxReportBytes bounds Trivy's JSON report (default
	// DefaultMaxReportBytes): a bigger one fails the scan, and no more
	// than that is ever held in memory.
	MaxReportBytes int64
	// SBOM makes Scan also produce the image's CycloneDX SBOM
	// (Report.SBOM), at most MaxSBOMBytes (default DefaultMaxSBOMBytes).
	SBOM         bool
	MaxSBOMBytes int64
	// Env is added to Trivy's environment (e.g. proxy settings).
	Env []string
	// TempDir is where each scan's private directory (its HOME, and the
	// docker config holding its registry credentials) is made and
	// removed after (default os.TempDir(); a writable volume where the
	// root filesystem is read-only).
	TempDir string
}

// Validate reports what is wrong with the options.
func (o *Options) Validate() error {
	var errs []error
	if o.CacheDir == "" {
		errs = append(errs, errors.New("trivy: CacheDir is required"))
	}
	if o.Timeout < 0 {
		errs = append(errs, fmt.Errorf("trivy: Timeout %s is negative", o.Timeout))
	}
	if o.MaxReportBytes < 0 || o.MaxSBOMBytes < 0 {
		errs = append(errs, errors.New("trivy: MaxReportBytes and MaxSBOMBytes must not be negative"))
	}
	if o.Server != "" && !strings.HasPrefix(o.Server, "http://") && !strings.HasPrefix(o.Server, "https://") {
		errs = append(errs, fmt.Errorf("trivy: Server %q: want an http:// or https:// URL", o.Server))
	}
	for i, kv := range o.Env {
		if !strings.Contains(kv, "=") {
			errs = append(errs, fmt.Errorf("trivy: Env[%d] %q: want KEY=VALUE", i, kv))
		}
	}
	return errors.Join(errs...)
}

func (o *Options) defaults() {
	if o.Binary == "" {
		o.Binary = "trivy"
	}
	if o.DBRepository == "" {
		o.DBRepository = DefaultDBRepository
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxReportBytes == 0 {
		o.MaxReportBytes = DefaultMaxReportBytes
	}
	if o.MaxSBOMBytes == 0 {
		o.MaxSBOMBytes = DefaultMaxSBOMBytes
	}
}

// Runner runs Trivy. It is safe for concurrent use; scans run in
// parallel, a database update waits for running scans to end before it
// swaps the new database in.
type Runner struct {
	opts Options
	// db guards CacheDir/db: scans hold it shared, the swap of UpdateDB
	// exclusively.
	db sync.RWMutex
	// now is the clock (time.Now).
	now func() time.Time
}

var _ vuln.Scanner = (*Runner)(nil)

// New returns a Runner. The binary must exist; the database need not yet
// (UpdateDB fetches it).
func New(opts Options) (*Runner, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.defaults()
	bin, err := exec.LookPath(opts.Binary)
	if err != nil {
		return nil, fmt.Errorf("trivy: the trivy binary %q: %w (build it with `make trivy`)", opts.Binary, err)
	}
	opts.Binary = bin
	if err := os.MkdirAll(opts.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("trivy: cache dir: %w", err)
	}
	return &Runner{opts: opts, now: time.Now}, nil
}

// Options returns the options in force, defaults filled in.
func (r *Runner) Options() Options { return r.opts }

// baseArgs are the flags every trivy command gets: the cache, no network
// but the registry and the database repository.
func (r *Runner) baseArgs() []string {
	args := []string{"--cache-dir", r.opts.CacheDir, "--quiet"}
	if r.opts.Insecure {
		args = append(args, "--insecure")
	}
	return args
}

// offlineArgs turn off everything trivy image would fetch on its own.
var offlineArgs = []string{
	"--skip-version-check", "--disable-telemetry", "--skip-java-db-update", "--skip-check-update", "--offline-scan",
}

// Scan scans image with Trivy: OS and language packages, vulnerabilities
// only. keychain gives the registry credentials (nil: anonymous); they
// reach Trivy in a private DOCKER_CONFIG directory that is removed after
// the scan. With Options.SBOM, a scan whose SBOM alone failed returns the
// report and an *SBOMError.
func (r *Runner) Scan(ctx context.Context, image string, keychain authn.Keychain) (*vuln.Report, error) {
	ref, err := parseRef(image)
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp(r.opts.TempDir, "tollgate-trivy-scan-")
	if err != nil {
		return nil, fmt.Errorf("scanning %s: %w", image, err)
	}
	defer func() { _ = os.RemoveAll(work) }()
	env, err := r.env(ctx, work, ref, keychain)
	if err != nil {
		return nil, fmt.Errorf("scanning %s: %w", image, err)
	}
	args := append([]string{"image", "--format", "json", "--list-all-pkgs", "--scanners", "vuln",
		"--pkg-types", "os,library", "--image-src", "remote", "--timeout", r.opts.Timeout.String()}, r.baseArgs()...)
	args = append(args, offlineArgs...)
	if r.opts.Server != "" {
		args = append(args, "--server", r.opts.Server)
	} else {
		args = append(args, "--skip-db-update")
	}
	args = append(args, "--", image)

	r.db.RLock()
	out, err := r.run(ctx, args, env, r.opts.MaxReportBytes, "report")
	r.db.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("scanning %s: %w", image, err)
	}
	rep, err := Parse(out)
	if err != nil {
		return nil, fmt.Errorf("scanning %s: trivy's report: %w", image, err)
	}
	rep.Image = image
	if rep.Digest, err = digestOf(ref, rep.Digest); err != nil {
		return nil, fmt.Errorf("scanning %s: %w", image, err)
	}
	if rep.DB, err = r.Database(ctx); err != nil {
		return nil, fmt.Errorf("scanning %s: %w", image, err)
	}
	rep.ScannedAt = r.now().UTC()
	if r.opts.SBOM {
		sbom, err := r.convert(ctx, work, out, env)
		if err != nil {
			return rep, &SBOMError{Image: image, Err: err}
		}
		rep.SBOM = sbom
	}
	return rep, nil
}

// SBOMError is a scan whose report is complete but whose SBOM could not
// be produced (too big, or trivy convert failed).
type SBOMError struct {
	Image string
	Err   error
}

func (e *SBOMError) Error() string {
	return fmt.Sprintf("the SBOM of %s: %v (the vulnerability report is kept)", e.Image, e.Err)
}

func (e *SBOMError) Unwrap() error { return e.Err }

// ErrTooLarge is the error of output over its bound.
var ErrTooLarge = errors.New("output over the size limit")

// convert turns the JSON report into CycloneDX with `trivy convert`.
func (r *Runner) convert(ctx context.Context, work string, report []byte, env []string) ([]byte, error) {
	path := filepath.Join(work, "report.json")
	if err := os.WriteFile(path, report, 0o600); err != nil {
		return nil, err
	}
	args := append([]string{"convert", "--format", "cyclonedx"}, r.baseArgs()...)
	args = append(args, "--", path)
	return r.run(ctx, args, env, r.opts.MaxSBOMBytes, "SBOM")
}

// run runs trivy with args and returns its standard output, at most max
// bytes: more kills trivy and fails with ErrTooLarge. An error quotes the
// last lines trivy wrote to standard error.
func (r *Runner) run(ctx context.Context, args, env []string, maxOut int64, what string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.opts.Binary, args...)
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	stdout := &boundedBuffer{max: maxOut, overflow: cancel}
	stderr := &tailBuffer{max: 8 << 10}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err := cmd.Run()
	switch {
	case stdout.over:
		return nil, fmt.Errorf("trivy's %s is over %d bytes: %w", what, maxOut, ErrTooLarge)
	case err != nil && ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return nil, fmt.Errorf("trivy did not finish within %s: %w%s", r.opts.Timeout, ctx.Err(), stderr.quote())
	case err != nil:
		return nil, fmt.Errorf("trivy %s: %w%s", args[0], err, stderr.quote())
	}
	return stdout.buf, nil
}

// env is trivy's environment: this process's, without Trivy settings a
// user may have set (TRIVY_*) or registry credentials of its own, with a
// private HOME and DOCKER_CONFIG in work holding the credentials keychain
// gives for ref's registry.
func (r *Runner) env(ctx context.Context, work string, ref imageRef, keychain authn.Keychain) ([]string, error) {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "HOME" || k == "DOCKER_CONFIG" || k == "REGISTRY_AUTH_FILE" || strings.HasPrefix(k, "TRIVY_") {
			continue
		}
		env = append(env, kv)
	}
	dockerDir := filepath.Join(work, "docker")
	if err := os.Mkdir(dockerDir, 0o700); err != nil {
		return nil, err
	}
	if err := writeDockerConfig(ctx, dockerDir, ref, keychain); err != nil {
		return nil, err
	}
	env = append(env, "HOME="+work, "DOCKER_CONFIG="+dockerDir, "TRIVY_DISABLE_VEX_NOTICE=true")
	if r.opts.Token != "" {
		env = append(env, "TRIVY_TOKEN="+r.opts.Token)
	}
	return append(env, r.opts.Env...), nil
}

// Database describes the database scans use: the local cache's
// metadata.json, or the server's /version in client/server mode.
func (r *Runner) Database(ctx context.Context) (vuln.DBInfo, error) {
	if r.opts.Server != "" {
		return r.serverDatabase(ctx)
	}
	r.db.RLock()
	defer r.db.RUnlock()
	info, err := readMetadata(filepath.Join(r.opts.CacheDir, "db"))
	if err != nil {
		return vuln.DBInfo{}, err
	}
	info.Repository = r.opts.DBRepository
	return info, nil
}

// metadata is Trivy's db/metadata.json.
type metadata struct {
	Version      int       `json:"Version"`
	NextUpdate   time.Time `json:"NextUpdate"`
	UpdatedAt    time.Time `json:"UpdatedAt"`
	DownloadedAt time.Time `json:"DownloadedAt"`
}

// schemaVersion is the database schema trivy v0.74 reads.
const schemaVersion = 2

func (m *metadata) info() (vuln.DBInfo, error) {
	if m.Version != schemaVersion {
		return vuln.DBInfo{}, fmt.Errorf("field Version %d: this trivy reads schema %d", m.Version, schemaVersion)
	}
	if m.UpdatedAt.IsZero() {
		return vuln.DBInfo{}, errors.New("field UpdatedAt is missing")
	}
	return vuln.DBInfo{UpdatedAt: m.UpdatedAt.UTC(), NextUpdate: m.NextUpdate.UTC(), DownloadedAt: m.DownloadedAt.UTC()}, nil
}

func readMetadata(dbDir string) (vuln.DBInfo, error) {
	path := filepath.Join(dbDir, "metadata.json")
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return vuln.DBInfo{}, fmt.Errorf("no vulnerability database in %s (download it first with UpdateDB): %w", dbDir, err)
	}
	if err != nil {
		return vuln.DBInfo{}, fmt.Errorf("the vulnerability database: %w", err)
	}
	var m metadata
	if err := json.Unmarshal(data, &m); err != nil {
		return vuln.DBInfo{}, fmt.Errorf("the vulnerability database's %s: %w", path, err)
	}
	info, err := m.info()
	if err != nil {
		return vuln.DBInfo{}, fmt.Errorf("the vulnerability database's %s: %w", path, err)
	}
	if _, err := os.Stat(filepath.Join(dbDir, "trivy.db")); err != nil {
		return vuln.DBInfo{}, fmt.Errorf("the vulnerability database: %w", err)
	}
	return info, nil
}

// serverDatabase asks the server for its database (GET /version).
func (r *Runner) serverDatabase(ctx context.Context) (vuln.DBInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	u := strings.TrimSuffix(r.opts.Server, "/") + "/version"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return vuln.DBInfo{}, fmt.Errorf("trivy server: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return vuln.DBInfo{}, fmt.Errorf("trivy server %s: %w", r.opts.Server, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return vuln.DBInfo{}, fmt.Errorf("trivy server %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return vuln.DBInfo{}, fmt.Errorf("trivy server %s: %s", u, resp.Status)
	}
	var v struct {
		VulnerabilityDB *metadata `json:"VulnerabilityDB"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return vuln.DBInfo{}, fmt.Errorf("trivy server %s: %w", u, err)
	}
	if v.VulnerabilityDB == nil {
		return vuln.DBInfo{}, fmt.Errorf("trivy server %s: no VulnerabilityDB (has it downloaded its database?)", u)
	}
	info, err := v.VulnerabilityDB.info()
	if err != nil {
		return vuln.DBInfo{}, fmt.Errorf("trivy server %s: VulnerabilityDB: %w", u, err)
	}
	info.Repository = r.opts.Server
	return info, nil
}

// UpdateDB downloads the vulnerability database from the repository into
// a fresh directory and swaps it in only when the download is whole: a
// repository that cannot be reached or an artifact that is corrupt leaves
// the previous database in use. In client/server mode the server keeps its
// own database, and UpdateDB is an error.
func (r *Runner) UpdateDB(ctx context.Context) (vuln.DBInfo, error) {
	if r.opts.Server != "" {
		return vuln.DBInfo{}, errors.New("trivy: the server updates its own database (client/server mode)")
	}
	tmp, err := os.MkdirTemp(r.opts.CacheDir, ".db-update-")
	if err != nil {
		return vuln.DBInfo{}, fmt.Errorf("updating the vulnerability database: %w", err)
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	env, err := r.env(ctx, tmp, imageRef{}, nil)
	if err != nil {
		return vuln.DBInfo{}, fmt.Errorf("updating the vulnerability database: %w", err)
	}
	args := []string{"image", "--download-db-only", "--db-repository", r.opts.DBRepository,
		"--cache-dir", tmp, "--quiet", "--timeout", r.opts.Timeout.String()}
	if r.opts.Insecure {
		args = append(args, "--insecure")
	}
	args = append(args, offlineArgs...)
	if _, err := r.run(ctx, args, env, 1<<20, "output"); err != nil {
		return vuln.DBInfo{}, fmt.Errorf("updating the vulnerability database from %s: %w", r.opts.DBRepository, err)
	}
	fresh := filepath.Join(tmp, "db")
	info, err := readMetadata(fresh)
	if err != nil {
		return vuln.DBInfo{}, fmt.Errorf("updating the vulnerability database from %s: the download: %w", r.opts.DBRepository, err)
	}
	if err := checkBolt(filepath.Join(fresh, "trivy.db")); err != nil {
		return vuln.DBInfo{}, fmt.Errorf("updating the vulnerability database from %s: %w", r.opts.DBRepository, err)
	}
	r.db.Lock()
	defer r.db.Unlock()
	cur := filepath.Join(r.opts.CacheDir, "db")
	old := filepath.Join(tmp, "old")
	if err := os.Rename(cur, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return vuln.DBInfo{}, fmt.Errorf("updating the vulnerability database: %w", err)
	}
	if err := os.Rename(fresh, cur); err != nil {
		_ = os.Rename(old, cur)
		return vuln.DBInfo{}, fmt.Errorf("updating the vulnerability database: %w", err)
	}
	info.Repository = r.opts.DBRepository
	return info, nil
}

// checkBolt checks that path starts like a bbolt database (its meta page
// magic), so that a corrupt artifact that still unpacked is not swapped in.
func checkBolt(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, 32)
	if _, err := io.ReadFull(f, head); err != nil {
		return fmt.Errorf("trivy.db is not a database: %w", err)
	}
	// bbolt's meta page: page header (16 bytes), then the magic 0xED0CDAED.
	magic := uint32(head[16]) | uint32(head[17])<<8 | uint32(head[18])<<16 | uint32(head[19])<<24
	if magic != 0xED0CDAED {
		return errors.New("trivy.db is not a database (no bbolt magic)")
	}
	return nil
}
