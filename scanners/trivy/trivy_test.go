package trivy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/tollgate-dev/tollgate/policies/vuln"
	"github.com/tollgate-dev/tollgate/test/proc"
	"github.com/tollgate-dev/tollgate/test/registry"
	"github.com/tollgate-dev/tollgate/test/trivytest"
)

// fixture is what the tests share: one registry holding the planted
// database and the test images, built once.
type fixture struct {
	reg                   *registry.Registry
	trivy                 string
	dbRef                 string
	debian, alpine, clean string
	dir                   string
	err                   error
}

var (
	shared     fixture
	sharedOnce sync.Once
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.reg != nil {
		_ = shared.reg.Stop()
	}
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

func setup(tb testing.TB) *fixture {
	tb.Helper()
	sharedOnce.Do(func() {
		f := &shared
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if f.trivy, f.err = trivytest.TrivyBinary(); f.err != nil {
			return
		}
		if f.dir, f.err = os.MkdirTemp("", "tollgate-trivy-test-"); f.err != nil {
			return
		}
		if f.reg, f.err = registry.Start(ctx, registry.Options{}); f.err != nil {
			return
		}
		db, err := trivytest.BuildDB(ctx, f.dir, trivytest.Advisories())
		if err != nil {
			f.err = err
			return
		}
		if f.dbRef, f.err = trivytest.PushDB(ctx, f.reg.Host(), "trivy-db", db); f.err != nil {
			return
		}
		if f.debian, f.err = trivytest.PushDebianImage(ctx, f.reg.Host(), "team/debian", f.dir); f.err != nil {
			return
		}
		if f.alpine, f.err = trivytest.PushAlpineImage(ctx, f.reg.Host(), "team/alpine"); f.err != nil {
			return
		}
		f.clean, f.err = trivytest.PushCleanImage(ctx, f.reg.Host(), "team/clean")
	})
	if shared.err != nil {
		tb.Fatalf("test fixture: %v", shared.err)
	}
	return &shared
}

// runner returns a Runner on a fresh cache holding the planted database.
func (f *fixture) runner(tb testing.TB, mod func(*Options)) *Runner {
	tb.Helper()
	opts := Options{Binary: f.trivy, CacheDir: tb.TempDir(), DBRepository: f.dbRef, Insecure: true, Timeout: 2 * time.Minute}
	if mod != nil {
		mod(&opts)
	}
	r, err := New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	if opts.Server == "" {
		if _, err := r.UpdateDB(context.Background()); err != nil {
			tb.Fatal(err)
		}
	}
	return r
}

// ignoreTarget leaves out where a package was found and the advisory's
// page, which is Trivy's to choose (checked on its own below).
var ignoreTarget = cmpopts.IgnoreFields(vuln.Vulnerability{}, "Target", "URL")

func digest(ref string) string { return ref[strings.Index(ref, "@")+1:] }

func TestScanFindsThePlantedVulnerabilities(t *testing.T) {
	f := setup(t)
	r := f.runner(t, nil)
	ctx := context.Background()
	before := time.Now().Add(-time.Second)
	for _, tc := range []struct {
		name, image, os string
		want            []vuln.Vulnerability
	}{
		{"debian", f.debian, "debian 12.5", trivytest.WantDebian()},
		{"alpine", f.alpine, "alpine 3.20.3", trivytest.WantAlpine()},
		{"clean", f.clean, "debian 12.5", []vuln.Vulnerability{}},
		{"debian by tag", strings.Replace(f.debian, "@"+digest(f.debian), ":latest", 1), "debian 12.5", trivytest.WantDebian()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := r.Scan(ctx, tc.image, nil)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, rep.Vulnerabilities, ignoreTarget); d != "" {
				t.Errorf("vulnerabilities (-want +got):\n%s", d)
			}
			for _, v := range rep.Vulnerabilities { // every planted advisory has a page
				if !strings.HasPrefix(v.URL, "https://") || !strings.Contains(strings.ToLower(v.URL), strings.ToLower(v.ID)) {
					t.Errorf("%s: advisory page %q", v.ID, v.URL)
				}
			}
			if rep.Image != tc.image || rep.OS != tc.os {
				t.Errorf("image %q os %q, want %q and %q", rep.Image, rep.OS, tc.image, tc.os)
			}
			if want := digest(f.debian); strings.HasPrefix(tc.name, "debian") && rep.Digest != want {
				t.Errorf("digest %s, want %s", rep.Digest, want)
			}
			if rep.Packages == 0 || rep.ScannedAt.Before(before) {
				t.Errorf("packages %d, scanned at %s: want packages and a scan time", rep.Packages, rep.ScannedAt)
			}
			if rep.DB.UpdatedAt.IsZero() || rep.DB.DownloadedAt.IsZero() || rep.DB.Repository != f.dbRef {
				t.Errorf("db %+v: want its dates and the repository %s", rep.DB, f.dbRef)
			}
			if rep.SBOM != nil {
				t.Errorf("an SBOM without Options.SBOM")
			}
		})
	}
	// The Go binary and the node package are found where they are.
	rep, err := r.Scan(ctx, f.debian, nil)
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]string{}
	for _, v := range rep.Vulnerabilities {
		targets[v.Type] = v.Target
	}
	if targets["gobinary"] != trivytest.GoBinaryPath || !strings.Contains(targets["node-pkg"], "Node.js") && !strings.Contains(targets["node-pkg"], "node_modules") {
		t.Errorf("targets %v", targets)
	}
}

