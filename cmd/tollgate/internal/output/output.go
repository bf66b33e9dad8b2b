// Package output renders the results of `tollgate check` — the pull-request
// gate that runs the policy engine over manifest files — for the places
// those results are read: a terminal (text), other programs (json), GitHub
// code scanning (sarif), CI test dashboards (junit) and GitHub Actions
// annotations (github).
//
// Every format is built from one Report and is deterministic: results are
// sorted the same way everywhere and nothing depends on the clock or on map
// order, so outputs can be diffed, cached and checked against golden files.
package output

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tollgate-dev/tollgate/policies"
)

// Result is one finding located in an input file. The CLI builds it from the
// engine's Finding and the position of the object it came from, so every
// format can point a person at the offending line.
type Result struct {
	// File is the input file as the user named it; "<stdin>" for standard input.
	File string `json:"file"`
	// Line is the line of the offending field when known, else of the document.
	Line int `json:"line"`
	// DocumentLine is the line where the object's YAML document starts.
	DocumentLine int `json:"documentLine"`
	// APIVersion, Kind, Namespace and Name identify the object.
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	// Finding is what the policy found: policy, title, message, severity,
	// action, path, controls and remediation.
	policies.Finding
}

// Problem is an input or policy error that made the check incomplete: a file
// that did not parse, a policy that timed out. A report with problems never
// passes, because something went unchecked.
type Problem struct {
	// File and Line locate the problem when it belongs to an input.
	File string
	Line int
	// Policy names the policy that failed, if one did.
	Policy string
	// Message says what went wrong.
	Message string
}

// Report is everything one check produced; it is the single input of every
// format.
type Report struct {
	// Tool is the program name, "tollgate" when empty.
	Tool string
	// Version is the program version, shown in SARIF and JSON.
	Version string
	// Results are the findings, in any order: formats sort them.
	Results []Result
	// Problems are the errors that made the check incomplete.
	Problems []Problem
	// Policies is every policy that ran; SARIF turns them into rules with
	// help text, so a policy without findings still documents itself.
	Policies []policies.Metadata
	// Files is the number of files read.
	Files int
	// Objects is the number of objects checked.
	Objects int
	// Mutations are what admission would change in the objects before
	// judging them; the findings are of the mutated objects.
	Mutations []Mutation
	// HelpURIs are the help pages of rules that are not Tollgate
	// policies, by rule id (an advisory's page, for `tollgate scan
	// image`); a policy's rule links to its page in the policy reference.
	HelpURIs map[string]string
}

// ActionCounts counts findings by their effective action.
type ActionCounts struct {
	Enforce int `json:"enforce"`
	Warn    int `json:"warn"`
	Audit   int `json:"audit"`
}

// SeverityCounts counts findings by severity. A finding with a severity
// outside the five known ones is counted in Summary.Findings only.
type SeverityCounts struct {
	Critical int `json:"critical"`
	High     int `json:"high"`
	Medium   int `json:"medium"`
	Low      int `json:"low"`
	Info     int `json:"info"`
}

// Summary is the tally a CI gate decides on and every format closes with.
type Summary struct {
	Objects    int            `json:"objects"`
	Files      int            `json:"files"`
	Findings   int            `json:"findings"`
	ByAction   ActionCounts   `json:"byAction"`
	BySeverity SeverityCounts `json:"bySeverity"`
	Problems   int            `json:"problems"`
	// Waived counts the findings an exception in force waives; they are
	// in Findings but not in ByAction or BySeverity.
	Waived int `json:"waived,omitempty"`
	// Passed is true when no finding enforces and there was no problem:
	// the exit status of `tollgate check` follows it.
	Passed bool `json:"passed"`
}

