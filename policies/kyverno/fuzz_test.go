package kyverno_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/kyverno"
)

// FuzzCompile feeds the loader arbitrary policy and exception documents:
// it must never panic, every error must be a *LoadError naming the source,
// and whatever loads must evaluate and mutate a Pod without panicking. Each
// document is tried as a policy among the good ones, and as an exception
// to them honoured in every namespace.
func FuzzCompile(f *testing.F) {
	for _, dir := range []string{"testdata", filepath.Join("testdata", "bad"), filepath.Join("testdata", "exceptions"), filepath.Join("testdata", "exceptions", "bad")} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, file := range files {
			raw, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(raw)
		}
	}
	f.Add([]byte(`{"apiVersion":"kyverno.io/v1","kind":"Policy","metadata":{"name":"p","namespace":"apps"},"spec":{"rules":[{"name":"r","match":{"any":[{"resources":{"kinds":["*"]}}]},"mutate":{"patchesJson6902":"- op: add\n  path: /metadata/labels/x\n  value: y"}}]}}`))
	target := pod(map[string]any{"team": "web"}, container("app", "registry.example.com/web:1"))
	var good []kyverno.Object
	for _, file := range []string{"require-team.yaml", "replicas-vpol.yaml", "non-root-mpol.yaml"} {
		raw, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			f.Fatal(err)
		}
		var obj map[string]any
		if err := yaml.Unmarshal(raw, &obj); err != nil {
			f.Fatal(err)
		}
		good = append(good, kyverno.Object{Source: file, Object: obj})
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var obj map[string]any
		if err := yaml.Unmarshal(raw, &obj); err != nil || obj == nil {
			return
		}
		fuzzed := []kyverno.Object{{Source: "fuzz.yaml", Object: obj}}
		for _, c := range []struct {
			objs []kyverno.Object
			opts kyverno.Options
		}{
			{fuzzed, kyverno.Options{}},
			{good, kyverno.Options{Exceptions: fuzzed, ExceptionNamespaces: []string{"*"}}},
		} {
			e, err := kyverno.Compile(context.Background(), c.objs, c.opts)
			if e == nil {
				t.Fatal("nil evaluator")
			}
			if err != nil {
				for _, one := range err.(interface{ Unwrap() []error }).Unwrap() {
					var le *kyverno.LoadError
					if !errors.As(one, &le) || le.Source != "fuzz.yaml" {
						t.Fatalf("error without its source: %v", one)
					}
				}
			}
			in := policies.ObjectInput(policies.SourceCheck, target, appsNamespace)
			e.Evaluate(context.Background(), in)
			if _, err := e.Mutate(context.Background(), in); err != nil {
				continue
			}
		}
	})
}
