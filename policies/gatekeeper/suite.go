package gatekeeper

import (
	"context"
	"fmt"
	"io"
	"io/fs"

	"github.com/open-policy-agent/gatekeeper/v3/pkg/gator"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/gator/verify"
)

// RunSuites runs every gator Suite (kind: Suite, apiVersion
// test.gatekeeper.sh/v1alpha1) found under root in fsys, recursively, with
// gator's own runner: each test loads its template and constraint, each
// case reviews its object (with its inventory) and checks its assertions
// (violations yes, no or a count, and a message pattern). It prints
// go-test-like lines to w, as `gator verify -v` does, and returns how many
// cases passed and failed; a test or a suite that could not run counts as
// one failure, a test of an invalid constraint as one case. err is for
// suites that could not be found or read.
func RunSuites(ctx context.Context, fsys fs.FS, root string, w io.Writer) (passed, failed int, err error) {
	// gator names a suite by cutting the root out of its path; "." would
	// cut the extension instead.
	shown := root
	if root == "." {
		shown = ""
	}
	suites, err := verify.ReadSuites(fsys, root, shown, true)
	if err != nil {
		return 0, 0, fmt.Errorf("reading suites under %s: %w", root, err)
	}
	// As `gator verify` builds its client: Rego and K8sNativeValidation.
	runner, err := verify.NewRunner(fsys, func(opts ...gator.Opt) (gator.Client, error) {
		return gator.NewOPAClient(false, append(opts, gator.WithK8sCEL())...)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("creating the suite runner: %w", err)
	}
	filter, err := verify.NewFilter("")
	if err != nil {
		return 0, 0, err
	}

	results := make([]verify.SuiteResult, 0, len(suites))
	for _, s := range suites {
		if err := ctx.Err(); err != nil {
			return passed, failed, err
		}
		r := runner.Run(ctx, filter, s)
		results = append(results, r)
		p, f := count(&r)
		passed, failed = passed+p, failed+f
	}
	if err := (verify.PrinterGo{}).Print(stringWriter{w}, results, true); err != nil {
		return passed, failed, fmt.Errorf("printing suite results: %w", err)
	}
	return passed, failed, nil
}

// count tallies one suite's cases.
func count(r *verify.SuiteResult) (passed, failed int) {
	if r.Error != nil {
		failed++
	}
	for _, t := range r.TestResults {
		if t.Skipped {
			continue
		}
		switch {
		case t.Error != nil:
			failed++
		case len(t.CaseResults) == 0: // an invalid constraint, as expected
			passed++
		}
		for _, c := range t.CaseResults {
			switch {
			case c.Skipped:
			case c.Error != nil:
				failed++
			default:
				passed++
			}
		}
	}
	return passed, failed
}

// stringWriter lets gator's printer write to an io.Writer.
type stringWriter struct{ w io.Writer }

func (s stringWriter) WriteString(str string) (int, error) { return io.WriteString(s.w, str) }
