package trivytest

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/tollgate-dev/tollgate/policies/vuln"
)

// Package is an OS package installed in a test image. Source is its
// source package (Debian) or origin (Alpine), which advisories name; ""
// means the same as Name.
type Package struct {
	Name, Source, Version string
}

// The releases of the test images.
const (
	DebianRelease = "12"
	DebianVersion = "12.5"
	AlpineRelease = "3.20"
	AlpineVersion = "3.20.3"
)

// DebianPackages are the packages of the Debian test image: openssl with a
// fixed advisory, zlib1g (source zlib) with one no fix exists for yet,
// bash with an advisory fixed before the installed version, and tzdata
// with none.
var DebianPackages = []Package{
	{Name: "openssl", Version: "3.0.11-1~deb12u1"},
	{Name: "zlib1g", Source: "zlib", Version: "1:1.2.13.dfsg-1"},
	{Name: "bash", Version: "5.2.15-2+b2"},
	{Name: "tzdata", Version: "2024a-0+deb12u1"},
}

// AlpinePackages are the packages of the Alpine test image: busybox with a
// fixed advisory, musl with an advisory fixed before the installed
// version.
var AlpinePackages = []Package{
	{Name: "busybox", Version: "1.36.1-r29"},
	{Name: "musl", Version: "1.2.5-r0"},
}

// NodePackage is the npm package of the Debian test image, under
// app/node_modules; its advisory is fixed in NodeFixed.
const (
	NodePackage = "left-pad"
	NodeVersion = "1.1.0"
	NodeFixed   = "1.3.0"
)

// GoModule is the module the test Go binary (testdata/app) imports; its
// version is the one in Tollgate's go.mod (GoModuleVersion).
const GoModule = "github.com/google/go-cmp"

// GoBinaryPath is where the Debian test image holds the Go binary.
const GoBinaryPath = "usr/local/bin/app"

// GoModuleVersion is GoModule's version in Tollgate's go.mod ("v0.7.0"),
// which the test binary's build information records.
func GoModuleVersion() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		if len(f) >= 2 && f[0] == GoModule {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("%s is not in %s/go.mod", GoModule, root)
}

// nextPatch is version with its last number one higher: v0.7.0 → 0.7.1.
func nextPatch(version string) string {
	v := strings.TrimPrefix(version, "v")
	i := strings.LastIndex(v, ".")
	var n int
	_, _ = fmt.Sscanf(v[i+1:], "%d", &n)
	return fmt.Sprintf("%s.%d", v[:i], n+1)
}

// Advisories are the advisories planted for the test images: for each
// ecosystem one that applies with a fix, and for Debian one without a fix
// and one that does not affect the installed version. Scans of
// PushDebianImage and PushAlpineImage find exactly WantDebian and
// WantAlpine.
func Advisories() []Advisory {
	goVersion, err := GoModuleVersion()
	if err != nil {
		panic("trivytest: " + err.Error())
	}
	goFixed := nextPatch(goVersion)
	return []Advisory{
		{Ecosystem: "debian", Release: DebianRelease, Package: "openssl", ID: "CVE-2026-10001", Fixed: "3.0.15-1~deb12u1", Severity: vuln.High, Title: "openssl: planted buffer overread"},
		{Ecosystem: "debian", Release: DebianRelease, Package: "zlib", ID: "CVE-2026-10002", Severity: vuln.Critical, Title: "zlib: planted inflate overflow without a fix"},
		{Ecosystem: "debian", Release: DebianRelease, Package: "bash", ID: "CVE-2026-10003", Fixed: "5.2.15-1", Severity: vuln.Critical, Title: "bash: planted, fixed before the installed version"},
		{Ecosystem: "alpine", Release: AlpineRelease, Package: "busybox", ID: "CVE-2026-10101", Fixed: "1.36.1-r30", Severity: vuln.Critical, Title: "busybox: planted shell injection"},
		{Ecosystem: "alpine", Release: AlpineRelease, Package: "musl", ID: "CVE-2026-10102", Fixed: "1.2.4-r0", Severity: vuln.High, Title: "musl: planted, fixed before the installed version"},
		{Ecosystem: "go", Package: GoModule, ID: "GHSA-tg00-0001-0001", Vulnerable: []string{"<" + goFixed}, Patched: []string{goFixed}, Severity: vuln.Medium, Title: "go-cmp: planted panic on cyclic values"},
		{Ecosystem: "go", Package: "golang.org/x/text", ID: "GHSA-tg00-0001-0002", Vulnerable: []string{"<0.3.8"}, Patched: []string{"0.3.8"}, Severity: vuln.High, Title: "x/text: planted, for a module the binary does not hold"},
		{Ecosystem: "npm", Package: NodePackage, ID: "GHSA-tg00-0002-0001", Vulnerable: []string{"<" + NodeFixed}, Patched: []string{NodeFixed}, Severity: vuln.Low, Title: "left-pad: planted off-by-one"},
	}
}

