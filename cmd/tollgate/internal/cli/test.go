package cli

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate-dev/tollgate/policies/gatekeeper"
	"github.com/tollgate-dev/tollgate/policies/kyverno/kyvernotest"
	"github.com/tollgate-dev/tollgate/policies/policytest"
)

func newTestCmd(stdio IO) *cobra.Command {
	var (
		f       policyFlags
		run     string
		verbose bool
	)
	c := &cobra.Command{
		Use:   "test [flags] [PATH...]",
		Short: "Run policy unit tests (_test.rego), fixture suites, Gatekeeper (gator) suites and Kyverno test files",
		Long: `Test runs the Rego unit tests (files ending in _test.rego) and the fixture
suites (directories with a suite.yaml) found under each PATH (default: .), with
the policies found there. Built-in policies are loaded too, so suites for your
own configuration of them work; --no-builtin leaves them out.

A fixture suite is a directory:

  suite.yaml        policies: [ids judged]   config: FILE   namespaces: FILE
                    podControllers: true     (also run each Pod fixture as
                                              Deployment, ReplicaSet, StatefulSet,
                                              DaemonSet, Job, CronJob,
                                              ReplicationController, PodTemplate)
                    imageScans: FILE         (image -> scan summary, seen in
                                              input.imageScans; unlisted: pending)
                    cases: [{fixture: denied/x.yaml,
                             expect: [{policy, path, message}]}]
  allowed/*.yaml    must produce no finding of the suite's policies
  denied/*.yaml     must produce at least one, exactly the expected ones when
                    a case names the file (message is a substring)

Gatekeeper suites (kind: Suite, apiVersion test.gatekeeper.sh/v1alpha1, as
gator verify reads them) found under each PATH run unchanged, with gator's own
runner: each test's template and constraint, each case's object and its
assertions (violations: yes, no or a count; message).

Kyverno test files (kyverno-test.yaml, cli.kyverno.io/v1alpha1 Test, as
kyverno test reads them) found under each PATH run unchanged through
Tollgate's Kyverno engine: each test's policies, resources, values
(variables file or inline) and exceptions, and each expected result (policy,
rule, resources, pass/fail/warn/error/skip, patchedResources), printed as a
table per test (-v adds each rule's message). Results of generate rules are
reported as not supported.

Exit status: 0 all passed, 1 a test failed, 2 usage error or a policy that
does not compile.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{"."}
			}
			start := time.Now()
			mods, data, err := f.modules()
			if err != nil {
				return err
			}
			var gator []string
			for _, p := range args {
				if st, err := os.Stat(p); err == nil && st.IsDir() && hasGatorSuite(p) {
					gator = append(gator, p)
				}
			}
			kyvernoTests, err := kyvernotest.Find(args)
			if err != nil {
				return err
			}
			// Kyverno test files named by themselves are not for the Rego
			// runner.
			var regoPaths []string
			for _, p := range args {
				if st, err := os.Stat(p); err == nil && !st.IsDir() && kyvernotest.IsTestFile(p) {
					continue
				}
				regoPaths = append(regoPaths, p)
			}
			// Paths are loaded by the runner itself, with their tests; the
			// built-in library and --policy are the extra modules.
			var sum policytest.Summary
			if len(regoPaths) > 0 {
				sum, err = policytest.Run(cmd.Context(), policytest.Options{
					Paths:      regoPaths,
					Modules:    mods,
					Data:       data,
					Run:        run,
					Verbose:    verbose,
					AllowEmpty: len(gator) > 0 || len(kyvernoTests) > 0,
				}, stdio.Out)
				if err != nil {
					return err
				}
			}
			for _, p := range gator {
				passed, failed, err := gatekeeper.RunSuites(cmd.Context(), os.DirFS(p), ".", stdio.Out)
				if err != nil {
					return fmt.Errorf("%s: %w", p, err)
				}
				sum.Passed, sum.Failed = sum.Passed+passed, sum.Failed+failed
			}
			if len(kyvernoTests) > 0 {
				var re *regexp.Regexp
				if run != "" {
					if re, err = regexp.Compile(run); err != nil {
						return fmt.Errorf("--run: %w", err)
					}
				}
				ks := kyvernotest.Run(cmd.Context(), kyvernoTests, kyvernotest.Options{Run: re, Verbose: verbose}, stdio.Out)
				sum.Passed, sum.Failed = sum.Passed+ks.Passed, sum.Failed+ks.Failed
				switch {
				case ks.Unsupported == 1:
					fmt.Fprintln(stdio.Out, "1 Kyverno test result not checked (not supported by Tollgate)")
				case ks.Unsupported > 1:
					fmt.Fprintf(stdio.Out, "%d Kyverno test results not checked (not supported by Tollgate)\n", ks.Unsupported)
				}
			}
			elapsed := time.Since(start).Round(time.Millisecond)
			if sum.Failed > 0 {
				fmt.Fprintf(stdio.Out, "FAIL\n%d passed, %d failed (%s)\n", sum.Passed, sum.Failed, elapsed)
				return &exitError{ExitFindings}
			}
			fmt.Fprintf(stdio.Out, "PASS\n%d passed, 0 failed (%s)\n", sum.Passed, elapsed)
			return nil
		},
	}
	f.register(c)
	c.Flags().StringVar(&run, "run", "", "run only tests and fixture cases matching this regexp")
	c.Flags().BoolVarP(&verbose, "verbose", "v", false, "print every test, not only failures")
	return c
}

// hasGatorSuite reports whether a directory holds a gator Suite file.
func hasGatorSuite(dir string) bool {
	found := false
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || found {
			return fs.SkipDir
		}
		if d.IsDir() || !isManifestFile(p) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte("test.gatekeeper.sh/")) && strings.Contains(string(b), "kind: Suite") {
			found = true
		}
		return nil
	})
	return found
}
