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
	goodKubeconfig := filepath.Join(t.TempDir(), "good-kubeconfig")
	if err := os.WriteFile(goodKubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: x, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: x, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	routes := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	noDefault := routes("no-default.yaml", "channels:\n  ops: {type: slack, urlSecret: {namespace: tollgate-system, name: hooks, key: ops}}\n")
	badType := routes("bad-type.yaml", "default: ops\nchannels:\n  ops: {type: pager, urlSecret: {namespace: tollgate-system, name: hooks}}\n")
	unknownField := routes("unknown.yaml", "default: ops\nchanels: {}\n")
	badPrices := routes("prices.yaml", "CPU: lots\n")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"alert routes without default", []string{"serve", "--kubeconfig", goodKubeconfig, "--alert-routes", noDefault}, "default: a default channel is required"},
		{"alert routes bad type", []string{"serve", "--kubeconfig", goodKubeconfig, "--alert-routes", badType}, `channels["ops"].type: "pager"`},
		{"alert routes missing key", []string{"serve", "--kubeconfig", goodKubeconfig, "--alert-routes", badType}, `channels["ops"].urlSecret.key: required`},
		{"alert routes unknown field", []string{"serve", "--kubeconfig", goodKubeconfig, "--alert-routes", unknownField}, `unknown field "chanels"`},
		{"alert routes missing file", []string{"serve", "--kubeconfig", goodKubeconfig, "--alert-routes", "/nonexistent/routes.yaml"}, "--alert-routes: open /nonexistent/routes.yaml"},
		{"prices", []string{"serve", "--kubeconfig", goodKubeconfig, "--prices", badPrices}, "--prices " + badPrices + ": prices: CPU"},
		{"log level", []string{"serve", "--log-level", "loud"}, `--log-level "loud": want debug, info, warn or error`},
		{"kyverno beside not a bool", []string{"serve", "--kyverno-beside=maybe"}, `invalid argument "maybe" for "--kyverno-beside"`},
		{"memory limit", []string{"serve", "--memory-limit", "lots"}, `--memory-limit "lots": want a quantity such as 64Mi`},
		{"negative memory limit", []string{"serve", "--memory-limit", "-64Mi"}, `--memory-limit "-64Mi": want a quantity of at least 0`},
		{"config", []string{"serve", "--config", "/nonexistent/tollgate.yaml"}, "reading config: stat /nonexistent/tollgate.yaml"},
		{"kubeconfig missing", []string{"serve", "--kubeconfig", "/nonexistent/kubeconfig"}, "--kubeconfig: stat /nonexistent/kubeconfig"},
		{"kubeconfig malformed", []string{"serve", "--kubeconfig", badKubeconfig}, "--kubeconfig: "},
		{"client name without a CA", []string{"serve", "--kubeconfig", goodKubeconfig, "--client-name", "kube-apiserver"}, "--client-name needs --client-ca-file"},
		{"client CA without names", []string{"serve", "--kubeconfig", goodKubeconfig, "--webhook-url", "https://127.0.0.1:9443", "--client-ca-file", badPrices}, "at least one allowed client name is required (--client-name)"},
		{"client CA not a certificate", []string{"serve", "--kubeconfig", goodKubeconfig, "--webhook-url", "https://127.0.0.1:9443", "--client-ca-file", badPrices, "--client-name", "x"}, "no PEM certificate in it"},
		{"metrics auth", []string{"serve", "--kubeconfig", goodKubeconfig, "--webhook-url", "https://127.0.0.1:9443", "--metrics-auth", "basic"}, `--metrics-auth "basic": want kubernetes or none`},
		{"in-flight bytes", []string{"serve", "--kubeconfig", goodKubeconfig, "--max-in-flight-bytes", "1Mi"}, "--max-in-flight-bytes 1Mi: below the largest request"},
		{"in-flight bytes not a quantity", []string{"serve", "--kubeconfig", goodKubeconfig, "--max-in-flight-bytes", "lots"}, `--max-in-flight-bytes "lots"`},
		{"negative rate", []string{"serve", "--kubeconfig", goodKubeconfig, "--rate-limit", "-1"}, "--rate-limit -1, --rate-burst 0: want 0 or more"},
		{"decision log key too short", []string{"serve", "--kubeconfig", goodKubeconfig, "--decision-log-key-file", badPrices}, "want at least 16"},
		{"scan interval", []string{"serve", "--kubeconfig", goodKubeconfig, "--scan-images", "--scan-interval", "0s"}, "--scan-interval 0s: want a positive duration"},
		{"db max age", []string{"serve", "--kubeconfig", goodKubeconfig, "--db-max-age", "-1h"}, "--db-max-age -1h0m0s: want a positive duration"},
		{"scan concurrency", []string{"serve", "--kubeconfig", goodKubeconfig, "--scan-images", "--scan-concurrency", "0"}, "--scan-concurrency 0: want 1 to 64"},
		{"scan queue", []string{"serve", "--kubeconfig", goodKubeconfig, "--scan-images", "--scan-queue", "-5"}, "--scan-queue -5: want 1 to 1048576"},
		{"trivy server not a URL", []string{"serve", "--kubeconfig", goodKubeconfig, "--scan-images", "--trivy-server", "127.0.0.1:4954"}, `--scan-images: trivy: Server "127.0.0.1:4954": want an http:// or https:// URL`},
		{"trivy cache dir empty", []string{"serve", "--kubeconfig", goodKubeconfig, "--scan-images", "--trivy-cache-dir", ""}, "--scan-images: trivy: CacheDir is required"},
		{"trivy missing", []string{"serve", "--kubeconfig", goodKubeconfig, "--scan-images", "--trivy", "/nonexistent/trivy", "--trivy-cache-dir", dir}, `--scan-images: trivy: the trivy binary "/nonexistent/trivy"`},
		{"audit report name", []string{"serve", "--kubeconfig", goodKubeconfig, "--audit-report-name", "Tollgate/../x"}, `--audit-report-name "Tollgate/../x": not an object name`},
		{"namespace defaults resync", []string{"serve", "--kubeconfig", goodKubeconfig, "--namespace-defaults-resync", "0s"}, "--namespace-defaults-resync 0s: want a positive duration"},
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
