// Package docexample keeps the output quoted in the documentation true: a
// fenced block in README.md or docs/ that follows a marker
//
//	<!-- example: SOURCE [excerpt] [numbers] [lines] -->
//
// is output some test produces, and that test compares it here. SOURCE names
// who produces it: "cli" (the commands in the block, run by test/docs from
// the repository root), "demo" (the transcript of `make demo`, checked by
// test/demo) or a name a test passes to Check. A block marked
//
//	<!-- commands -->
//
// shows commands only, and test/docs checks that it has no output in it.
//
// Comparison forgives what changes from run to run and nothing else:
// durations and ages, loopback ports, digests, UIDs, timestamps, temporary
// directories and the width of table columns. With the option "numbers",
// every number is forgiven too (spend and forecasts move with the clock). A
// line that is only "…" stands for any number of lines, and "…" inside a line
// for any text. With "excerpt" the block matches a contiguous part of the
// output; with "lines", each of its lines is some line of the output; with
// neither, the whole output.
package docexample

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// UpdateEnv names the variable that, set to 1, makes Check rewrite a whole-output block that no
// longer matches with what the test produced, instead of failing.
const UpdateEnv = "TOLLGATE_UPDATE_DOCS"

// Example is a marked fenced block.
type Example struct {
	// File is the page, relative to the repository root, with slashes.
	File string
	// Line is the 1-based line of the marker.
	Line int
	// Source is who produces the output: "cli", "demo" or a test's name.
	Source string
	// Excerpt says the block is a contiguous part of the output.
	Excerpt bool
	// Numbers says every number in the block is forgiven.
	Numbers bool
	// Lines says each line of the block is a line of the output, in any
	// order: a collection of lines from one run, such as several denials.
	Lines bool
	// Commands marks a block of commands only (<!-- commands -->).
	Commands bool
	// Lang is the fence's info string ("console", "json", ...).
	Lang string
	// Body is the block's text, without the fences; first and last are the
	// 1-based lines it spans (last is the closing fence).
	Body        string
	first, last int
}

// Fenced is a fenced block with whatever marker precedes it.
type Fenced struct {
	Example
	// Marked says a marker precedes the block.
	Marked bool
}

var markerRE = regexp.MustCompile(`^<!--\s*(example:\s*([^\s]+)((?:\s+[a-z]+)*)|commands)\s*-->\s*$`)

// Parse reads a page's fenced blocks, each with the marker before it (blank
// lines may sit between). A marker that is not followed by a block, or that
// has an option it does not know, is an error.
func Parse(file string, src []byte) ([]Fenced, error) {
	var (
		out     []Fenced
		pending *Example
		block   *Fenced
		body    []string
		n       int
	)
	sc := bufio.NewScanner(strings.NewReader(string(src)))
	sc.Buffer(make([]byte, 0, 64*1024), 4<<20)
	for sc.Scan() {
		n++
		line := sc.Text()
		if block != nil {
			if strings.HasPrefix(strings.TrimSpace(line), "```") {
				block.Body = strings.Join(body, "\n")
				block.last = n
				out = append(out, *block)
				block, body = nil, nil
				continue
			}
			body = append(body, line)
			continue
		}
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") {
			block = &Fenced{Example: Example{File: file, Line: n, Lang: strings.TrimSpace(strings.TrimPrefix(trimmed, "```"))}}
			if pending != nil {
				lang := block.Lang
				block.Example = *pending
				block.Lang = lang
				block.Marked = true
				pending = nil
			}
			block.first = n + 1
			continue
		}
		if m := markerRE.FindStringSubmatch(trimmed); m != nil {
			if pending != nil {
				return nil, fmt.Errorf("%s:%d: marker not followed by a fenced block", file, pending.Line)
			}
			pending = &Example{File: file, Line: n}
			if m[1] == "commands" {
				pending.Commands = true
				continue
			}
			pending.Source = m[2]
			for opt := range strings.FieldsSeq(m[3]) {
				switch opt {
				case "excerpt":
					pending.Excerpt = true
				case "numbers":
					pending.Numbers = true
				case "lines":
					pending.Lines = true
				default:
					return nil, fmt.Errorf("%s:%d: example marker: unknown option %q (want excerpt, numbers or lines)", file, n, opt)
				}
			}
			continue
		}
		if strings.HasPrefix(trimmed, "<!--") && strings.Contains(trimmed, "example") {
			return nil, fmt.Errorf("%s:%d: malformed example marker %q (want <!-- example: SOURCE [excerpt] [numbers] [lines] -->)", file, n, trimmed)
		}
		if pending != nil && trimmed != "" {
			return nil, fmt.Errorf("%s:%d: marker not followed by a fenced block", file, pending.Line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if block != nil {
		return nil, fmt.Errorf("%s:%d: fenced block never closed", file, block.Line)
	}
	if pending != nil {
		return nil, fmt.Errorf("%s:%d: marker not followed by a fenced block", file, pending.Line)
	}
	return out, nil
}

// Pages lists README.md and every Markdown page under docs/, relative to the
// repository root, with slashes.
func Pages(root string) ([]string, error) {
	pages := []string{"README.md"}
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			pages = append(pages, filepath.ToSlash(rel))
		}
		return nil
	})
	return pages, err
}

