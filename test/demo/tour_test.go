package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/test/cluster"
	"github.com/tollgate-dev/tollgate/test/docexample"
)

// TestTourMatchesTheDocs runs what `make demo` runs, the narrated tour
// against a real API server, and compares every block that README.md and
// docs/ quote from it (<!-- example: demo excerpt -->) with what it printed
// this time. The transcript is kept as a test artifact.
func TestTourMatchesTheDocs(t *testing.T) {
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(root) // as make runs it: the tour's paths are the repository's
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	state := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, []string{"-mode", "demo", "-state-dir", state}, &stdout, &stderr); code != 0 {
		t.Fatalf("the demo exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	// The one difference from `make demo` is where its files go.
	transcript := strings.ReplaceAll(stdout.String(), rel(root, state), ".tollgate/demo")
	if dir := os.Getenv("TOLLGATE_TEST_ARTIFACTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err == nil {
			_ = os.WriteFile(filepath.Join(dir, "demo-transcript.txt"), []byte(transcript), 0o600)
		}
	}
	docexample.Check(t, root, "demo", transcript)
}
