package ocisource

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/manifest"
)

// Limits of a policy set. A set is Rego, data and a few objects: a few MiB
// at most; anything bigger is a mistake or an attack.
const (
	// DefaultMaxBytes bounds what one pull reads from the registry: the
	// manifest and the bundle layer together.
	DefaultMaxBytes = 32 << 20
	// maxUnpackedBytes bounds the bundle's files once decompressed, so a
	// small layer cannot inflate into a large one (a gzip bomb).
	maxUnpackedBytes = 64 << 20
	// maxFiles bounds the files of one set.
	maxFiles = 10000
	// maxFileBytes bounds one file.
	maxFileBytes = 4 << 20
)

// Bundle is a packed policy set: an OPA bundle (a tar.gz with a .manifest
// naming its revision and roots) ready to push.
type Bundle struct {
	// TarGz is the bundle itself, the artifact's one layer.
	TarGz []byte
	// DiffID is the sha256 of the uncompressed tar, for the image config.
	DiffID string
	// Revision is the .manifest's revision: given, or the sha256 of the
	// files' names and contents, so one set always packs the same.
	Revision string
	// Roots are the .manifest's roots: the Rego packages and data paths
	// the bundle owns.
	Roots []string
	// Modules, DataFiles and Objects count what was packed; Skipped are
	// the files that are none of these (a README), left out.
	Modules, DataFiles, Objects int
	Skipped                     []string
}

// PackOptions tune Pack.
type PackOptions struct {
	// Revision overrides the content-derived revision.
	Revision string
}