// All returns every fenced block of every page, marked or not.
func All(root string) ([]Fenced, error) {
	pages, err := Pages(root)
	if err != nil {
		return nil, err
	}
	var all []Fenced
	for _, p := range pages {
		src, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(p)))
		if err != nil {
			return nil, err
		}
		blocks, err := Parse(p, src)
		if err != nil {
			return nil, err
		}
		all = append(all, blocks...)
	}
	return all, nil
}

// Of returns the examples whose source is source.
func Of(root, source string) ([]Example, error) {
	all, err := All(root)
	if err != nil {
		return nil, err
	}
	var out []Example
	for _, b := range all {
		if b.Marked && !b.Commands && b.Source == source {
			out = append(out, b.Example)
		}
	}
	return out, nil
}

// Check compares every example marked with source against got, the output
// the calling test produced, and fails t on the first line that differs. It
// fails, too, when no block names source: a test that checks nothing is a
// test that cannot fail.
func Check(t testing.TB, root, source, got string) {
	t.Helper()
	examples, err := Of(root, source)
	if err != nil {
		t.Fatal(err)
	}
	if len(examples) == 0 {
		t.Fatalf("no block in README.md or docs/ is marked <!-- example: %s -->", source)
	}
	for _, ex := range examples {
		if err := ex.Match(got); err != nil {
			if !ex.Excerpt && os.Getenv(UpdateEnv) == "1" {
				if err := ex.Rewrite(root, got); err != nil {
					t.Fatal(err)
				}
				t.Logf("%s:%d: rewritten with this run's output", ex.File, ex.Line)
				continue
			}
			t.Errorf("%s:%d: the example no longer matches what %s prints: %v\n(set %s=1 to rewrite a whole-output block)", ex.File, ex.Line, source, err, UpdateEnv)
		}
	}
}

// Rewrite replaces the block's body in its page with got.
func (ex Example) Rewrite(root, got string) error {
	p := filepath.Join(root, filepath.FromSlash(ex.File))
	src, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	lines := strings.Split(string(src), "\n")
	if ex.first < 1 || ex.last > len(lines) || ex.first > ex.last {
		return fmt.Errorf("%s:%d: the block moved while it was checked", ex.File, ex.Line)
	}
	body := strings.Split(strings.TrimRight(got, "\n"), "\n")
	lines = slices.Concat(lines[:ex.first-1], body, lines[ex.last-1:])
	return os.WriteFile(p, []byte(strings.Join(lines, "\n")), 0o644) //nolint:gosec // a documentation page
}

// Match says whether got is what the block shows, after both are
// normalized; the error names the first line of the block that does not
// match, and what the output has there.
func (ex Example) Match(got string) error {
	pattern := splitLines(ex.Body)
	lines := splitLines(got)
	norm := func(s string) string { return Normalize(s, ex.Numbers) }
	res := make([]*regexp.Regexp, len(pattern))
	for i, p := range pattern {
		if strings.TrimSpace(p) == "…" {
			continue
		}
		parts := strings.Split(norm(p), "…")
		for j := range parts {
			parts[j] = regexp.QuoteMeta(parts[j])
		}
		res[i] = regexp.MustCompile("^" + strings.Join(parts, ".*") + "$")
	}
	normalized := make([]string, len(lines))
	for i, l := range lines {
		normalized[i] = norm(l)
	}
	if ex.Lines {
		for i, re := range res {
			if re != nil && !slices.ContainsFunc(normalized, re.MatchString) {
				return fmt.Errorf("block line %d %q: no line of the output is like it", i+1, pattern[i])
			}
		}
		return nil
	}
	m := matcher{res: res, lines: normalized}
	starts := []int{0}
	if ex.Excerpt {
		starts = starts[:0]
		for i := range normalized {
			starts = append(starts, i)
		}
	}
	for _, s := range starts {
		if m.match(0, s, !ex.Excerpt) {
			return nil
		}
	}
	if m.best < len(pattern) {
		at := "the end of the output"
		if m.bestLine < len(lines) {
			at = fmt.Sprintf("%q", lines[m.bestLine])
		} else if m.bestLine < 0 {
			at = "no line like it"
		}
		return fmt.Errorf("block line %d %q: the output has %s", m.best+1, pattern[m.best], at)
	}
	return fmt.Errorf("the output goes on after the block's last line: %q", lines[min(m.bestLine, len(lines)-1)])
}

// matcher matches pattern lines (nil for "…") against output lines by
// backtracking, remembering the furthest pattern line it reached.
type matcher struct {
	res      []*regexp.Regexp
	lines    []string
	best     int
	bestLine int
	steps    int
}

