package docs

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/test/docexample"
)

// TestOutputBlocksAreExamples holds every console block, and every block
// with a "$ " command in it, to a marker: either
// it shows commands only (<!-- commands -->, and has no output line), or it
// is an example a test produces and compares. A source other than the ones
// this package runs ("cli", "cli:DIR", "file:PATH") must be checked by some
// test: a docexample.Check call naming it.
func TestOutputBlocksAreExamples(t *testing.T) {
	root := repoRoot(t)
	blocks, err := docexample.All(root)
	if err != nil {
		t.Fatal(err)
	}
	checked := checkedSources(t, root)
	var examples, commands int
	for _, b := range blocks {
		where := fmt.Sprintf("%s:%d", b.File, b.Line)
		if !b.Marked {
			if transcript(b) {
				t.Errorf("%s: a console block (or one with $ commands) with no marker: put <!-- example: SOURCE --> before it (the test that produces its output), or <!-- commands --> if it shows no output", where)
			}
			continue
		}
		if b.Commands {
			commands++
			if out := outputLines(b.Body); len(out) > 0 {
				t.Errorf("%s: marked <!-- commands --> but line %q is output: mark it with the test that produces it", where, out[0])
			}
			continue
		}
		examples++
		switch src := b.Source; {
		case src == "cli":
		case strings.HasPrefix(src, "cli:"), strings.HasPrefix(src, "file:"):
			_, p, _ := strings.Cut(src, ":")
			if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(p))); err != nil || strings.Contains(p, "..") {
				t.Errorf("%s: example %s: %s is not in the repository", where, src, p)
			}
		case !checked[src]:
			t.Errorf("%s: example %q: no test calls docexample.Check(t, root, %q, ...), so nothing compares it", where, src, src)
		}
	}
	if examples < 30 || commands == 0 {
		t.Errorf("%d examples and %d command blocks: the pages were not read", examples, commands)
	}
}

// transcript says a block shows a terminal: it is marked console, or a line
// of it is a "$ " command.
func transcript(b docexample.Fenced) bool {
	if b.Lang == "console" {
		return true
	}
	for l := range strings.SplitSeq(b.Body, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "$ ") {
			return true
		}
	}
	return false
}

// checkedSources lists the sources named in docexample.Check calls in the
// repository's Go files.
func checkedSources(t *testing.T, root string) map[string]bool {
	t.Helper()
	call := regexp.MustCompile(`docexample\.Check\([^,]+,[^,]+,\s*"([^"]+)"`)
	found := map[string]bool{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == ".tollgate" || d.Name() == "bin" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range call.FindAllSubmatch(src, -1) {
			found[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// outputLines returns the lines of a console block that are neither a
// command ("$ ..."), the continuation of one (after a trailing "\"), nor
// blank.
func outputLines(body string) []string {
	var out []string
	cont := false
	for l := range strings.SplitSeq(body, "\n") {
		switch {
		case cont:
		case strings.HasPrefix(l, "$ "), strings.TrimSpace(l) == "":
		default:
			out = append(out, l)
		}
		cont = strings.HasSuffix(strings.TrimSpace(l), `\`)
	}
	return out
}

// TestFileExamples: a block marked file:PATH shows that file, whole.
func TestFileExamples(t *testing.T) {
	root := repoRoot(t)
	blocks, err := docexample.All(root)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, b := range blocks {
		p, ok := strings.CutPrefix(b.Source, "file:")
		if !b.Marked || !ok {
			continue
		}
		n++
		src, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(p)))
		if err != nil {
			t.Errorf("%s:%d: %v", b.File, b.Line, err)
			continue
		}
		if err := b.Match(string(src)); err != nil {
			t.Errorf("%s:%d: the block is not %s: %v", b.File, b.Line, p, err)
		}
	}
	if n == 0 {
		t.Error("no block is marked file:PATH")
	}
}

// TestCLIExamples runs the commands of every block marked cli (from the
// repository root) or cli:DIR (from DIR) with a tollgate built from this
// tree, and compares what they print with what the block shows. "bin/tollgate"
// and "tollgate" in a command are that build; "echo $?" prints the status of
// the command before it, as in a shell.
func TestCLIExamples(t *testing.T) {
	root := repoRoot(t)
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "tollgate"), "./cmd/tollgate")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/tollgate: %v\n%s", err, out)
	}
	blocks, err := docexample.All(root)
	if err != nil {
		t.Fatal(err)
	}
	var examples []docexample.Example
	for _, b := range blocks {
		if b.Marked && (b.Source == "cli" || strings.HasPrefix(b.Source, "cli:")) {
			examples = append(examples, b.Example)
		}
	}
	if len(examples) == 0 {
		t.Fatal("no block is marked cli")
	}
	// Last first: a rewrite (TOLLGATE_UPDATE_DOCS=1) leaves the lines of
	// the blocks above it where they were.
	slices.Reverse(examples)
	for _, ex := range examples {
		t.Run(fmt.Sprintf("%s:%d", ex.File, ex.Line), func(t *testing.T) {
			dir := root
			if d, ok := strings.CutPrefix(ex.Source, "cli:"); ok {
				dir = filepath.Join(root, filepath.FromSlash(d))
			}
			got, err := docexample.Run(ex.Body, dir, bin)
			if err != nil {
				t.Fatal(err)
			}
			if err := ex.Match(got); err != nil {
				if !ex.Excerpt && os.Getenv(docexample.UpdateEnv) == "1" {
					if err := ex.Rewrite(root, got); err != nil {
						t.Fatal(err)
					}
					t.Logf("rewritten with this run's output")
					return
				}
				t.Errorf("%v\nthis run printed:\n%s", err, got)
			}
		})
	}
}