// Pack reads a policy set from fsys (a directory: os.DirFS) and packs it
// as an OPA bundle: Rego modules (tests left out), data.json and data.yaml
// documents, and YAML or JSON policy objects (TollgatePolicy,
// TollgateImagePolicy, a TollgateConfig, Gatekeeper templates and
// constraints, ValidatingAdmissionPolicies and their bindings, Kyverno
// policies). Each file is checked as it would be loaded, so a set that
// does not parse is never pushed; the error names the file and line.
func Pack(fsys fs.FS, opts PackOptions) (*Bundle, error) {
	type file struct {
		name string
		data []byte
	}
	var files []file
	b := &Bundle{}
	var roots []string
	var problems []error
	configs := 0
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && p != "." {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		if len(files) >= maxFiles {
			return fmt.Errorf("more than %d files", maxFiles)
		}
		kind := fileKind(p)
		if kind == kindOther {
			b.Skipped = append(b.Skipped, p)
			return nil
		}
		data, err := readFile(fsys, p)
		if err != nil {
			return err
		}
		switch kind {
		case kindRego:
			root, err := regoRoot(p, data)
			if err != nil {
				problems = append(problems, err)
				return nil
			}
			roots = append(roots, root)
			b.Modules++
		case kindData:
			r, err := dataRoots(p, data)
			if err != nil {
				problems = append(problems, err)
				return nil
			}
			roots = append(roots, r...)
			b.DataFiles++
		case kindObjects:
			docs, n, err := readObjects(p, data)
			if err != nil {
				problems = append(problems, err)
				return nil
			}
			configs += n
			b.Objects += len(docs)
		}
		files = append(files, file{p, data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the policy set: %w", err)
	}
	if configs > 1 {
		problems = append(problems, fmt.Errorf("the set holds %d Tollgate configs; at most one", configs))
	}
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	if b.Modules == 0 && b.DataFiles == 0 && b.Objects == 0 {
		return nil, errors.New("the policy set holds no Rego modules, data or policy objects")
	}
	b.Roots = dedupeRoots(roots)
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%d\x00", f.name, len(f.data))
		h.Write(f.data)
	}
	b.Revision = opts.Revision
	if b.Revision == "" {
		b.Revision = "sha256:" + hex.EncodeToString(h.Sum(nil))
	}
	mf, err := json.Marshal(map[string]any{"revision": b.Revision, "roots": b.Roots, "rego_version": 1})
	if err != nil {
		return nil, err
	}
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	add := func(name string, data []byte) error {
		// Fixed modes and times: the same files pack to the same digest.
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := add(".manifest", mf); err != nil {
		return nil, err
	}
	for _, f := range files {
		if err := add(f.name, f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(tarBuf.Bytes())
	b.DiffID = "sha256:" + hex.EncodeToString(sum[:])
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if _, err := zw.Write(tarBuf.Bytes()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	b.TarGz = gz.Bytes()
	return b, nil
}

type kind int

const (
	kindOther kind = iota
	kindRego
	kindData
	kindObjects
)

func fileKind(p string) kind {
	base := path.Base(p)
	switch {
	case strings.HasSuffix(p, ".rego") && !policies.IsTestFile(p):
		return kindRego
	case base == "data.json" || base == "data.yaml" || base == "data.yml":
		return kindData
	case strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml") || strings.HasSuffix(p, ".json"):
		return kindObjects
	}
	return kindOther
}

func readFile(fsys fs.FS, p string) ([]byte, error) {
	f, err := fsys.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("%s: over the %d byte limit of a file", p, maxFileBytes)
	}
	return data, nil
}

// regoRoot parses a module and returns its package as a bundle root
// ("corp/registry").
func regoRoot(p string, data []byte) (string, error) {
	m, err := ast.ParseModuleWithOpts(p, string(data), ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		return "", err
	}
	var segs []string
	for _, t := range m.Package.Path[1:] {
		s, ok := t.Value.(ast.String)
		if !ok {
			return "", fmt.Errorf("%s: package %s: not a plain path", p, m.Package.Path)
		}
		segs = append(segs, string(s))
	}
	return strings.Join(segs, "/"), nil
}

// dataRoots parses a data document and returns the roots it fills: its
// directory, or at the top its keys.
func dataRoots(p string, data []byte) ([]string, error) {
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", p, policies.YAMLError(data, err))
	}
	dir := path.Dir(p)
	if dir != "." {
		return []string{dir}, nil
	}
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: the top-level data document must be an object, got %T", p, doc)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys, nil
}

// readObjects parses a file of policy objects and checks each is one a
// set may hold; it returns them and how many are Tollgate configs.
func readObjects(p string, data []byte) ([]manifest.Document, int, error) {
	docs, err := manifest.Read(p, bytes.NewReader(data), manifest.Options{})
	if err != nil {
		return nil, 0, err
	}
	configs := 0
	var problems []error
	for _, d := range docs {
		switch objectKind(d.Object) {
		case objConfig:
			configs++
			if _, err := policies.ParseConfig(data); err != nil && len(docs) == 1 {
				problems = append(problems, fmt.Errorf("%s:%d: %w", p, d.Line, err))
			} else if len(docs) > 1 {
				problems = append(problems, fmt.Errorf("%s:%d: a Tollgate config must be alone in its file", p, d.Line))
			}
		case objPolicy:
		default:
			problems = append(problems, fmt.Errorf("%s:%d: %s %s is not a policy object (want TollgatePolicy, TollgateImagePolicy, TollgateConfig, Gatekeeper, ValidatingAdmissionPolicy or Kyverno objects)", p, d.Line, d.APIVersion(), d.Kind()))
		}
	}
	return docs, configs, errors.Join(problems...)
}

type objKind int

const (
	objUnknown objKind = iota
	objPolicy
	objConfig
)

func objectKind(obj map[string]any) objKind {
	apiVersion, _ := obj["apiVersion"].(string)
	k, _ := obj["kind"].(string)
	group, _, _ := strings.Cut(apiVersion, "/")
	switch {
	case group == "tollgate.dev" && (k == policies.ConfigObjectKind || k == policies.ConfigKind):
		return objConfig
	case group == "tollgate.dev" && (k == "TollgatePolicy" || k == "TollgateImagePolicy"),
		group == "templates.gatekeeper.sh" && k == "ConstraintTemplate", group == "constraints.gatekeeper.sh",
		group == "admissionregistration.k8s.io" && (strings.HasSuffix(k, "AdmissionPolicy") || strings.HasSuffix(k, "AdmissionPolicyBinding")),
		group == "kyverno.io", group == "policies.kyverno.io":
		return objPolicy
	}
	return objUnknown
}

// dedupeRoots sorts the roots and drops each one another contains, since
// OPA refuses a manifest whose roots overlap.
func dedupeRoots(roots []string) []string {
	slices.Sort(roots)
	roots = slices.Compact(roots)
	var out []string
	for _, r := range roots {
		if r == "" {
			return []string{""}
		}
		covered := false
		for _, o := range out {
			if r == o || strings.HasPrefix(r, o+"/") {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, r)
		}
	}
	return out
}

// Set is a policy set pulled and verified: what a server or `tollgate
// check` loads.
type Set struct {
	// Ref is the reference followed (host/repo:tag); Digest the
	// manifest digest verified and loaded (sha256:…).
	Ref, Digest string
	// Revision is the bundle's .manifest revision.
	Revision string
	// Modules and Data are the Rego modules (named oci/<path>) and data.
	Modules []policies.Module
	Data    map[string]any
	// Objects are the policy objects; Config the Tollgate config, nil
	// when the set has none.
	Objects []manifest.Document
	Config  *policies.Config
}

// Unpack reads a bundle layer (already verified: this parses it) into a
// Set. name prefixes module and object names so errors point into it.
func Unpack(name string, tarGz []byte) (*Set, error) {
	zr, err := gzip.NewReader(bytes.NewReader(tarGz))
	if err != nil {
		return nil, fmt.Errorf("the bundle layer is not gzip (%w)", err)
	}
	tr := tar.NewReader(io.LimitReader(zr, maxUnpackedBytes+1))
	set := &Set{}
	var unpacked int64
	var problems []error
	files := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the bundle's tar: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		p := path.Clean(strings.TrimPrefix(h.Name, "/"))
		if p == ".." || strings.HasPrefix(p, "../") {
			return nil, fmt.Errorf("the bundle holds %q, outside the bundle", h.Name)
		}
		if files++; files > maxFiles {
			return nil, fmt.Errorf("the bundle holds more than %d files", maxFiles)
		}
		if h.Size > maxFileBytes {
			return nil, fmt.Errorf("%s: %d bytes, over the %d byte limit of a file", p, h.Size, maxFileBytes)
		}
		if unpacked += h.Size; unpacked > maxUnpackedBytes {
			return nil, fmt.Errorf("the bundle unpacks to more than %d bytes", maxUnpackedBytes)
		}
		data, err := io.ReadAll(io.LimitReader(tr, maxFileBytes+1))
		if err != nil {
			return nil, fmt.Errorf("reading %s from the bundle: %w", p, err)
		}
		if p == ".manifest" {
			var mf struct {
				Revision string `json:"revision"`
			}
			if err := json.Unmarshal(data, &mf); err != nil {
				return nil, fmt.Errorf(".manifest: %w", err)
			}
			set.Revision = mf.Revision
			continue
		}
		if fileKind(p) != kindObjects {
			continue // Rego and data: OPA's bundle reader reads them below
		}
		docs, n, err := readObjects(name+"/"+p, data)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		if n == 1 {
			if set.Config, err = policies.ParseConfig(data); err != nil {
				problems = append(problems, fmt.Errorf("%s/%s: %w", name, p, err))
			}
			continue
		}
		set.Objects = append(set.Objects, docs...)
	}
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	mods, data, err := policies.ReadBundle(name, bytes.NewReader(tarGz), false)
	if err != nil && len(set.Objects) == 0 && set.Config == nil {
		return nil, err
	}
	if err != nil && !strings.Contains(err.Error(), "holds no policies and no data") {
		return nil, err
	}
	set.Modules, set.Data = mods, data
	return set, nil
}
