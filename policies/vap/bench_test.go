package vap

import (
	"context"
	"testing"
)

// BenchmarkEvaluate judges a Deployment against the fixture policies: six
// policies, nine bindings, one with a ConfigMap param, three that match.
func BenchmarkEvaluate(b *testing.B) {
	e := compile(b, Options{
		Params:     raw(b, "params.yaml"),
		Namespaces: []map[string]any{namespace("prod", "env", "prod")},
	}, "team-label.yaml", "replicas.yaml", "images.yaml", "scale.yaml", "failure.yaml", "context.yaml")
	in := input(deployment("web", inNamespace("prod"), withLabels("tier", "web"), replicas(7), images("registry.example.com/web:2", "docker.io/nginx:1.27")))
	ctx := context.Background()
	if d := e.Evaluate(ctx, in); len(d.Findings) != 3 || d.Applied != 3 {
		b.Fatalf("Evaluate = %d findings, %d applied; want 3 and 3: %+v", len(d.Findings), d.Applied, d)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		e.Evaluate(ctx, in)
	}
}

// BenchmarkCompile loads the fixture policies.
func BenchmarkCompile(b *testing.B) {
	objs := load(b, "team-label.yaml", "replicas.yaml", "images.yaml", "scale.yaml", "failure.yaml", "context.yaml")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(context.Background(), objs, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
