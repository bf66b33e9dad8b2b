package kyvernotest_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/policies/kyverno/kyvernotest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// run runs the test files under dir and returns the summary and output.
func run(t *testing.T, dirs ...string) (kyvernotest.Summary, string) {
	t.Helper()
	files, err := kyvernotest.Find(dirs)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	sum := kyvernotest.Run(context.Background(), files, kyvernotest.Options{}, &out)
	return sum, out.String()
}

// golden compares output with a golden file, rewritten with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", name, diff)
	}
}

// Every result of the suite holds: pattern, anyPattern, deny, foreach,
// preconditions, namespaceSelector values, a ConfigMap context given by
// values, a mutation with its patched resource and a ValidatingPolicy.
func TestRunPass(t *testing.T) {
	sum, out := run(t, "testdata/pass")
	t.Log(out)
	if sum.Failed != 0 || sum.Passed == 0 {
		t.Errorf("summary %+v, want all passed", sum)
	}
	golden(t, "pass.golden", out)
}

// A wrong expected result fails, naming the test file and line, the test,
// policy, rule and resource; a wrong patched resource shows the diff.
func TestRunWrongExpectation(t *testing.T) {
	sum, out := run(t, "testdata/fail")
	if want := (kyvernotest.Summary{Passed: 1, Failed: 2}); sum != want {
		t.Errorf("summary %+v, want %+v", sum, want)
	}
	golden(t, "fail.golden", out)
}

// Bad test files are each a failure naming the file and line; the good
// tests beside them still run.
func TestRunBadInput(t *testing.T) {
	sum, out := run(t, "testdata/bad", "testdata/pass")
	// 22 results of testdata/pass and one each of testdata/bad/no-such,
	// bad/unsupported and bad/values pass; each bad file or result fails; the generate
	// result is not checked.
	if want := (kyvernotest.Summary{Passed: 25, Failed: 13, Unsupported: 1}); sum != want {
		t.Errorf("summary %+v, want %+v", sum, want)
	}
	golden(t, "bad.golden", out)
}

// Find walks directories for kyverno-test.yaml and takes a file given by
// itself when it holds a Kyverno Test; other files are not its business.
func TestFind(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"a/kyverno-test.yaml":       "anything",
		"a/other.yaml":              "apiVersion: cli.kyverno.io/v1alpha1\nkind: Test\n",
		".hidden/kyverno-test.yaml": "x",
		"b/c/kyverno-test.yaml":     "x",
		"policy.rego":               "package p",
		"values.yaml":               "apiVersion: cli.kyverno.io/v1alpha1\nkind: Values\n",
		"named.yml":                 "apiVersion: cli.kyverno.io/v1alpha1\nkind: \"Test\"\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	in := func(names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, filepath.Join(dir, n))
		}
		return out
	}
	got, err := kyvernotest.Find(append(in(".", "a/other.yaml", "policy.rego", "values.yaml", "named.yml"), dir))
	if err != nil {
		t.Fatal(err)
	}
	want := in("a/kyverno-test.yaml", "a/other.yaml", "b/c/kyverno-test.yaml", "named.yml")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Find (-want +got):\n%s", diff)
	}
	if _, err := kyvernotest.Find(in("missing")); err == nil {
		t.Error("a missing path: no error")
	}
}
