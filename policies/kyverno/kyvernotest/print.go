package kyvernotest

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// printTable prints a test's rows as `kyverno test` does: ID, policy,
// rule, resource, result, reason, and with verbose the rule's message (as
// its --detailed-results does).
func printTable(w io.Writer, rows []row, verbose bool) {
	if len(rows) == 0 {
		fmt.Fprintln(w, "    no results checked")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := "    ID\tPOLICY\tRULE\tRESOURCE\tRESULT\tREASON"
	if verbose {
		header += "\tMESSAGE"
	}
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintf(tw, "    %d\t%s\t%s\t%s\t%s\t%s", r.id, cell(r.policy), cell(r.rule), cell(r.resource), r.result, cell(r.reason))
		if verbose {
			fmt.Fprintf(tw, "\t%s", cell(r.message))
		}
		fmt.Fprintln(tw)
	}
	_ = tw.Flush()
}

// cell keeps a table cell on one line.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.ReplaceAll(s, "\n", " ")
}