// Summary counts the report's findings and problems.
func (r *Report) Summary() Summary {
	s := Summary{
		Objects:  r.Objects,
		Files:    r.Files,
		Findings: len(r.Results),
		Problems: len(r.Problems),
	}
	for _, res := range r.Results {
		if res.Waived() {
			// An exception in force waives it: shown, never failing.
			s.Waived++
			continue
		}
		switch res.Action {
		case policies.ActionEnforce:
			s.ByAction.Enforce++
		case policies.ActionWarn:
			s.ByAction.Warn++
		case policies.ActionAudit:
			s.ByAction.Audit++
		}
		switch res.Severity {
		case policies.SeverityCritical:
			s.BySeverity.Critical++
		case policies.SeverityHigh:
			s.BySeverity.High++
		case policies.SeverityMedium:
			s.BySeverity.Medium++
		case policies.SeverityLow:
			s.BySeverity.Low++
		case policies.SeverityInfo:
			s.BySeverity.Info++
		}
	}
	s.Passed = s.ByAction.Enforce == 0 && s.Problems == 0
	return s
}

// Format names an output format; the CLI's --format flag takes one.
type Format string

// The formats Write renders.
const (
	// FormatText is for a person at a terminal.
	FormatText Format = "text"
	// FormatJSON is for other programs.
	FormatJSON Format = "json"
	// FormatSARIF is SARIF 2.1.0 for GitHub code scanning.
	FormatSARIF Format = "sarif"
	// FormatJUnit is JUnit XML for CI test dashboards.
	FormatJUnit Format = "junit"
	// FormatGitHub is GitHub Actions workflow commands, which become
	// annotations on the pull request.
	FormatGitHub Format = "github"
)

// Formats lists every format, for flag help and completion.
func Formats() []Format {
	return []Format{FormatText, FormatJSON, FormatSARIF, FormatJUnit, FormatGitHub}
}

// ParseFormat reads a format name as given on the command line; case and
// surrounding space are ignored.
func ParseFormat(s string) (Format, error) {
	f := Format(strings.ToLower(strings.TrimSpace(s)))
	if slices.Contains(Formats(), f) {
		return f, nil
	}
	return "", fmt.Errorf("unknown output format %q (want %s)", s, formatList())
}

func formatList() string {
	fs := Formats()
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = string(f)
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Write renders r in format to w. The output is built in memory first, so
// on error nothing has been written.
func Write(w io.Writer, format Format, r *Report) error {
	if r == nil {
		return fmt.Errorf("writing %s output: no report", format)
	}
	var (
		buf bytes.Buffer
		err error
	)
	switch format {
	case FormatText:
		err = writeText(&buf, r)
	case FormatJSON:
		err = writeJSON(&buf, r)
	case FormatSARIF:
		err = writeSARIF(&buf, r)
	case FormatJUnit:
		err = writeJUnit(&buf, r)
	case FormatGitHub:
		err = writeGitHub(&buf, r)
	default:
		return fmt.Errorf("writing output: unknown format %q (want %s)", format, formatList())
	}
	if err != nil {
		return fmt.Errorf("rendering %s output: %w", format, err)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("writing %s output: %w", format, err)
	}
	return nil
}

// stdinName is the file name the CLI gives standard input.
const stdinName = "<stdin>"

func (r *Report) toolName() string {
	if r.Tool == "" {
		return "tollgate"
	}
	return r.Tool
}

// sortedResults returns the results in the one order every format uses: by
// file, then object (document line and identity, so an object's findings
// stay together), then line, policy and path; message breaks the last ties.
func sortedResults(in []Result) []Result {
	out := slices.Clone(in)
	slices.SortStableFunc(out, func(a, b Result) int {
		return cmp.Or(
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.DocumentLine, b.DocumentLine),
			compareObject(a, b),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Policy, b.Policy),
			cmp.Compare(a.Path, b.Path),
			cmp.Compare(a.Message, b.Message),
		)
	})
	return out
}

func compareObject(a, b Result) int {
	return cmp.Or(
		cmp.Compare(a.Kind, b.Kind),
		cmp.Compare(a.Namespace, b.Namespace),
		cmp.Compare(a.Name, b.Name),
		cmp.Compare(a.APIVersion, b.APIVersion),
	)
}

