package manifest

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// writeTree creates files under dir; a value of "" creates a directory.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if content == "" {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func configMap(name string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n"
}

// loaded is what the Load tests compare about a Document.
type loaded struct {
	File string
	Line int
	Name string
}

func loadedDocs(docs []Document) []loaded {
	var out []loaded
	for _, d := range docs {
		out = append(out, loaded{File: filepath.ToSlash(d.File), Line: d.Line, Name: d.Name()})
	}
	return out
}

// loadErrStrings flattens joined errors into messages with slash paths.
func loadErrStrings(err error) []string {
	var out []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		out = append(out, filepath.ToSlash(e.Error()))
	}
	if err != nil {
		walk(err)
	}
	return out
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	writeTree(t, dir, map[string]string{
		"manifests/a.yaml":                configMap("a"),
		"manifests/b.yml":                 "# comment\n" + configMap("b"),
		"manifests/c.json":                `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}`,
		"manifests/empty.yaml":            "# Source: chart/templates/nothing.yaml\n",
		"manifests/notes.txt":             "not a manifest",
		"manifests/values.yaml":           "replicas: 3\n",
		"manifests/values-prod.yaml":      "replicas: 5\n",
		"manifests/.gitlab-ci.yml":        "stages: [test]\n",
		"manifests/.hidden/h.yaml":        configMap("hidden"),
		"manifests/sub/d.YAML":            configMap("d"),
		"manifests/sub/skip/e.yaml":       configMap("e"),
		"manifests/sub/z.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: z\n---\nkind: Broken\n",
		"manifests/charts/dep/f.yaml":     configMap("f"),
		"manifests/emptydir":              "",
		"other/x.txt":                     configMap("explicit"),
		"other/bad.yaml":                  "apiVersion: v1\nkind: [\n",
		"other/sub/ignored-explicit.yaml": configMap("g"),
	})
	opts := Options{Ignore: []string{"values*.yaml", "charts", "sub/skip"}}

	tests := []struct {
		name     string
		paths    []string
		stdin    string
		opts     Options
		want     []loaded
		wantErrs []string
	}{
		{
			name:  "directory recursion in lexical order with ignores and hidden entries",
			paths: []string{"manifests"},
			opts:  opts,
			want: []loaded{
				{File: "manifests/a.yaml", Line: 1, Name: "a"},
				{File: "manifests/b.yml", Line: 2, Name: "b"},
				{File: "manifests/c.json", Line: 1, Name: "c"},
				{File: "manifests/sub/d.YAML", Line: 1, Name: "d"},
				{File: "manifests/sub/z.yaml", Line: 1, Name: "z"},
			},
			wantErrs: []string{`manifests/sub/z.yaml:6: missing "apiVersion": this is not a Kubernetes object (kind is "Broken")`},
		},
		{
			name:  "without ignores every manifest file is read",
			paths: []string{"manifests/"},
			want: []loaded{
				{File: "manifests/a.yaml", Line: 1, Name: "a"},
				{File: "manifests/b.yml", Line: 2, Name: "b"},
				{File: "manifests/c.json", Line: 1, Name: "c"},
				{File: "manifests/charts/dep/f.yaml", Line: 1, Name: "f"},
				{File: "manifests/sub/d.YAML", Line: 1, Name: "d"},
				{File: "manifests/sub/skip/e.yaml", Line: 1, Name: "e"},
				{File: "manifests/sub/z.yaml", Line: 1, Name: "z"},
			},
			wantErrs: []string{
				`manifests/sub/z.yaml:6: missing "apiVersion": this is not a Kubernetes object (kind is "Broken")`,
				`manifests/values-prod.yaml:1: missing "apiVersion" and "kind": this is not a Kubernetes object`,
				`manifests/values.yaml:1: missing "apiVersion" and "kind": this is not a Kubernetes object`,
			},
		},
		{
			name:  "explicit files are read whatever their name, shown as given",
			paths: []string{"./other/x.txt", "other/sub/ignored-explicit.yaml"},
			opts:  Options{Ignore: []string{"ignored-*"}},
			want: []loaded{
				{File: "./other/x.txt", Line: 1, Name: "explicit"},
				{File: "other/sub/ignored-explicit.yaml", Line: 1, Name: "g"},
			},
		},
		{
			name:  "errors of several paths are all returned",
			paths: []string{"other/bad.yaml", "missing.yaml", "manifests/a.yaml", "manifests/sub/z.yaml"},
			want: []loaded{
				{File: "manifests/a.yaml", Line: 1, Name: "a"},
				{File: "manifests/sub/z.yaml", Line: 1, Name: "z"},
			},
			wantErrs: []string{
				"other/bad.yaml:2: invalid YAML: did not find expected node content",
				"reading missing.yaml: no such file or directory",
				`manifests/sub/z.yaml:6: missing "apiVersion": this is not a Kubernetes object (kind is "Broken")`,
			},
		},
		{
			name:  "stdin",
			paths: []string{"-", "manifests/a.yaml"},
			stdin: "---\n" + configMap("from-stdin"),
			want: []loaded{
				{File: "<stdin>", Line: 2, Name: "from-stdin"},
				{File: "manifests/a.yaml", Line: 1, Name: "a"},
			},
		},
		{
			name:     "stdin given twice",
			paths:    []string{"-", "-"},
			stdin:    configMap("once"),
			want:     []loaded{{File: "<stdin>", Line: 1, Name: "once"}},
			wantErrs: []string{`reading <stdin>: "-" given more than once; standard input can be read only once`},
		},
		{
			name:  "empty files and directories give nothing",
			paths: []string{"manifests/empty.yaml", "manifests/emptydir"},
		},
		{
			name:     "file over the size limit",
			paths:    []string{"manifests/a.yaml"},
			opts:     Options{MaxFileBytes: 10},
			wantErrs: []string{"manifests/a.yaml: file is larger than the 10 bytes limit; split it or raise the limit"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, err := Load(tt.paths, strings.NewReader(tt.stdin), tt.opts)
			if diff := cmp.Diff(tt.want, loadedDocs(docs)); diff != "" {
				t.Errorf("documents (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantErrs, loadErrStrings(err)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	t.Run("nonexistent path", func(t *testing.T) {
		_, err := Load([]string{filepath.Join(t.TempDir(), "nope.yaml")}, nil, Options{})
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("err = %v, want one matching fs.ErrNotExist", err)
		}
		if err == nil || !strings.HasSuffix(err.Error(), "nope.yaml: no such file or directory") {
			t.Errorf("err = %v, want it to name the path and say it does not exist", err)
		}
	})
	t.Run("stdin without a reader", func(t *testing.T) {
		_, err := Load([]string{"-"}, nil, Options{})
		if err == nil || err.Error() != "reading <stdin>: no standard input available" {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("invalid options", func(t *testing.T) {
		_, err := Load([]string{"-"}, strings.NewReader(""), Options{Ignore: []string{"[a-"}})
		if !errors.Is(err, path.ErrBadPattern) {
			t.Errorf("err = %v, want one matching ErrBadPattern", err)
		}
	})
}

func TestLoadSymlinks(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"m/a.yaml": configMap("a"), "target/t.yaml": configMap("t")})
	links := map[string]string{
		"m/loop":        "..",                         // a directory loop: not followed
		"m/b-link.yaml": "a.yaml",                     // a link to a file: read
		"m/broken.yaml": "nowhere.yaml",               // a dangling link to a manifest: an error
		"m/broken.txt":  "nowhere.txt",                // a dangling link to something else: skipped
		"m/dirlink":     filepath.Join(dir, "target"), // a link to a directory: not followed
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Skipf("symbolic links unavailable: %v", err)
		}
	}
	root := filepath.Join(dir, "m")
	docs, err := Load([]string{root, filepath.Join(dir, "m", "dirlink")}, nil, Options{})
	want := []loaded{
		{File: filepath.ToSlash(filepath.Join(root, "a.yaml")), Line: 1, Name: "a"},
		{File: filepath.ToSlash(filepath.Join(root, "b-link.yaml")), Line: 1, Name: "a"},
		// A linked directory named explicitly is walked.
		{File: filepath.ToSlash(filepath.Join(root, "dirlink", "t.yaml")), Line: 1, Name: "t"},
	}
	if diff := cmp.Diff(want, loadedDocs(docs)); diff != "" {
		t.Errorf("documents (-want +got):\n%s", diff)
	}
	wantErrs := []string{"reading " + filepath.ToSlash(filepath.Join(root, "broken.yaml")) + ": no such file or directory"}
	if diff := cmp.Diff(wantErrs, loadErrStrings(err)); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}
