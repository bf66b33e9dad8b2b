package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
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
	checkDecisionLog(t, root, filepath.Join(state, "decisions.log"))
}

// checkDecisionLog plays docs/security.md's example on the decision log the
// tour just wrote (its server stopped, so the chain is closed): the report
// verifies it, and a copy with line 5 backdated, line 9 deleted and lines 14
// and 15 swapped is reported broken, line by line.
func checkDecisionLog(t *testing.T, root, log string) {
	t.Helper()
	src, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(strings.TrimSuffix(string(src), "\n"), "\n")
	if len(lines) < 16 {
		t.Fatalf("the tour's decision log has %d lines, too few to edit", len(lines))
	}
	edited := slices.Clone(lines)
	backdated := strings.Replace(edited[4], `"time":"2`, `"time":"1`, 1)
	if backdated == edited[4] {
		t.Fatalf("line 5 of the decision log has no time to edit: %s", edited[4])
	}
	edited[4] = backdated
	edited = slices.Delete(edited, 8, 9)
	edited[13], edited[14] = edited[14], edited[13]

	// Where make demo leaves its files, beside the repository's manifests.
	work := t.TempDir()
	for path, data := range map[string]string{
		filepath.Join(work, ".tollgate", "demo", "decisions.log"): string(src),
		filepath.Join(work, "edited.log"):                         strings.Join(edited, "") + "\n",
	} {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(root, "test"), filepath.Join(work, "test")); err != nil {
		t.Fatal(err)
	}
	examples, err := docexample.Of(root, "demo-decision-log")
	if err != nil || len(examples) != 1 {
		t.Fatalf("docs should have one block marked demo-decision-log: %d, %v", len(examples), err)
	}
	out, err := docexample.Run(examples[0].Body, work, filepath.Join(root, "bin"))
	if err != nil {
		t.Fatal(err)
	}
	docexample.Check(t, root, "demo-decision-log", out)
}
