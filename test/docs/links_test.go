// Package docs holds tests that keep the repository's Markdown honest: every
// relative link in README.md and docs/ points to a file that exists and, for
// an #anchor into Markdown, to a heading that exists; the README stays a front
// door; and docs/README.md indexes every page beside it.
package docs

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/tollgate-dev/tollgate/test/docexample"
)

// readmeMaxLines is how long README.md may grow: concepts, two commands, the
// install, one screen of output and links; the reference lives in docs/.
const readmeMaxLines = 260

func TestLinksResolve(t *testing.T) {
	root := repoRoot(t)
	files := markdownFiles(t, root)
	anchors := map[string]map[string]bool{} // repository path → heading anchors
	anchorsOf := func(p string) map[string]bool {
		if a, ok := anchors[p]; ok {
			return a
		}
		src, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(p)))
		if err != nil {
			t.Fatalf("reading %s: %v", p, err)
		}
		a := headingAnchors(src)
		anchors[p] = a
		return a
	}

	checked := 0
	for _, file := range files {
		src, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
		if err != nil {
			t.Fatalf("reading %s: %v", file, err)
		}
		for _, l := range links(src) {
			if external(l.target) {
				continue
			}
			target, anchor, _ := strings.Cut(l.target, "#")
			resolved := file // "#anchor" alone points into the same file
			if target != "" {
				resolved = path.Clean(path.Join(path.Dir(file), target))
				if resolved == ".." || strings.HasPrefix(resolved, "../") {
					t.Errorf("%s:%d: link %q leaves the repository", file, l.line, l.target)
					continue
				}
			}
			checked++
			info, err := os.Stat(filepath.Join(root, filepath.FromSlash(resolved)))
			if err != nil {
				t.Errorf("%s:%d: link %q: %s does not exist", file, l.line, l.target, resolved)
				continue
			}
			if anchor == "" || info.IsDir() || !strings.HasSuffix(resolved, ".md") {
				continue
			}
			if !anchorsOf(resolved)[anchor] {
				t.Errorf("%s:%d: link %q: %s has no heading with anchor #%s", file, l.line, l.target, resolved, anchor)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no relative link was checked: the Markdown files were not read")
	}
}

func TestReadmeIsShort(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatalf("reading README.md: %v", err)
	}
	if n := bytes.Count(src, []byte("\n")); n >= readmeMaxLines {
		t.Errorf("README.md has %d lines, want fewer than %d: move reference material into docs/ and link it", n, readmeMaxLines)
	}
}

// TestDocsIndexListsEveryPage keeps docs/README.md the index of docs/: every
// page beside it, and every directory of pages, is linked from it.
func TestDocsIndexListsEveryPage(t *testing.T) {
	root := repoRoot(t)
	src, err := os.ReadFile(filepath.Join(root, "docs", "README.md"))
	if err != nil {
		t.Fatalf("reading docs/README.md: %v", err)
	}
	linked := map[string]bool{}
	for _, l := range links(src) {
		target, _, _ := strings.Cut(l.target, "#")
		if !external(l.target) && target != "" {
			first, _, _ := strings.Cut(path.Clean(target), "/")
			linked[first] = true
		}
	}
	entries, err := os.ReadDir(filepath.Join(root, "docs"))
	if err != nil {
		t.Fatalf("reading docs/: %v", err)
	}
	for _, e := range entries {
		name := e.Name()
		if name == "README.md" || (!e.IsDir() && !strings.HasSuffix(name, ".md")) {
			continue
		}
		if !linked[name] {
			t.Errorf("docs/README.md does not link docs/%s: add it to the index", name)
		}
	}
}

