package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	sigsyaml "sigs.k8s.io/yaml"
)

// FuzzReadRoundTrip reads any bytes as a manifest stream, then writes the
// objects it read back out as multi-document YAML and as a JSON sequence
// and reads those: the same objects come back, in order, each at the line
// its document starts on. Every problem is an *Error at a line inside the
// input (or 0 for the whole file). Seeds are the repository's manifests
// and the library's fixtures.
func FuzzReadRoundTrip(f *testing.F) {
	for _, root := range []string{"../library", "../../test/manifests", "../../test/demo/manifests"} {
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !(strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".json")) {
				return nil //nolint:nilerr // a missing tree only removes seeds
			}
			data, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
			return nil
		})
	}
	for _, seed := range []string{helmOutput, kustomizeOutput,
		"apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {name: a}}\n- {apiVersion: v1, kind: Pod, metadata: {name: b}}\n",
		`{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}} {"apiVersion": "v1", "kind": "Pod", "spec": {"n": 1.5e300}}`,
		"apiVersion: v1\nkind: ConfigMap\ndata: {a: 'yes', b: 0x1F, c: 1e3, d: ~, e: 2026-01-01}\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, err := Read("in.yaml", bytes.NewReader(data), Options{})
		lines := bytes.Count(data, []byte("\n")) + 1
		for _, e := range flatten(err) {
			var me *Error
			if !errors.As(e, &me) {
				t.Fatalf("problem %q is a %T, not an *Error with its line", e, e)
			}
			if me.File != "in.yaml" || me.Line < 0 || me.Line > lines {
				t.Fatalf("problem %q at %s:%d, outside the input's %d lines", e, me.File, me.Line, lines)
			}
		}
		if err != nil || len(docs) == 0 {
			return
		}
		var yamlOut, jsonOut bytes.Buffer
		var starts []int
		line := 1
		for _, d := range docs {
			y, err := sigsyaml.Marshal(d.Object)
			if err != nil {
				t.Fatalf("an object read does not encode: %v", err)
			}
			yamlOut.WriteString("---\n")
			starts = append(starts, line+1)
			yamlOut.Write(y)
			line += 1 + bytes.Count(y, []byte("\n"))
			j, err := json.Marshal(d.Object)
			if err != nil {
				t.Fatalf("an object read does not encode as JSON: %v", err)
			}
			jsonOut.Write(j)
			jsonOut.WriteByte('\n')
		}
		for _, again := range []struct {
			form string
			data []byte
		}{{"YAML", yamlOut.Bytes()}, {"JSON", jsonOut.Bytes()}} {
			back, err := Read("out", bytes.NewReader(again.data), Options{})
			if err != nil {
				t.Fatalf("the objects read, written as %s, do not read back: %v\n%s", again.form, err, again.data)
			}
			if len(back) != len(docs) {
				t.Fatalf("%d objects read, %d read back from %s", len(docs), len(back), again.form)
			}
			for i := range docs {
				if diff := cmp.Diff(normal(t, docs[i].Object), normal(t, back[i].Object)); diff != "" {
					t.Fatalf("object %d changed through %s (-read +read back):\n%s", i, again.form, diff)
				}
				want := i + 1
				if again.form == "YAML" {
					want = starts[i]
				}
				if back[i].Line != want {
					t.Fatalf("object %d read back from %s at line %d, want %d", i, again.form, back[i].Line, want)
				}
			}
		}
	})
}

// normal is an object as JSON holds it: numbers as float64, so that an
// integer read from YAML equals the same integer read from JSON.
func normal(t *testing.T, obj map[string]any) any {
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
