package chart

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/yaml"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/test/cluster"
)

var update = flag.Bool("update", false, "rewrite the golden renders, the CRD templates and the config schema embedded in the values schema")

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func chartDir(t *testing.T) string {
	return filepath.Join(repoRoot(t), "charts", "tollgate")
}

// binary returns bin/<name> under the repository root, or fails the test
// with how to build it.
func binary(t *testing.T, name, how string) string {
	t.Helper()
	p := filepath.Join(repoRoot(t), "bin", name)
	if fi, err := os.Stat(p); err != nil || fi.IsDir() {
		t.Fatalf("%s is missing: %s", p, how)
	}
	return p
}

// run runs a command and returns its stdout and stderr; a non-zero exit is
// an error.
func run(ctx context.Context, dir string, env []string, stdin string, name string, args ...string) (string, string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s %s: %w: %s", filepath.Base(name), strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), errb.String(), err
}

// helm runs bin/helm with its config, cache and data in a temporary
// directory, so the host's repositories and plugins stay out of it.
func helm(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	bin := binary(t, "helm", "run make helm (it builds helm from the Go module proxy)")
	home := t.TempDir()
	env := []string{
		"HELM_CONFIG_HOME=" + filepath.Join(home, "config"),
		"HELM_CACHE_HOME=" + filepath.Join(home, "cache"),
		"HELM_DATA_HOME=" + filepath.Join(home, "data"),
		"KUBECONFIG=" + filepath.Join(home, "no-kubeconfig"),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return run(ctx, repoRoot(t), env, "", bin, args...)
}

// release is how a test installs the chart: release name, namespace and
// values files under testdata/values.
type release struct {
	name, namespace string
	values          []string
}

func (r release) args(t *testing.T) []string {
	args := []string{r.name, chartDir(t), "--namespace", r.namespace}
	for _, v := range r.values {
		args = append(args, "--values", filepath.Join(repoRoot(t), "test", "chart", "testdata", "values", v))
	}
	return args
}

// render runs helm template for the release.
func render(t *testing.T, r release) string {
	t.Helper()
	out, _, err := helm(t, append([]string{"template"}, r.args(t)...)...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// objects splits a multi-document YAML stream into objects, dropping empty
// documents.
func objects(t *testing.T, stream string) []map[string]any {
	t.Helper()
	dec := yaml.NewYAMLOrJSONDecoder(strings.NewReader(stream), 4096)
	var out []map[string]any
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			if errors.Is(err, io.EOF) {
				return out
			}
			t.Fatalf("decoding the render: %v", err)
		}
		if len(obj) > 0 {
			out = append(out, obj)
		}
	}
}

func kind(obj map[string]any) string { s, _ := obj["kind"].(string); return s }

func name(obj map[string]any) string {
	md, _ := obj["metadata"].(map[string]any)
	s, _ := md["name"].(string)
	return s
}

// find returns the rendered object of that kind and name, failing the test
// when there is none.
func find(t *testing.T, objs []map[string]any, k, n string) map[string]any {
	t.Helper()
	for _, o := range objs {
		if kind(o) == k && name(o) == n {
			return o
		}
	}
	t.Fatalf("the render has no %s %s", k, n)
	return nil
}

// toYAML writes objects back as a YAML stream.
func toYAML(t *testing.T, objs ...map[string]any) string {
	t.Helper()
	var b strings.Builder
	for _, o := range objs {
		data, err := sigsyaml.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("---\n")
		b.Write(data)
	}
	return b.String()
}

// dig walks maps and lists by keys and indexes.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}
