package chart

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestChartPassesTollgateCheck: Tollgate's own workload passes the built-in
// library (Pod Security Standards restricted, resources, pinned image,
// ownership labels), both with the ownership labels on the release
// namespace, as the README installs it, and with them in commonLabels.
func TestChartPassesTollgateCheck(t *testing.T) {
	bin := binary(t, "tollgate", "run make build")
	const namespace = `apiVersion: v1
kind: Namespace
metadata:
  name: tollgate-system
  labels: {team: platform, owner: platform-team, cost-center: CC-0001}
`
	dir := t.TempDir()
	nsFile := filepath.Join(dir, "namespace.yaml")
	if err := os.WriteFile(nsFile, []byte(namespace), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		r    release
		args []string
	}{
		{"default values, labelled namespace", defaultRelease, []string{"--namespaces", nsFile}},
		{"every option on, labels in commonLabels", fullRelease, nil},
		{"every option off, labelled namespace", release{name: "tollgate", namespace: "tollgate-system", values: offRelease.values}, []string{"--namespaces", nsFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var deployment string
			for _, o := range objects(t, render(t, tc.r)) {
				if kind(o) == "Deployment" {
					deployment = toYAML(t, o)
				}
			}
			if deployment == "" {
				t.Fatal("no Deployment rendered")
			}
			file := filepath.Join(t.TempDir(), "deployment.yaml")
			if err := os.WriteFile(file, []byte(deployment), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			args := append([]string{"check"}, tc.args...)
			out, _, err := run(ctx, dir, nil, "", bin, append(args, file)...)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if !strings.Contains(out, "0 enforce, 0 warn, 0 audit findings — PASSED") {
				t.Errorf("tollgate check:\n%s", out)
			}
		})
	}
}
