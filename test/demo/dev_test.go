package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/test/cluster"
	"github.com/tollgate-dev/tollgate/test/docexample"
	"github.com/tollgate-dev/tollgate/test/proc"
)

// TestDevKeepsRunningThenStopsEverything runs what `make dev` runs: the
// control plane and `tollgate serve` come up, a line with "ready" is
// printed only once admission works, the kubeconfig is where the line says,
// and SIGINT (Ctrl-C) stops every process it started, leaving none behind.
func TestDevKeepsRunningThenStopsEverything(t *testing.T) {
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "tollgate-local")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	state := filepath.Join(tmp, "dev")
	// A file from an earlier run must not survive: the state dir is emptied.
	if err := os.MkdirAll(state, 0o755); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(state, "stale")
	if err := os.WriteFile(stale, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-mode", "dev", "-state-dir", state)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 100)
	var out bytes.Buffer
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	kubeconfig := waitReady(t, lines, &out, &stderr)
	if want := filepath.Join(state, "kubeconfig"); kubeconfig != want {
		t.Errorf("the ready lines export KUBECONFIG=%s, want %s", kubeconfig, want)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file left by an earlier run survived: %v", err)
	}

	// Admission works as soon as "ready" is printed: a privileged Pod is
	// denied by Tollgate, a labelled namespace is admitted.
	kubectl := filepath.Join(root, "bin", "k8s", "kubectl")
	privileged := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"default"},"spec":{"containers":[{"name":"c","image":"nginx:1.27","securityContext":{"privileged":true}}]}}`
	res, err := kubectlRun(ctx, kubectl, kubeconfig, privileged, "create", "--dry-run=server", "-f", "-")
	if err == nil || !strings.Contains(res, "tollgate denied") || !strings.Contains(res, "pss-baseline-privileged") {
		t.Errorf("a privileged pod right after ready: err %v, output:\n%s", err, res)
	}
	if res, err := kubectlRun(ctx, kubectl, kubeconfig, "", "apply", "-f", filepath.Join(root, "test", "demo", "manifests", "namespace.yaml")); err != nil {
		t.Errorf("applying the demo namespace as the ready lines suggest: %v\n%s", err, res)
	}

	procs, err := proc.Processes()
	if err != nil {
		t.Fatal(err)
	}
	started := map[int]string{}
	for pid, p := range proc.Descendants(procs, cmd.Process.Pid) {
		started[pid] = p.Name
	}
	t.Cleanup(func() { // whatever the test leaves running
		for pid := range started {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	for _, want := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "tollgate", "docker-registry"} {
		if !slices.Contains(slices.Collect(maps.Values(started)), want) {
			t.Errorf("no %s among the processes dev started: %v", want, started)
		}
	}

	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	for l := range lines {
		out.WriteString(l + "\n")
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("dev exited with %v after SIGINT, want 0\nstdout:\n%s\nstderr:\n%s", err, out.String(), stderr.String())
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("dev still running 90 s after SIGINT\nstdout:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "Stopped tollgate") {
		t.Errorf("no stop line after SIGINT:\n%s", out.String())
	}
	// docs/development.md quotes it; the one difference from `make dev` is
	// where its files go.
	docexample.Check(t, root, "dev", "$ make dev\n"+strings.ReplaceAll(out.String(), rel(root, state), ".tollgate/dev"))
	// Every process it started is gone (and reaped), none orphaned.
	deadline := time.Now().Add(10 * time.Second)
	for pid, name := range started {
		for syscall.Kill(pid, 0) == nil {
			if time.Now().After(deadline) {
				t.Errorf("%s (pid %d) still runs after dev exited", name, pid)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// waitReady reads dev's output until its ready line and returns the
// kubeconfig the lines after it tell the user to export.
func waitReady(t *testing.T, lines <-chan string, out, stderr *bytes.Buffer) string {
	t.Helper()
	timeout := time.After(5 * time.Minute)
	ready := false
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("dev exited before it was ready\nstdout:\n%s\nstderr:\n%s", out.String(), stderr.String())
			}
			out.WriteString(l + "\n")
			if strings.HasPrefix(l, "ready") {
				ready = true
			}
			if k, found := strings.CutPrefix(strings.TrimSpace(l), "export KUBECONFIG="); found && ready {
				return k
			}
		case <-timeout:
			t.Fatalf("no ready line within 5 minutes\nstdout:\n%s\nstderr:\n%s", out.String(), stderr.String())
		}
	}
}

func kubectlRun(ctx context.Context, kubectl, kubeconfig, stdin string, args ...string) (string, error) {
	c := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	if stdin != "" {
		c.Stdin = strings.NewReader(stdin)
	}
	out, err := c.CombinedOutput()
	return string(out), err
}

func TestStateDir(t *testing.T) {
	got, err := stateDir("/repo", "dev", "")
	if err != nil || got != "/repo/.tollgate/dev" {
		t.Errorf("default: %q, %v; want /repo/.tollgate/dev", got, err)
	}
	got, err = stateDir("/repo", "dev", "/tmp/x")
	if err != nil || got != "/tmp/x" {
		t.Errorf("given: %q, %v", got, err)
	}
	if got := rel("/repo", "/repo/.tollgate/dev/kubeconfig"); got != ".tollgate/dev/kubeconfig" {
		t.Errorf("rel inside the repository: %q", got)
	}
	if got := rel("/repo", "/tmp/x/kubeconfig"); got != "/tmp/x/kubeconfig" {
		t.Errorf("rel outside the repository: %q", got)
	}
}

// TestBadFlags: a wrong mode or an unusable state dir is refused with a
// line that names it, before anything starts.
func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-mode", "prod"}, 2, `-mode "prod": want demo or dev`},
		{[]string{"-nope"}, 2, "flag provided but not defined: -nope"},
		{[]string{"-mode", "dev", "-state-dir", "/proc/tollgate-dev"}, 1, "/proc/tollgate-dev"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr.String(), tc.code, tc.want)
		}
		if strings.Contains(stdout.String(), "Starting") {
			t.Errorf("%q started something:\n%s", tc.args, stdout.String())
		}
	}
}
