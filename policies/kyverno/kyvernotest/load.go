package kyvernotest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/apis/v1alpha1"
	kjson "sigs.k8s.io/json"

	"github.com/tollgate-dev/tollgate/policies/manifest"
)

// FileName is the name of the test files `kyverno test` looks for, and so
// does Find.
const FileName = "kyverno-test.yaml"

// apiVersion is the group and version of Kyverno's CLI test and values
// files.
const apiVersion = "cli.kyverno.io/v1alpha1"

// Find lists the Kyverno test files under each path: a directory is walked
// for files named kyverno-test.yaml (hidden directories skipped); a file
// given by itself is one when it has that name, or is YAML holding a
// cli.kyverno.io Test (other files, such as Rego, are left to the other
// runners). The list is sorted and without duplicates; a path that does
// not exist is an error.
func Find(paths []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	var errs []error
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !st.IsDir() {
			if !seen[p] && IsTestFile(p) {
				seen[p] = true
				out = append(out, p)
			}
			continue
		}
		err = filepath.WalkDir(p, func(f string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if f != p && strings.HasPrefix(d.Name(), ".") {
					return fs.SkipDir
				}
				return nil
			}
			if d.Name() == FileName && !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
			return nil
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	sort.Strings(out)
	return out, errors.Join(errs...)
}

// IsTestFile tells whether a file is a Kyverno test file: named
// kyverno-test.yaml, or a YAML file holding a cli.kyverno.io Test.
func IsTestFile(path string) bool {
	if filepath.Base(path) == FileName {
		return true
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
	default:
		return false
	}
	raw, err := os.ReadFile(path)
	return err == nil && bytes.Contains(raw, []byte(apiVersion)) && testKind.Match(raw)
}

var testKind = regexp.MustCompile(`(?m)^kind:\s*["']?Test["']?\s*$`)

// test is one Test document of a test file, with where it is.
type test struct {
	v1alpha1.Test
	// file is the test file; line the line of the document in it.
	file string
	line int
	// doc locates the test's fields for errors.
	doc *manifest.Document
}

// where is "file:line" of a field of the test ("" for the document).
func (t *test) where(path ...any) string {
	line := t.line
	if t.doc != nil && len(path) > 0 {
		line = t.doc.LineOf(path)
	}
	return t.file + ":" + strconv.Itoa(line)
}

// name names the test in messages: its metadata.name, or its place.
func (t *test) name() string {
	if t.ObjectMeta.Name != "" {
		return t.ObjectMeta.Name
	}
	return filepath.Base(t.file) + ":" + strconv.Itoa(t.line)
}

// loadTests reads a test file: one Test per YAML document, decoded
// strictly as `kyverno test` decodes it (an unknown field is an error),
// errors naming the file and line.
func loadTests(file string) ([]*test, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	docs, err := manifest.Read(file, bytes.NewReader(raw), manifest.Options{})
	if err != nil {
		return nil, err
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("%s: no test in the file", file)
	}
	var out []*test
	var errs []error
	for i := range docs {
		d := &docs[i]
		t := &test{file: file, line: d.Line, doc: d}
		if err := decodeStrict(d, "Test", &t.Test); err != nil {
			errs = append(errs, err)
			continue
		}
		// Kyverno rejects the schema of before 1.15 the same way. (t.Name
		// is the top-level name; metadata.name is t.ObjectMeta.Name.)
		if t.Name != "" {
			errs = append(errs, fmt.Errorf("%s: name: a top-level name is the old test schema; use metadata.name", t.where("name")))
			continue
		}
		out = append(out, t)
	}
	return out, errors.Join(errs...)
}

// loadValues reads a Values file (cli.kyverno.io/v1alpha1 Values).
func loadValues(file string) (*v1alpha1.ValuesSpec, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	docs, err := manifest.Read(file, bytes.NewReader(raw), manifest.Options{})
	if err != nil {
		return nil, err
	}
	if len(docs) != 1 {
		return nil, fmt.Errorf("%s: a values file holds one Values object, found %d", file, len(docs))
	}
	var v v1alpha1.Values
	if err := decodeStrict(&docs[0], "Values", &v); err != nil {
		return nil, err
	}
	return &v.ValuesSpec, nil
}

// decodeStrict decodes a document into a Kyverno CLI type, failing on an
// unknown or duplicate field (as `kyverno test` does) and on another
// apiVersion or kind; errors name the file and the line of the field.
func decodeStrict(d *manifest.Document, kind string, into any) error {
	at := func(path []any) string { return d.File + ":" + strconv.Itoa(d.LineOf(path)) }
	if d.APIVersion() != apiVersion || d.Kind() != kind {
		if d.APIVersion() == "" || d.Kind() == "" {
			return fmt.Errorf("%s: no apiVersion and kind: this is the old %s schema; add apiVersion: %s and kind: %s", at(nil), kind, apiVersion, kind)
		}
		return fmt.Errorf("%s: apiVersion %s kind %s: want apiVersion %s kind %s", at([]any{"kind"}), d.APIVersion(), d.Kind(), apiVersion, kind)
	}
	raw, err := json.Marshal(d.Object)
	if err != nil {
		return fmt.Errorf("%s: %w", at(nil), err)
	}
	strictErrs, err := kjson.UnmarshalStrict(raw, into, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return fmt.Errorf("%s: %s: want %s, not a JSON %s", at(fieldPath(te.Field)), te.Field, te.Type, te.Value)
		}
		return fmt.Errorf("%s: %w", at(nil), err)
	}
	var errs []error
	for _, e := range strictErrs {
		msg := e.Error()
		var path []any
		if m := quotedField.FindStringSubmatch(msg); m != nil {
			path = fieldPath(m[1])
			if last, ok := path[len(path)-1].(string); ok && last == "resource" {
				msg += " (results name their resources in a list: resources: [name])"
			}
		}
		errs = append(errs, fmt.Errorf("%s: %s", at(path), msg))
	}
	return errors.Join(errs...)
}

var (
	quotedField = regexp.MustCompile(`field "([^"]+)"`)
	pathStep    = regexp.MustCompile(`([^.\[\]]+)|\[(\d+)\]`)
)

// fieldPath splits "results[0].resources" into its steps: "results", 0,
// "resources".
func fieldPath(s string) []any {
	var out []any
	for _, m := range pathStep.FindAllStringSubmatch(s, -1) {
		if m[2] != "" {
			i, _ := strconv.Atoi(m[2])
			out = append(out, i)
			continue
		}
		out = append(out, m[1])
	}
	return out
}