// WantDebian is what a scan of PushDebianImage finds with Advisories:
// Class, Type, ID, Package, Installed, Fixed, Severity and Title (Target is
// left to the scanner). Sorted as vuln.Report.Sort sorts.
func WantDebian() []vuln.Vulnerability {
	goVersion, err := GoModuleVersion()
	if err != nil {
		panic("trivytest: " + err.Error())
	}
	want := []vuln.Vulnerability{
		{ID: "CVE-2026-10001", Package: "openssl", Installed: "3.0.11-1~deb12u1", Fixed: "3.0.15-1~deb12u1", Severity: vuln.High, Title: "openssl: planted buffer overread", Class: "os-pkgs", Type: "debian"},
		{ID: "CVE-2026-10002", Package: "zlib1g", Installed: "1:1.2.13.dfsg-1", Severity: vuln.Critical, Title: "zlib: planted inflate overflow without a fix", Class: "os-pkgs", Type: "debian"},
		{ID: "GHSA-tg00-0001-0001", Package: GoModule, Installed: goVersion, Fixed: nextPatch(goVersion), Severity: vuln.Medium, Title: "go-cmp: planted panic on cyclic values", Class: "lang-pkgs", Type: "gobinary"},
		{ID: "GHSA-tg00-0002-0001", Package: NodePackage, Installed: NodeVersion, Fixed: NodeFixed, Severity: vuln.Low, Title: "left-pad: planted off-by-one", Class: "lang-pkgs", Type: "node-pkg"},
	}
	r := vuln.Report{Vulnerabilities: want}
	r.Sort()
	return r.Vulnerabilities
}

// WantAlpine is what a scan of PushAlpineImage finds with Advisories.
func WantAlpine() []vuln.Vulnerability {
	return []vuln.Vulnerability{
		{ID: "CVE-2026-10101", Package: "busybox", Installed: "1.36.1-r29", Fixed: "1.36.1-r30", Severity: vuln.Critical, Title: "busybox: planted shell injection", Class: "os-pkgs", Type: "alpine"},
	}
}

// File is one file of a test layer.
type File struct {
	Data []byte
	Mode int64
}

// Layer is the files of one image layer by path (relative, "etc/os-release").
type Layer map[string]File

// DebianLayer is a Debian 12 root: /etc/os-release, /etc/debian_version
// and a dpkg status file listing pkgs.
func DebianLayer(pkgs ...Package) Layer {
	var status strings.Builder
	for _, p := range pkgs {
		fmt.Fprintf(&status, "Package: %s\nStatus: install ok installed\nPriority: optional\nSection: libs\nInstalled-Size: 100\nMaintainer: Debian <debian@example.org>\nArchitecture: amd64\n", p.Name)
		if p.Source != "" {
			fmt.Fprintf(&status, "Source: %s\n", p.Source)
		}
		fmt.Fprintf(&status, "Version: %s\nDescription: %s for tests\n\n", p.Version, p.Name)
	}
	return Layer{
		"etc/os-release": {Data: []byte(`PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
`), Mode: 0o644},
		"etc/debian_version":  {Data: []byte(DebianVersion + "\n"), Mode: 0o644},
		"var/lib/dpkg/status": {Data: []byte(status.String()), Mode: 0o644},
	}
}

// AlpineLayer is an Alpine 3.20 root: /etc/alpine-release, /etc/os-release
// and an apk database listing pkgs.
func AlpineLayer(pkgs ...Package) Layer {
	var installed strings.Builder
	for _, p := range pkgs {
		origin := p.Source
		if origin == "" {
			origin = p.Name
		}
		fmt.Fprintf(&installed, "C:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\nP:%s\nV:%s\nA:x86_64\nS:1000\nI:2000\nT:%s for tests\nU:https://example.org/\nL:MIT\no:%s\nm:Tests <tests@example.org>\nt:1700000000\n\n", p.Name, p.Version, p.Name, origin)
	}
	return Layer{
		"etc/alpine-release": {Data: []byte(AlpineVersion + "\n"), Mode: 0o644},
		"etc/os-release": {Data: []byte(`NAME="Alpine Linux"
ID=alpine
VERSION_ID=` + AlpineVersion + `
PRETTY_NAME="Alpine Linux v3.20"
`), Mode: 0o644},
		"lib/apk/db/installed": {Data: []byte(installed.String()), Mode: 0o644},
	}
}

