package output

import (
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/tollgate-dev/tollgate/policies"
)

type junitTestSuites struct {
	XMLName  xml.Name         `xml:"testsuites"`
	Name     string           `xml:"name,attr"`
	Tests    int              `xml:"tests,attr"`
	Failures int              `xml:"failures,attr"`
	Errors   int              `xml:"errors,attr"`
	Suites   []junitTestSuite `xml:"testsuite"`
}

type junitTestSuite struct {
	Name     string          `xml:"name,attr"`
	Tests    int             `xml:"tests,attr"`
	Failures int             `xml:"failures,attr"`
	Errors   int             `xml:"errors,attr"`
	Cases    []junitTestCase `xml:"testcase"`
}

type junitTestCase struct {
	Name      string         `xml:"name,attr"`
	ClassName string         `xml:"classname,attr"`
	Failures  []junitFailure `xml:"failure"`
	Errors    []junitFailure `xml:"error"`
	SystemOut string         `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// noFileSuite names the suite that holds problems not tied to a file, such
// as a policy that failed to load.
const noFileSuite = "tollgate"

// writeJUnit renders the report as JUnit XML for CI test dashboards: one
// suite per file, one test case per object with findings, a failure per
// enforce finding (warn and audit findings are printed, not failed, as they
// do not fail the gate) and an error per problem. Text goes through
// printable, as XML 1.0 cannot carry most control characters at all. Objects without findings
// are not listed because the report does not enumerate them; the summary
// counts them.
func writeJUnit(w io.Writer, r *Report) error {
	doc := junitTestSuites{Name: r.toolName()}
	suites := map[string]*junitTestSuite{}
	suite := func(file string) *junitTestSuite {
		s, ok := suites[file]
		if !ok {
			s = &junitTestSuite{Name: printable(file)}
			suites[file] = s
		}
		return s
	}

	results := sortedResults(r.Results)
	for i := 0; i < len(results); {
		j := i + 1
		for j < len(results) && sameObject(results[i], results[j]) {
			j++
		}
		s := suite(results[i].File)
		s.Cases = append(s.Cases, junitObjectCase(results[i:j]))
		i = j
	}
	for _, p := range sortedProblems(r.Problems) {
		file := p.File
		if file == "" {
			file = noFileSuite
		}
		s := suite(file)
		s.Cases = append(s.Cases, junitProblemCase(p, file))
	}

	files := make([]string, 0, len(suites))
	for f := range suites {
		files = append(files, f)
	}
	slices.Sort(files)
	for _, f := range files {
		s := suites[f]
		for _, c := range s.Cases {
			s.Tests++
			if len(c.Errors) > 0 {
				s.Errors++
			} else if len(c.Failures) > 0 {
				s.Failures++
			}
		}
		doc.Tests += s.Tests
		doc.Failures += s.Failures
		doc.Errors += s.Errors
		doc.Suites = append(doc.Suites, *s)
	}

	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("encoding junit xml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// junitObjectCase is the test case of one object, given its findings.
func junitObjectCase(results []Result) junitTestCase {
	first := results[0]
	c := junitTestCase{Name: printable(objectRef(first)), ClassName: printable(first.File)}
	var out []string
	for _, res := range results {
		if res.Action != policies.ActionEnforce || res.Waived() {
			out = append(out, findingDetail(res))
			continue
		}
		c.Failures = append(c.Failures, junitFailure{
			Message: printable(res.Message),
			Type:    printable(res.Policy),
			Text:    printable(findingDetail(res)),
		})
	}
	c.SystemOut = printable(strings.Join(out, "\n"))
	return c
}

// findingDetail is a finding's one-line summary with its remediation below.
func findingDetail(r Result) string {
	s := findingLine(r, false)
	if r.Remediation != "" {
		s += "\nremediation: " + r.Remediation
	}
	return s
}

// junitProblemCase is the test case that carries one problem as an error.
func junitProblemCase(p Problem, suite string) junitTestCase {
	name, typ := "input", "input-error"
	if p.Policy != "" {
		name, typ = "policy "+p.Policy, "policy-error"
	}
	if p.Line > 0 {
		name += fmt.Sprintf(" (line %d)", p.Line)
	}
	return junitTestCase{
		Name:      printable(name),
		ClassName: printable(suite),
		Errors:    []junitFailure{{Message: printable(p.Message), Type: typ, Text: printable(problemLine(p))}},
	}
}
