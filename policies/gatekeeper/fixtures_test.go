package gatekeeper_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/gatekeeper"
	"github.com/tollgate-dev/tollgate/policies/manifest"
)

// load reads the templates and constraints under paths the way the CLI
// does, each object named "file:line".
func load(t testing.TB, paths ...string) []gatekeeper.Object {
	t.Helper()
	docs, err := manifest.Load(paths, nil, manifest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	objs := make([]gatekeeper.Object, 0, len(docs))
	for _, d := range docs {
		objs = append(objs, gatekeeper.Object{Source: fmt.Sprintf("%s:%d", d.File, d.Line), Object: d.Object})
	}
	return objs
}

// compile compiles objs and fails the test on any load error.
func compile(t testing.TB, objs []gatekeeper.Object, opts gatekeeper.Options) *gatekeeper.Evaluator {
	t.Helper()
	e, err := gatekeeper.Compile(context.Background(), objs, opts)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return e
}

// object builds a Kubernetes object: object("apps/v1", "Deployment", "web",
// in("shop"), labels("team", "a"), images("nginx")).
func object(apiVersion, kind, name string, opts ...func(map[string]any)) map[string]any {
	o := map[string]any{
		"apiVersion": apiVersion,
		"kind":       kind,
		"metadata":   map[string]any{"name": name},
	}
	for _, opt := range opts {
		opt(o)
	}
	return o
}

func meta(o map[string]any) map[string]any { return o["metadata"].(map[string]any) }

// in sets metadata.namespace.
func in(ns string) func(map[string]any) {
	return func(o map[string]any) { meta(o)["namespace"] = ns }
}

// labels adds labels, given as key, value pairs.
func labels(kv ...string) func(map[string]any) {
	return func(o map[string]any) {
		l, _ := meta(o)["labels"].(map[string]any)
		if l == nil {
			l = map[string]any{}
			meta(o)["labels"] = l
		}
		for i := 0; i+1 < len(kv); i += 2 {
			l[kv[i]] = kv[i+1]
		}
	}
}

// images gives a Pod containers, or a Deployment a pod template with them.
func images(images ...string) func(map[string]any) {
	return func(o map[string]any) {
		var cs []any
		for i, img := range images {
			cs = append(cs, map[string]any{"name": fmt.Sprintf("c%d", i), "image": img})
		}
		spec, _ := o["spec"].(map[string]any)
		if spec == nil {
			spec = map[string]any{}
			o["spec"] = spec
		}
		if o["kind"] == "Pod" {
			spec["containers"] = cs
			return
		}
		spec["template"] = map[string]any{"spec": map[string]any{"containers": cs}}
	}
}

// field sets a field under spec.
func field(key string, v any) func(map[string]any) {
	return func(o map[string]any) {
		spec, _ := o["spec"].(map[string]any)
		if spec == nil {
			spec = map[string]any{}
			o["spec"] = spec
		}
		spec[key] = v
	}
}

// namespace is a Namespace object with labels as key, value pairs.
func namespace(name string, kv ...string) map[string]any {
	return object("v1", "Namespace", name, labels(kv...))
}

// audited is the input the audit builds for a listed object.
func audited(obj, ns map[string]any) *policies.Input {
	return policies.ObjectInput(policies.SourceAudit, obj, ns)
}

// checked is the input `tollgate check` builds for a manifest.
func checked(obj, ns map[string]any) *policies.Input {
	return policies.ObjectInput(policies.SourceCheck, obj, ns)
}

// admitted is the input the webhook builds for an admission request.
func admitted(op string, obj, old, ns map[string]any, user string) *policies.Input {
	o := obj
	if o == nil {
		o = old
	}
	in := policies.ObjectInput(policies.SourceAdmission, o, ns)
	in.Object, in.OldObject = obj, old
	in.Operation = op
	in.UserInfo = &policies.UserInfo{Username: user, UID: "uid-" + user, Groups: []string{"system:authenticated"}}
	return in
}

func slicesSort(s []string) { slices.Sort(s) }
