package policies

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/bundle"
)

// Module is one Rego file to load: its name (shown in errors and findings)
// and its text.
type Module struct {
	Name string
	Text string
}

// Bundle data and policy limits: a bundle or policy tree is a few MiB at
// most; anything bigger is a mistake or an attack.
const (
	maxModuleBytes = 4 << 20
	maxBundleBytes = 64 << 20
	maxModules     = 10000
)

// IsTestFile reports whether a Rego file holds tests, which the engine never
// loads and `tollgate test` runs.
func IsTestFile(name string) bool { return strings.HasSuffix(name, "_test.rego") }

// ReadFS reads every .rego file of fsys (tests excluded unless withTests),
// naming each prefix/path. Runners take an fs.FS so tests can feed
// fstest.MapFS and the built-in library comes from go:embed.
func ReadFS(fsys fs.FS, prefix string, withTests bool) ([]Module, error) {
	var mods []Module
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != "." && strings.HasPrefix(d.Name(), ".") {
				return fs.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".rego") || (!withTests && IsTestFile(p)) {
			return nil
		}
		if len(mods) >= maxModules {
			return fmt.Errorf("more than %d policy files", maxModules)
		}
		b, err := readLimited(fsys, p)
		if err != nil {
			return err
		}
		mods = append(mods, Module{Name: path.Join(prefix, p), Text: string(b)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading policies from %s: %w", prefix, err)
	}
	return mods, nil
}

func readLimited(fsys fs.FS, p string) ([]byte, error) {
	f, err := fsys.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxModuleBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxModuleBytes {
		return nil, fmt.Errorf("%s: over the %d byte limit for a policy file", p, maxModuleBytes)
	}
	return b, nil
}

// ReadPath reads policies from a .rego file, a directory of them, or an OPA
// bundle (.tar.gz, as built by `opa build`). Bundle data documents are
// returned too; the engine serves them under data.
func ReadPath(p string, withTests bool) ([]Module, map[string]any, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, nil, fmt.Errorf("reading policies: %w", err)
	}
	switch {
	case st.IsDir():
		mods, err := ReadFS(os.DirFS(p), filepath.ToSlash(p), withTests)
		return mods, nil, err
	case strings.HasSuffix(p, ".rego"):
		dir, file := filepath.Split(p)
		if dir == "" {
			dir = "."
		}
		b, err := readLimited(os.DirFS(dir), file)
		if err != nil {
			return nil, nil, fmt.Errorf("reading policy: %w", err)
		}
		return []Module{{Name: filepath.ToSlash(p), Text: string(b)}}, nil, nil
	case strings.HasSuffix(p, ".tar.gz") || strings.HasSuffix(p, ".tgz"):
		f, err := os.Open(p)
		if err != nil {
			return nil, nil, fmt.Errorf("reading bundle: %w", err)
		}
		defer f.Close()
		return ReadBundle(filepath.ToSlash(p), f, withTests)
	}
	return nil, nil, fmt.Errorf("reading policies: %s is neither a directory, a .rego file nor a .tar.gz bundle", p)
}

// ReadBundle reads an OPA bundle tarball. Its modules are named
// bundle.tar.gz/path/in/bundle.rego so errors point into it.
func ReadBundle(name string, r io.Reader, withTests bool) ([]Module, map[string]any, error) {
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r, maxBundleBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("reading bundle %s: %w", name, err)
	}
	if n > maxBundleBytes {
		return nil, nil, fmt.Errorf("reading bundle %s: over the %d byte limit", name, maxBundleBytes)
	}
	// Check the gzip header ourselves: the bundle reader's error for a file
	// that is not a tarball at all is cryptic.
	if _, err := gzip.NewReader(bytes.NewReader(buf.Bytes())); err != nil {
		return nil, nil, fmt.Errorf("reading bundle %s: not a gzipped tarball (%w); build bundles with `opa build`", name, err)
	}
	b, err := bundle.NewReader(&buf).
		WithSizeLimitBytes(maxModuleBytes).
		WithSkipBundleVerification(true).
		Read()
	if err != nil {
		return nil, nil, fmt.Errorf("reading bundle %s: %w", name, err)
	}
	var mods []Module
	for _, mf := range b.Modules {
		p := strings.TrimPrefix(mf.Path, "/")
		if !withTests && IsTestFile(p) {
			continue
		}
		mods = append(mods, Module{Name: name + "/" + p, Text: string(mf.Raw)})
	}
	slices.SortFunc(mods, func(a, b Module) int { return strings.Compare(a.Name, b.Name) })
	if len(mods) == 0 && len(b.Data) == 0 {
		return nil, nil, errors.New("reading bundle " + name + ": it holds no policies and no data")
	}
	return mods, b.Data, nil
}