// sameObject reports whether two results are about the same object.
func sameObject(a, b Result) bool {
	return a.File == b.File && a.DocumentLine == b.DocumentLine && compareObject(a, b) == 0
}

// sortedProblems orders problems by file, line, policy and message.
func sortedProblems(in []Problem) []Problem {
	out := slices.Clone(in)
	slices.SortStableFunc(out, func(a, b Problem) int {
		return cmp.Or(
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Policy, b.Policy),
			cmp.Compare(a.Message, b.Message),
		)
	})
	return out
}

// objectRef names an object the way kubectl does: "Deployment default/web",
// or "Namespace prod" for a cluster-scoped one.
func objectRef(r Result) string {
	kind := cmp.Or(r.Kind, "object")
	name := cmp.Or(r.Name, "(unnamed)")
	if r.Namespace != "" {
		name = r.Namespace + "/" + name
	}
	return kind + " " + name
}

// actionLabel is the action as shown to people.
func actionLabel(a policies.Action) string {
	return strings.ToUpper(cmp.Or(string(a), "unknown"))
}

// findingLine renders a finding on one line for people: action, severity,
// policy, message and where.
func findingLine(r Result, padAction bool) string {
	action := actionLabel(r.Action)
	if padAction {
		action = fmt.Sprintf("%-7s", action)
	}
	return fmt.Sprintf("%s [%s] %s: %s%s%s", action, cmp.Or(string(r.Severity), "unknown"), r.Policy, r.Message, where(r.Path, r.Line), waiver(r.Exception))
}

// waiver renders " — waived by exception ns/name (reason)" for a finding
// an exception waives, "" otherwise.
func waiver(x *policies.ExceptionRef) string {
	if x == nil {
		return ""
	}
	s := " — waived by exception " + x.Namespace + "/" + x.Name
	if x.Reason != "" {
		s += " (" + x.Reason + ")"
	}
	return s
}

// where renders " at <path> (line N)", leaving out what is unknown.
func where(path string, line int) string {
	var b strings.Builder
	if path != "" {
		b.WriteString(" at ")
		b.WriteString(path)
	}
	if line > 0 {
		fmt.Fprintf(&b, " (line %d)", line)
	}
	return b.String()
}

// problemLine renders a problem on one line for people.
func problemLine(p Problem) string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
	}
	if p.Policy != "" {
		b.WriteString("policy ")
		b.WriteString(p.Policy)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// summaryLine is the closing line of the text and github formats:
// "3 objects checked in 2 files: 2 enforce, 1 warn, 0 audit findings — FAILED".
func summaryLine(s Summary) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s checked in %s: %d enforce, %d warn, %d audit findings",
		plural(s.Objects, "object"), plural(s.Files, "file"),
		s.ByAction.Enforce, s.ByAction.Warn, s.ByAction.Audit)
	if s.Waived > 0 {
		fmt.Fprintf(&b, ", %d waived", s.Waived)
	}
	if s.Problems > 0 {
		fmt.Fprintf(&b, ", %s", plural(s.Problems, "problem"))
	}
	if s.Passed {
		b.WriteString(" — PASSED")
	} else {
		b.WriteString(" — FAILED")
	}
	return b.String()
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// printable makes text from manifests safe to show in a terminal or a CI
// log: control characters other than newline and tab, and the bidirectional
// overrides of "Trojan Source" tricks, are shown as escapes instead of being
// obeyed, and invalid UTF-8 becomes U+FFFD. Manifests in a pull request are
// written by whoever opened it, so their names and values are not trusted.
func printable(s string) string {
	clean := true
	for _, r := range s {
		if needsEscape(r) {
			clean = false
			break
		}
	}
	if clean && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteRune(unicode.ReplacementChar)
		case needsEscape(r) && r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case needsEscape(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func needsEscape(r rune) bool {
	if r == '\n' || r == '\t' {
		return false
	}
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)
}
