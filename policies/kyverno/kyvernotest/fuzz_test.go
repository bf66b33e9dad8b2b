package kyvernotest_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/tollgate-dev/tollgate/policies/kyverno/kyvernotest"
)

// Whatever a test file holds, Run reports it without panicking.
func FuzzRun(f *testing.F) {
	for _, seed := range []string{
		"testdata/pass/kyverno-test.yaml", "testdata/fail/kyverno-test.yaml",
		"testdata/bad/unknown-field/kyverno-test.yaml", "testdata/bad/values/kyverno-test.yaml",
	} {
		b, err := os.ReadFile(seed)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("apiVersion: cli.kyverno.io/v1alpha1\nkind: Test\nresults: [{resources: [[]]}]\n")
	f.Add("- a\n- b\n")
	f.Add("apiVersion: cli.kyverno.io/v1alpha1\nkind: Test\npolicies: [/dev/null]\nresources: [/dev/null]\n")
	policies, err := filepath.Abs("testdata/policies")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string) {
		dir := t.TempDir()
		// The seeds name their files relative to testdata/<suite>/.
		if err := os.Symlink(policies, filepath.Join(dir, "policies")); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, "suite", kyvernotest.FileName)
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		sum := kyvernotest.Run(context.Background(), []string{file}, kyvernotest.Options{}, io.Discard)
		if sum.Passed < 0 || sum.Failed < 0 || sum.Unsupported < 0 {
			t.Fatalf("summary %+v", sum)
		}
	})
}
