package output

import (
	"fmt"
	"io"
	"strings"
)

// writeText renders the report for a person at a terminal: findings grouped
// by file, then by object, each with its remediation below; then problems;
// then one summary line. It prints no colour codes, so it reads the same in
// a CI log or a file.
func writeText(w io.Writer, r *Report) error {
	results := sortedResults(r.Results)
	p := &textPrinter{w: w}
	for i, res := range results {
		newFile := i == 0 || res.File != results[i-1].File
		if newFile {
			if i > 0 {
				p.line("")
			}
			p.line("%s", res.File)
		}
		if newFile || !sameObject(res, results[i-1]) {
			loc := res.File
			if res.DocumentLine > 0 {
				loc = fmt.Sprintf("%s:%d", res.File, res.DocumentLine)
			}
			p.line("  %s (%s)", objectRef(res), loc)
		}
		p.block("    ", "      ", findingLine(res, true))
		if res.Remediation != "" {
			p.block("      ", "        ", "remediation: "+res.Remediation)
		}
	}
	if len(r.Mutations) > 0 {
		if len(results) > 0 {
			p.line("")
		}
		p.line("admission would inject (judged above as the cluster would store it):")
		for _, m := range sortedMutations(r.Mutations) {
			p.line("  %s (%s:%d)", objectRef(Result{Kind: m.Kind, Namespace: m.Namespace, Name: m.Name}), m.File, m.Line)
			for _, d := range diffLines(m.Patch) {
				p.block("    ", "      ", d)
			}
		}
	}
	if len(r.Problems) > 0 {
		if len(results) > 0 || len(r.Mutations) > 0 {
			p.line("")
		}
		p.line("problems:")
		for _, pr := range sortedProblems(r.Problems) {
			p.block("  ", "    ", problemLine(pr))
		}
	}
	if len(results) > 0 || len(r.Problems) > 0 || len(r.Mutations) > 0 {
		p.line("")
	}
	p.line("%s", summaryLine(r.Summary()))
	return p.err
}

// textPrinter writes lines and keeps the first error, so writeText reads as
// the layout it prints.
type textPrinter struct {
	w   io.Writer
	err error
}

func (p *textPrinter) line(format string, args ...any) {
	if p.err != nil {
		return
	}
	s := printable(fmt.Sprintf(format, args...))
	_, p.err = io.WriteString(p.w, s+"\n")
}

// block prints possibly multi-line text with its first line indented by
// first and the rest by rest, so a long message still reads as one item.
func (p *textPrinter) block(first, rest, text string) {
	text = strings.TrimRight(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		indent := rest
		if i == 0 {
			indent = first
		}
		p.line("%s%s", indent, l)
	}
}
