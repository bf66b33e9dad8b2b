package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tollgate-dev/tollgate/policies/review"
)

func newPoliciesCmd(stdio IO) *cobra.Command {
	var (
		f      policyFlags
		asJSON bool
	)
	c := &cobra.Command{
		Use:   "policies",
		Short: "List the loaded policies with their action, severity and controls",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := f.load(cmd.Context())
			if err != nil {
				return err
			}
			docs, err := f.policyObjects()
			if err != nil {
				return err
			}
			plugins, err := f.plugins(cmd.Context(), docs, e.Config())
			if err != nil {
				return err
			}
			// Effective actions: the config's overrides, each format's own.
			metas := review.NewSet(e, nil, 0, plugins...).Policies()
			if asJSON {
				enc := json.NewEncoder(stdio.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(metas)
			}
			tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tACTION\tSEVERITY\tSCOPE\tCONTROLS\tTITLE")
			for i := range metas {
				m := &metas[i]
				controls := make([]string, len(m.Controls))
				for j, c := range m.Controls {
					controls[j] = c.String()
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, m.Action, m.Severity, m.Scope, strings.Join(controls, ","), m.Title)
			}
			return tw.Flush()
		},
	}
	f.register(c)
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}