// NodeLayer holds app/node_modules/NAME/package.json for the npm package
// name at version.
func NodeLayer(name, version string) Layer {
	return Layer{
		"app/node_modules/" + name + "/package.json": {
			Data: []byte(fmt.Sprintf(`{"name": %q, "version": %q, "license": "MIT"}`+"\n", name, version)), Mode: 0o644,
		},
	}
}

// GoBinaryLayer builds testdata/app (offline, from the module cache) and
// returns a layer holding it at GoBinaryPath. dir holds the build output.
func GoBinaryLayer(ctx context.Context, dir string) (Layer, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	out := filepath.Join(dir, "app")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-o", out, "./test/trivytest/testdata/app")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOPROXY=off", "CGO_ENABLED=0", "GOOS=linux")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the test Go binary: %w: %s", err, strings.TrimSpace(string(msg)))
	}
	data, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	return Layer{GoBinaryPath: {Data: data, Mode: 0o755}}, nil
}

// Tar is the layer as an uncompressed tar, its directories first.
func (l Layer) Tar() ([]byte, error) {
	paths := make([]string, 0, len(l))
	for p := range l {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	mtime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, p := range paths {
		for d := filepath.Dir(p); d != "."; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	ds := make([]string, 0, len(dirs))
	for d := range dirs {
		ds = append(ds, d)
	}
	sort.Strings(ds)
	for _, d := range ds {
		if err := tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime}); err != nil {
			return nil, err
		}
	}
	for _, p := range paths {
		f := l[p]
		if err := tw.WriteHeader(&tar.Header{Name: p, Typeflag: tar.TypeReg, Mode: f.Mode, Size: int64(len(f.Data)), ModTime: mtime}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// PushImage pushes an image of layers (linux/amd64) to
// registryHost/repo:latest and returns its digest reference
// (host/repo@sha256:...). opts add remote options, such as credentials.
func PushImage(ctx context.Context, registryHost, repo string, layers []Layer, opts ...remote.Option) (string, error) {
	var ls []v1.Layer
	for _, l := range layers {
		data, err := l.Tar()
		if err != nil {
			return "", err
		}
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		})
		if err != nil {
			return "", err
		}
		ls = append(ls, layer)
	}
	return pushLayers(ctx, registryHost+"/"+repo+":latest", ls, opts...)
}

// PushRawLayerImage pushes an image whose one layer's bytes are blob,
// whatever they hold (a truncated gzip, text that is no tar), for tests
// of malformed images.
func PushRawLayerImage(ctx context.Context, registryHost, repo string, blob []byte, opts ...remote.Option) (string, error) {
	return pushLayers(ctx, registryHost+"/"+repo+":latest", []v1.Layer{staticLayer{data: blob, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip"}}, opts...)
}

func pushLayers(ctx context.Context, ref string, layers []v1.Layer, opts ...remote.Option) (string, error) {
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		return "", err
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return "", err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return "", err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Created = v1.Time{Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return "", err
	}
	if err := remote.Write(tag, img, append([]remote.Option{remote.WithContext(ctx)}, opts...)...); err != nil {
		return "", fmt.Errorf("pushing %s: %w", tag, err)
	}
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	return tag.Context().Digest(d.String()).String(), nil
}

// PushDebianImage pushes the Debian test image to registryHost/repo: a
// Debian 12 layer with DebianPackages and a language layer holding the Go
// binary (built into dir) and the npm package NodePackage. It returns the
// digest reference.
func PushDebianImage(ctx context.Context, registryHost, repo, dir string, opts ...remote.Option) (string, error) {
	app, err := GoBinaryLayer(ctx, dir)
	if err != nil {
		return "", err
	}
	lang := NodeLayer(NodePackage, NodeVersion)
	for p, f := range app {
		lang[p] = f
	}
	return PushImage(ctx, registryHost, repo, []Layer{DebianLayer(DebianPackages...), lang}, opts...)
}

// PushAlpineImage pushes the Alpine test image (AlpinePackages) to
// registryHost/repo and returns the digest reference.
func PushAlpineImage(ctx context.Context, registryHost, repo string, opts ...remote.Option) (string, error) {
	return PushImage(ctx, registryHost, repo, []Layer{AlpineLayer(AlpinePackages...)}, opts...)
}

// PushCleanImage pushes a Debian image no planted advisory applies to
// (tzdata only) and returns the digest reference.
func PushCleanImage(ctx context.Context, registryHost, repo string, opts ...remote.Option) (string, error) {
	return PushImage(ctx, registryHost, repo, []Layer{DebianLayer(Package{Name: "tzdata", Version: "2024a-0+deb12u1"})}, opts...)
}
