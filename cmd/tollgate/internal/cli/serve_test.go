package cli

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func TestServeBadInput(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	badKubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(badKubeconfig, []byte("apiVersion: v1\nkind: Config\nclusters: [{name: x, cluster: {server: 'https://127.0.0.1:1'}}]\ncontexts: nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"log level", []string{"serve", "--log-level", "loud"}, `--log-level "loud": want debug, info, warn or error`},
		{"memory limit", []string{"serve", "--memory-limit", "lots"}, `--memory-limit "lots": want a quantity such as 64Mi`},
		{"config", []string{"serve", "--config", "/nonexistent/tollgate.yaml"}, "reading config: stat /nonexistent/tollgate.yaml"},
		{"kubeconfig missing", []string{"serve", "--kubeconfig", "/nonexistent/kubeconfig"}, "--kubeconfig: stat /nonexistent/kubeconfig"},
		{"kubeconfig malformed", []string{"serve", "--kubeconfig", badKubeconfig}, "--kubeconfig: "},
		{"unknown flag", []string{"serve", "--ports", "1"}, "unknown flag: --ports"},
		{"stray argument", []string{"serve", "now"}, `unknown command "now"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := run(t, "", tc.args...)
			if code != ExitUsage || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr, ExitUsage, tc.want)
			}
		})
	}
}