func TestHeadingAnchor(t *testing.T) {
	for heading, want := range map[string]string{
		"FinOps: cost, budgets and budget alerts":                  "finops-cost-budgets-and-budget-alerts",
		"The console: `tollgate ui`":                               "the-console-tollgate-ui",
		"5.2.7 Minimize the admission of root containers — FAILED": "527-minimize-the-admission-of-root-containers--failed",
		"Policies from [Gatekeeper](https://x) and VAP":            "policies-from-gatekeeper-and-vap",
		"**Kyverno** policies_here":                                "kyverno-policies_here",
	} {
		if got := anchor(heading); got != want {
			t.Errorf("anchor(%q) = %q, want %q", heading, got, want)
		}
	}
	got := headingAnchors([]byte("# A\n## A\n```\n# not a heading\n```\n### A\n"))
	for _, want := range []string{"a", "a-1", "a-2"} {
		if !got[want] {
			t.Errorf("headingAnchors: no %q in %v", want, got)
		}
	}
	if got["not-a-heading"] {
		t.Error("headingAnchors read a comment in a code block as a heading")
	}
}

func TestLinksSkipsCode(t *testing.T) {
	src := []byte("See [a](a.md) and `[b](b.md)`.\n```\n[c](c.md)\n```\n[d]: d.md\n[e](https://x \"t\")\n")
	var got []string
	for _, l := range links(src) {
		got = append(got, fmt.Sprintf("%d:%s", l.line, l.target))
	}
	want := []string{"1:a.md", "5:d.md", "6:https://x"}
	if !slices.Equal(got, want) {
		t.Errorf("links = %v, want %v", got, want)
	}
}

type link struct {
	target string
	line   int
}

var (
	inlineLink   = regexp.MustCompile(`\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	refDef       = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?`)
	codeSpan     = regexp.MustCompile("`+[^`]*`+")
	atxHeading   = regexp.MustCompile(`^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$`)
	linkInText   = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
	htmlTag      = regexp.MustCompile(`<[^>]+>`)
	schemePrefix = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)
)

// links returns the link targets of a Markdown document, leaving out code
// blocks and code spans.
func links(src []byte) []link {
	var out []link
	eachProseLine(src, func(n int, line string) {
		line = codeSpan.ReplaceAllString(line, "")
		if m := refDef.FindStringSubmatch(line); m != nil {
			out = append(out, link{m[1], n})
			return
		}
		for _, m := range inlineLink.FindAllStringSubmatch(line, -1) {
			out = append(out, link{m[1], n})
		}
	})
	return out
}

// headingAnchors returns the anchors GitHub gives a document's headings,
// numbering repeats as it does (x, x-1, x-2).
func headingAnchors(src []byte) map[string]bool {
	seen := map[string]int{}
	out := map[string]bool{}
	eachProseLine(src, func(_ int, line string) {
		m := atxHeading.FindStringSubmatch(line)
		if m == nil {
			return
		}
		a := anchor(m[1])
		if n := seen[a]; n > 0 {
			out[fmt.Sprintf("%s-%d", a, n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	})
	return out
}

// anchor is GitHub's anchor for a heading: its text lowercased, spaces
// turned into hyphens, and punctuation other than hyphens and underscores
// dropped.
func anchor(heading string) string {
	text := linkInText.ReplaceAllString(heading, "$1")
	text = htmlTag.ReplaceAllString(text, "")
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r), r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteRune('-')
		}
	}
	return b.String()
}

// eachProseLine calls fn with every line outside fenced code blocks.
func eachProseLine(src []byte, fn func(n int, line string)) {
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	fence := ""
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimLeft(line, " ")
		if fence != "" {
			closing := strings.TrimRight(trimmed, " ")
			if strings.HasPrefix(closing, fence) && strings.Trim(closing, fence[:1]) == "" {
				fence = ""
			}
			continue
		}
		if f := fenceOpening(trimmed); f != "" {
			fence = f
			continue
		}
		fn(n, line)
	}
}

// fenceOpening returns the fence a line opens (``` or ~~~, three or more),
// or "".
func fenceOpening(trimmed string) string {
	for _, c := range []string{"`", "~"} {
		n := len(trimmed) - len(strings.TrimLeft(trimmed, c))
		if n >= 3 {
			return strings.Repeat(c, n)
		}
	}
	return ""
}

func external(target string) bool {
	return schemePrefix.MatchString(target)
}

// markdownFiles returns README.md and every Markdown file under docs/, as
// repository paths.
func markdownFiles(t *testing.T, root string) []string {
	t.Helper()
	files, err := docexample.Pages(root)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// repoRoot is the directory holding go.mod, above the test's own.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}