func (m *matcher) match(pi, li int, whole bool) bool {
	m.steps++
	if m.steps > 1_000_000 {
		return false
	}
	if pi > m.best || (pi == m.best && li > m.bestLine) {
		m.best, m.bestLine = pi, li
	}
	if pi == len(m.res) {
		return !whole || li == len(m.lines)
	}
	if m.res[pi] == nil {
		for k := li; k <= len(m.lines); k++ {
			if m.match(pi+1, k, whole) {
				return true
			}
		}
		return false
	}
	if li < len(m.lines) && m.res[pi].MatchString(m.lines[li]) {
		return m.match(pi+1, li+1, whole)
	}
	return false
}

func splitLines(s string) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

var volatile = []struct {
	re  *regexp.Regexp
	new string
}{
	{regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`), "<time>"},
	{regexp.MustCompile(`\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b`), "<uid>"},
	{regexp.MustCompile(`sha256:[0-9a-f]{64}`), "sha256:<digest>"},
	{regexp.MustCompile(`\b[0-9a-f]{40,64}\b`), "<hex>"},
	{regexp.MustCompile(`(127\.0\.0\.1|localhost):\d+`), "$1:<port>"},
	// A pod's name from its ReplicaSet: the template hash stays, the random
	// suffix (consonants and digits, as the API server generates it) goes.
	{regexp.MustCompile(`-([a-z0-9]{6,10})-[bcdfghjklmnpqrstvwxz2456789]{5}\b`), "-$1-<rand>"},
	{regexp.MustCompile(`/tmp/[A-Za-z0-9_.-]*[0-9][A-Za-z0-9_.-]*(/[0-9]+)?`), "<tmp>"},
	{regexp.MustCompile(`\b(\d+h)?(\d+m)?\d+(\.\d+)?(ns|µs|us|ms|s)\b|\b\d+(h|m|d)\b`), "<dur>"},
}

var numberRE = regexp.MustCompile(`\d[\d,]*(\.\d+)?`)

// Normalize replaces what changes from run to run with placeholders and
// collapses runs of spaces (table columns widen and narrow with their
// values); with numbers, every number becomes "<n>".
func Normalize(s string, numbers bool) string {
	for _, v := range volatile {
		s = v.re.ReplaceAllString(s, v.new)
	}
	if numbers {
		s = numberRE.ReplaceAllString(s, "<n>")
	}
	return strings.Join(strings.Fields(s), " ")
}

// Run runs the "$ " commands of a block (with their "\" continuations) in
// one bash, in dir, with bin first on PATH, and returns the transcript: each
// command line as the block shows it, then what it printed (stdout and
// stderr together, as a terminal shows them). "bin/tollgate" in a command is
// the tollgate in bin; "echo $?" prints the status of the command before it.
func Run(body, dir, bin string) (string, error) {
	var script strings.Builder
	fmt.Fprintf(&script, "set +e\nexport PATH=%s:\"$PATH\"\ncd %s || exit 99\n__rc=0\n", shellQuote(bin), shellQuote(dir))
	var cmd []string
	flush := func() {
		if len(cmd) == 0 {
			return
		}
		shown := strings.Join(cmd, "\n")
		run := strings.TrimPrefix(shown, "$ ")
		run = strings.ReplaceAll(run, "bin/tollgate ", "tollgate ")
		fmt.Fprintf(&script, "printf '%%s\\n' %s\n(exit $__rc)\n%s\n__rc=$?\n", shellQuote(shown), wrapStderr(run))
		cmd = nil
	}
	cont := false
	for l := range strings.SplitSeq(body, "\n") {
		switch {
		case cont:
			cmd = append(cmd, l)
		case strings.HasPrefix(l, "$ "):
			flush()
			cmd = append(cmd, l)
		}
		cont = len(cmd) > 0 && strings.HasSuffix(strings.TrimSpace(l), `\`)
		if !cont && len(cmd) > 0 && !strings.HasPrefix(l, "$ ") {
			flush()
		}
	}
	flush()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sh := exec.CommandContext(ctx, "bash", "-c", script.String())
	sh.Env = append(os.Environ(), "KUBECONFIG=/nonexistent", "NO_COLOR=1", "COLUMNS=200")
	var out bytes.Buffer
	sh.Stdout, sh.Stderr = &out, &out
	if err := sh.Run(); err != nil {
		return out.String(), fmt.Errorf("bash: %w\n%s", err, out.String())
	}
	return out.String(), nil
}

// wrapStderr runs a command line with its stderr on stdout, as a terminal
// shows them, keeping a "# comment" at its end out of the braces.
func wrapStderr(line string) string {
	return "{ " + line + "\n} 2>&1"
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ShellWords joins args as a shell reads them back, quoting those a shell
// would split or expand.
func ShellWords(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = a
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`*?[]{}()<>|&;#~!") {
			quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(quoted, " ")
}
