package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

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
		Short: "Run policy unit tests (_test.rego) and fixture suites",
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
                    cases: [{fixture: denied/x.yaml,
                             expect: [{policy, path, message}]}]
  allowed/*.yaml    must produce no finding of the suite's policies
  denied/*.yaml     must produce at least one, exactly the expected ones when
                    a case names the file (message is a substring)

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
			// Paths are loaded by the runner itself, with their tests; the
			// built-in library and --policy are the extra modules.
			sum, err := policytest.Run(cmd.Context(), policytest.Options{
				Paths:   args,
				Modules: mods,
				Data:    data,
				Run:     run,
				Verbose: verbose,
			}, stdio.Out)
			if err != nil {
				return err
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