func TestServerModeGivesTheSameResult(t *testing.T) {
	f := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, stop, err := trivytest.StartServer(ctx, f.trivy, t.TempDir(), f.dbRef)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stop() }()
	r := f.runner(t, func(o *Options) { o.Server = srv.URL })
	rep, err := r.Scan(ctx, f.debian, nil)
	if err != nil {
		t.Fatalf("%v\nserver: %s", err, srv.Output())
	}
	if d := cmp.Diff(trivytest.WantDebian(), rep.Vulnerabilities, ignoreTarget); d != "" {
		t.Errorf("vulnerabilities through the server (-want +got):\n%s", d)
	}
	if rep.DB.UpdatedAt.IsZero() || rep.DB.Repository != srv.URL {
		t.Errorf("db %+v: want the server's database", rep.DB)
	}
	if _, err := r.UpdateDB(ctx); err == nil || !strings.Contains(err.Error(), "server updates its own database") {
		t.Errorf("UpdateDB in server mode: %v", err)
	}

	// A server that is gone: a clear error.
	_ = stop()
	if _, err := r.Scan(ctx, f.debian, nil); err == nil || !strings.Contains(err.Error(), "scanning "+f.debian) {
		t.Errorf("scan through a stopped server: %v", err)
	} else {
		t.Logf("stopped server: %v", err)
	}
}

