package vap

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/manifest"
)

// load reads testdata files into Objects whose Source is file:line.
func load(t testing.TB, files ...string) []Object {
	t.Helper()
	var paths []string
	for _, f := range files {
		paths = append(paths, filepath.Join("testdata", f))
	}
	docs, err := manifest.Load(paths, nil, manifest.Options{})
	if err != nil {
		t.Fatalf("loading %v: %v", files, err)
	}
	out := make([]Object, len(docs))
	for i, d := range docs {
		out[i] = Object{Source: fmt.Sprintf("%s:%d", d.File, d.Line), Object: d.Object}
	}
	return out
}

// raw returns the objects of testdata files without their sources.
func raw(t testing.TB, files ...string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, o := range load(t, files...) {
		out = append(out, o.Object)
	}
	return out
}

// compile compiles testdata files and fails the test on any error.
func compile(t testing.TB, opts Options, files ...string) *Evaluator {
	t.Helper()
	e, err := Compile(context.Background(), load(t, files...), opts)
	if err != nil {
		t.Fatalf("Compile(%v): %v", files, err)
	}
	return e
}

// obj builds a JSON-shaped object; set functions fill it in.
func obj(apiVersion, kind, name string, set ...func(map[string]any)) map[string]any {
	o := map[string]any{
		"apiVersion": apiVersion,
		"kind":       kind,
		"metadata":   map[string]any{"name": name},
	}
	for _, s := range set {
		s(o)
	}
	return o
}

// deployment is an apps/v1 Deployment with one container.
func deployment(name string, set ...func(map[string]any)) map[string]any {
	base := []func(map[string]any){func(o map[string]any) {
		o["spec"] = map[string]any{
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": name}},
				"spec": map[string]any{"containers": []any{
					map[string]any{"name": "app", "image": "registry.example.com/app:1"},
				}},
			},
		}
	}}
	return obj("apps/v1", "Deployment", name, append(base, set...)...)
}

func metadata(o map[string]any) map[string]any { return o["metadata"].(map[string]any) }

func inNamespace(ns string) func(map[string]any) {
	return func(o map[string]any) { metadata(o)["namespace"] = ns }
}

func withLabels(kv ...string) func(map[string]any) {
	return func(o map[string]any) {
		l, _ := metadata(o)["labels"].(map[string]any)
		if l == nil {
			l = map[string]any{}
			metadata(o)["labels"] = l
		}
		for i := 0; i+1 < len(kv); i += 2 {
			l[kv[i]] = kv[i+1]
		}
	}
}

func annotate(kv ...string) func(map[string]any) {
	return func(o map[string]any) {
		a, _ := metadata(o)["annotations"].(map[string]any)
		if a == nil {
			a = map[string]any{}
			metadata(o)["annotations"] = a
		}
		for i := 0; i+1 < len(kv); i += 2 {
			a[kv[i]] = kv[i+1]
		}
	}
}

// replicas sets spec.replicas the way the manifest reader decodes numbers.
func replicas(n int) func(map[string]any) {
	return func(o map[string]any) { o["spec"].(map[string]any)["replicas"] = json.Number(fmt.Sprint(n)) }
}

func images(refs ...string) func(map[string]any) {
	return func(o map[string]any) {
		var cs []any
		for i, r := range refs {
			cs = append(cs, map[string]any{"name": fmt.Sprintf("c%d", i), "image": r})
		}
		o["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"] = cs
	}
}

func namespace(name string, kv ...string) map[string]any {
	return obj("v1", "Namespace", name, withLabels(kv...))
}

// input is a check or audit input: no operation, judged as it stands.
func input(object map[string]any, set ...func(*policies.Input)) *policies.Input {
	in := policies.ObjectInput(policies.SourceCheck, object, nil)
	for _, s := range set {
		s(in)
	}
	return in
}

func withNamespace(ns map[string]any) func(*policies.Input) {
	return func(in *policies.Input) { in.Namespace = ns }
}

func withOld(old map[string]any) func(*policies.Input) {
	return func(in *policies.Input) { in.OldObject = old }
}

func withUser(name string, groups ...string) func(*policies.Input) {
	return func(in *policies.Input) { in.UserInfo = &policies.UserInfo{Username: name, Groups: groups} }
}

func withOperation(op string) func(*policies.Input) {
	return func(in *policies.Input) { in.Operation = op }
}