func TestDatabase(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	t.Run("repository down keeps the database", func(t *testing.T) {
		r := f.runner(t, nil)
		was, err := r.Database(ctx)
		if err != nil {
			t.Fatal(err)
		}
		port, err := proc.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		down := fmt.Sprintf("127.0.0.1:%d/trivy-db:2", port)
		r2, err := New(Options{Binary: f.trivy, CacheDir: r.Options().CacheDir, DBRepository: down, Insecure: true, Timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		_, err = r2.UpdateDB(ctx)
		if err == nil || !strings.Contains(err.Error(), "updating the vulnerability database from "+down) {
			t.Fatalf("UpdateDB from a repository that is down: %v", err)
		}
		t.Logf("repository down: %v", err)
		now, err := r2.Database(ctx)
		if err != nil || !now.UpdatedAt.Equal(was.UpdatedAt) || !now.DownloadedAt.Equal(was.DownloadedAt) {
			t.Errorf("database after a failed update: %+v, %v; want %+v", now, err, was)
		}
		if _, err := r2.Scan(ctx, f.alpine, nil); err != nil {
			t.Errorf("scan after a failed update: %v", err)
		}
	})
	t.Run("stale by its metadata", func(t *testing.T) {
		dir := t.TempDir()
		built := time.Now().Add(-10 * 24 * time.Hour).UTC().Truncate(time.Second)
		db, err := trivytest.BuildDB(ctx, dir, trivytest.Advisories(), trivytest.DBOptions{UpdatedAt: built, NextUpdate: built.Add(24 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		ref, err := trivytest.PushDB(ctx, f.reg.Host(), "stale-db", db)
		if err != nil {
			t.Fatal(err)
		}
		r := f.runner(t, func(o *Options) { o.DBRepository = ref })
		info, err := r.Database(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !info.UpdatedAt.Equal(built) || !info.NextUpdate.Equal(built.Add(24*time.Hour)) || info.Age(time.Now()) < 10*24*time.Hour {
			t.Errorf("stale database: %+v (age %s), want built %s", info, info.Age(time.Now()), built)
		}
		rep, err := r.Scan(ctx, f.alpine, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.DB.UpdatedAt.Equal(built) {
			t.Errorf("the report's database %+v, want built %s", rep.DB, built)
		}
	})
	t.Run("no database yet", func(t *testing.T) {
		r, err := New(Options{Binary: f.trivy, CacheDir: t.TempDir(), DBRepository: f.dbRef, Insecure: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Database(ctx); err == nil || !strings.Contains(err.Error(), "no vulnerability database") {
			t.Errorf("Database before UpdateDB: %v", err)
		}
		if _, err := r.Scan(ctx, f.alpine, nil); err == nil {
			t.Errorf("scan without a database: no error")
		} else {
			t.Logf("scan without a database: %v", err)
		}
	})
}

func tarGz(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for n, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestCorruptDatabaseArtifact(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	r := f.runner(t, nil)
	was, err := r.Database(ctx)
	if err != nil {
		t.Fatal(err)
	}
	meta, _ := json.Marshal(map[string]any{"Version": 2, "UpdatedAt": time.Now().UTC(), "NextUpdate": time.Now().UTC()})
	for name, blob := range map[string][]byte{
		"not gzip":        []byte("this is not a database"),
		"truncated":       tarGz(t, map[string][]byte{"trivy.db": bytes.Repeat([]byte("x"), 4096), "metadata.json": meta})[:200],
		"not a bolt file": tarGz(t, map[string][]byte{"trivy.db": []byte("garbage"), "metadata.json": meta}),
		"no metadata":     tarGz(t, map[string][]byte{"trivy.db": []byte("garbage")}),
	} {
		t.Run(name, func(t *testing.T) {
			repo := "corrupt-" + strings.ReplaceAll(name, " ", "-")
			ref, err := trivytest.PushDBBlob(ctx, f.reg.Host(), repo, blob)
			if err != nil {
				t.Fatal(err)
			}
			bad, err := New(Options{Binary: f.trivy, CacheDir: r.Options().CacheDir, DBRepository: ref, Insecure: true, Timeout: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			_, err = bad.UpdateDB(ctx)
			if err == nil || !strings.Contains(err.Error(), "updating the vulnerability database from "+ref) {
				t.Fatalf("UpdateDB of a corrupt artifact: %v", err)
			}
			t.Logf("%s: %v", name, err)
			now, err := bad.Database(ctx)
			if err != nil || !now.DownloadedAt.Equal(was.DownloadedAt) {
				t.Errorf("database after a corrupt download: %+v, %v; want %+v", now, err, was)
			}
			rep, err := bad.Scan(ctx, f.alpine, nil)
			if err != nil {
				t.Fatalf("scan after a corrupt download: %v", err)
			}
			if d := cmp.Diff(trivytest.WantAlpine(), rep.Vulnerabilities, ignoreTarget); d != "" {
				t.Errorf("scan after a corrupt download (-want +got):\n%s", d)
			}
		})
	}
}

func TestBadImages(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	r := f.runner(t, nil)
	notTar, err := trivytest.PushRawLayerImage(ctx, f.reg.Host(), "bad/not-tar", []byte("plain text, not a tar"))
	if err != nil {
		t.Fatal(err)
	}
	whole := tarGz(t, map[string][]byte{"etc/alpine-release": []byte("3.20.3\n"), "lib/apk/db/installed": bytes.Repeat([]byte("P:busybox\nV:1.36.1-r29\n\n"), 500)})
	truncated, err := trivytest.PushRawLayerImage(ctx, f.reg.Host(), "bad/truncated", whole[:len(whole)/2])
	if err != nil {
		t.Fatal(err)
	}
	gone, err := trivytest.PushAlpineImage(ctx, f.reg.Host(), "bad/gone")
	if err != nil {
		t.Fatal(err)
	}
	d, err := name.NewDigest(gone, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Delete(d); err != nil {
		t.Fatal(err)
	}
	port, err := proc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, image string
	}{
		{"a layer that is not a tar", notTar},
		{"a truncated gzip layer", truncated},
		{"deleted from the registry", gone},
		{"a registry that is down", fmt.Sprintf("127.0.0.1:%d/app@%s", port, digest(gone))},
		{"an empty reference", ""},
		{"a flag for a reference", "--help"},
		{"spaces", "alpine latest"},
		{"upper case", "Team/App:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.Scan(ctx, tc.image, nil)
			if err == nil {
				t.Fatalf("scan of %s: no error", tc.image)
			}
			if !strings.Contains(err.Error(), tc.image) {
				t.Errorf("the error does not name the image %q: %v", tc.image, err)
			}
			t.Logf("%v", err)
			// The next scan still works.
			rep, err := r.Scan(ctx, f.alpine, nil)
			if err != nil {
				t.Fatalf("the next scan: %v", err)
			}
			if len(rep.Vulnerabilities) != 1 {
				t.Errorf("the next scan: %v", rep.Vulnerabilities)
			}
		})
	}
}

func TestBounds(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	t.Run("sbom", func(t *testing.T) {
		r := f.runner(t, func(o *Options) { o.SBOM = true })
		rep, err := r.Scan(ctx, f.debian, nil)
		if err != nil {
			t.Fatal(err)
		}
		var bom struct {
			BOMFormat  string `json:"bomFormat"`
			Components []struct {
				Name    string `json:"name"`
				Version string `json:"version"`
			} `json:"components"`
		}
		if err := json.Unmarshal(rep.SBOM, &bom); err != nil || bom.BOMFormat != "CycloneDX" {
			t.Fatalf("SBOM: %v, %q", err, rep.SBOM)
		}
		var names []string
		for _, c := range bom.Components {
			names = append(names, c.Name+"@"+c.Version)
		}
		for _, want := range []string{"openssl@3.0.11-1~deb12u1", trivytest.NodePackage + "@" + trivytest.NodeVersion} {
			if !strings.Contains(strings.Join(names, " "), want) {
				t.Errorf("SBOM components %v lack %s", names, want)
			}
		}
	})
	t.Run("sbom over the cap keeps the report", func(t *testing.T) {
		r := f.runner(t, func(o *Options) { o.SBOM, o.MaxSBOMBytes = true, 512 })
		rep, err := r.Scan(ctx, f.debian, nil)
		var sbomErr *SBOMError
		if !errors.As(err, &sbomErr) || !errors.Is(err, ErrTooLarge) {
			t.Fatalf("scan with a 512-byte SBOM cap: %v", err)
		}
		t.Logf("%v", err)
		if rep == nil || rep.SBOM != nil {
			t.Fatalf("report %+v: want the report without an SBOM", rep)
		}
		if d := cmp.Diff(trivytest.WantDebian(), rep.Vulnerabilities, ignoreTarget); d != "" {
			t.Errorf("the report kept (-want +got):\n%s", d)
		}
	})
	t.Run("report over the cap", func(t *testing.T) {
		r := f.runner(t, func(o *Options) { o.MaxReportBytes = 1024 })
		_, err := r.Scan(ctx, f.debian, nil)
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("scan with a 1 KiB report cap: %v", err)
		}
		t.Logf("%v", err)
	})
}

// keychain gives one credential for every registry.
type keychain struct{ auth authn.Authenticator }

func (k keychain) Resolve(authn.Resource) (authn.Authenticator, error) { return k.auth, nil }

func TestRegistryCredentials(t *testing.T) {
	f := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reg, err := registry.Start(ctx, registry.Options{Username: "ci", Password: "s3cret-pass"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = reg.Stop() }()
	img, err := trivytest.PushAlpineImage(ctx, reg.Host(), "private/alpine", remote.WithAuth(reg.Auth()))
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	r := f.runner(t, func(o *Options) { o.TempDir = tmp })
	rep, err := r.Scan(ctx, img, keychain{reg.Auth()})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(trivytest.WantAlpine(), rep.Vulnerabilities, ignoreTarget); d != "" {
		t.Errorf("private image (-want +got):\n%s", d)
	}
	if _, err := r.Scan(ctx, img, nil); err == nil {
		t.Errorf("private image without credentials: no error")
	}
	_, err = r.Scan(ctx, img, keychain{&authn.Basic{Username: "ci", Password: "wrong"}})
	if err == nil {
		t.Fatalf("private image with a wrong password: no error")
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("the error quotes the password: %v", err)
	}
	// No credential is left behind in a temporary directory.
	left, _ := filepath.Glob(filepath.Join(tmp, "*"))
	if len(left) != 0 {
		t.Errorf("scan directories left behind: %v", left)
	}
}

func TestOptionsValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		opts Options
		want string
	}{
		"no cache":    {Options{}, "CacheDir is required"},
		"bad server":  {Options{CacheDir: "x", Server: "127.0.0.1:4954"}, `Server "127.0.0.1:4954": want an http:// or https:// URL`},
		"negative":    {Options{CacheDir: "x", Timeout: -time.Second}, "Timeout -1s is negative"},
		"bad env":     {Options{CacheDir: "x", Env: []string{"NOPE"}}, `Env[0] "NOPE": want KEY=VALUE`},
		"bad caps":    {Options{CacheDir: "x", MaxSBOMBytes: -1}, "must not be negative"},
		"no binary":   {Options{CacheDir: "x", Binary: "/nonexistent/trivy"}, "make trivy"},
		"all at once": {Options{Server: "ftp://x", Timeout: -1}, "CacheDir is required\ntrivy: Timeout -1ns is negative\ntrivy: Server"},
	} {
		t.Run(name, func(t *testing.T) {
			if tc.opts.CacheDir == "x" {
				tc.opts.CacheDir = t.TempDir()
			}
			_, err := New(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want %q", err, tc.want)
			}
		})
	}
}
