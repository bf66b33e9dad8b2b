package cli

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/finops"
	"github.com/tollgate-dev/tollgate/finops/budget"
	"github.com/tollgate-dev/tollgate/finops/usage"
	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/webhook"
)

type costLiveFlags struct {
	kubeconfig, prometheus, prices string
	by, format                     string
	timeout                        time.Duration
}

// costLiveHelp is the cost command's own help: spend in a live cluster.
const costLiveHelp = `Cost tallies what a live cluster spends now: every running pod at the larger
of its requests and its measured usage (with --prometheus; requests only
without), claimed volumes by size, at OpenCost's default prices or those of
--prices. It prints the spend per hour and per month (730 hours) grouped by
namespace, team, cost-center or any label (groups that run nothing are left
out of the table and CSV, kept in JSON), and every Budget with its spend to
date, forecast and amount as the scanner last wrote them.

Exit status: 0, or 2 when the cluster or Prometheus cannot be read.`

func (f *costLiveFlags) register(c *cobra.Command) {
	fl := c.Flags()
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)")
	fl.StringVar(&f.prometheus, "prometheus", "", "Prometheus URL for usage and OpenCost node prices")
	fl.StringVar(&f.prices, "prices", "", "price catalogue file (OpenCost custom-pricing keys)")
	fl.StringVar(&f.by, "by", "namespace", "group by namespace, team, cost-center or label:KEY")
	fl.StringVarP(&f.format, "format", "f", "table", "table, json or csv")
	fl.DurationVar(&f.timeout, "timeout", time.Minute, "deadline for reading the cluster and Prometheus")
}

func runCostLive(ctx context.Context, f *costLiveFlags, stdio IO) error {
	switch f.format {
	case "table", "json", "csv":
	default:
		return fmt.Errorf("--format %q: want table, json or csv", f.format)
	}
	var labelKey string
	switch {
	case f.by == "namespace", f.by == "team", f.by == "cost-center":
	case strings.HasPrefix(f.by, "label:") && len(f.by) > len("label:"):
		labelKey = strings.TrimPrefix(f.by, "label:")
	default:
		return fmt.Errorf("--by %q: want namespace, team, cost-center or label:KEY", f.by)
	}
	prices := finops.DefaultPrices()
	if f.prices != "" {
		data, err := readLimitedFile(f.prices, 1<<20)
		if err != nil {
			return fmt.Errorf("--prices: %w", err)
		}
		if prices, err = finops.ParsePrices(data); err != nil {
			return fmt.Errorf("--prices %s: %w", f.prices, err)
		}
	}
	opts := finops.ModelOptions{Prices: prices, TopWorkloads: 10}
	if labelKey != "" {
		opts.Labels = []string{labelKey}
	}
	model, err := finops.NewModel(opts)
	if err != nil {
		return err
	}
	rest, err := restConfig(f.kubeconfig)
	if err != nil {
		return err
	}
	c, err := client.New(rest, client.Options{Scheme: webhook.Scheme()})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	cl, err := budget.ListCluster(ctx, c)
	if err != nil {
		return fmt.Errorf("reading the cluster: %w", err)
	}
	stale := ""
	if f.prometheus != "" {
		src, err := usage.New(f.prometheus, usage.Options{})
		if err != nil {
			return fmt.Errorf("--prometheus: %w", err)
		}
		snap, err := src.Snapshot(ctx, time.Now())
		if err != nil {
			stale = "usage not read (" + err.Error() + "): requests only"
		} else {
			budget.WithUsage(&cl, snap)
		}
	}
	tally := model.Tally(cl)
	var budgets v1alpha1.BudgetList
	if err := c.List(ctx, &budgets); err != nil {
		// A cluster without the CRD simply has no budgets.
		budgets.Items = nil
	}
	groups := tally.Namespaces
	switch {
	case f.by == "team":
		groups = tally.Teams
	case f.by == "cost-center":
		groups = tally.CostCenters
	case labelKey != "":
		groups = tally.Labels[labelKey]
	}
	switch f.format {
	case "json":
		out := struct {
			By       string            `json:"by"`
			Currency string            `json:"currency"`
			Stale    string            `json:"stale,omitempty"`
			Total    finops.Spend      `json:"monthlyTotal"`
			Groups   []finops.Group    `json:"groups"`
			Top      []finops.Workload `json:"top"`
			Budgets  []budgetRow       `json:"budgets"`
		}{f.by, tally.Currency, stale, tally.Monthly, groups, tally.Top, budgetRows(budgets.Items)}
		enc := json.NewEncoder(stdio.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	case "csv":
		w := csv.NewWriter(stdio.Out)
		_ = w.Write([]string{f.by, "pods", "hourly", "monthly", "monthly_cpu", "monthly_ram", "monthly_gpu", "monthly_storage", "currency"})
		for _, g := range groups {
			if g.Pods == 0 && g.Volumes == 0 {
				continue
			}
			_ = w.Write([]string{g.Name, strconv.Itoa(g.Pods), num(g.Hourly.Total, 4), num(g.Monthly.Total, 2),
				num(g.Monthly.CPU, 2), num(g.Monthly.RAM, 2), num(g.Monthly.GPU, 2), num(g.Monthly.Storage, 2), tally.Currency})
		}
		w.Flush()
		return w.Error()
	}
	writeSpendTable(stdio.Out, f.by, tally, groups, budgets.Items, stale)
	return nil
}

// budgetRow is a Budget as the scanner last wrote it.
type budgetRow struct {
	Namespace   string `json:"namespace"`
	Name        string `json:"name"`
	Scope       string `json:"scope"`
	Period      string `json:"period"`
	Spend       string `json:"spend"`
	Forecast    string `json:"forecast"`
	Amount      string `json:"amount"`
	Currency    string `json:"currency"`
	Utilization string `json:"utilization"`
	Alerted     string `json:"alerted"`
	Stale       bool   `json:"stale,omitempty"`
}

func budgetRows(items []v1alpha1.Budget) []budgetRow {
	out := make([]budgetRow, 0, len(items))
	for _, b := range items {
		out = append(out, budgetRow{b.Namespace, b.Name, b.Status.Scope, orDash(b.Spec.Period), orDash(b.Status.Spend), orDash(b.Status.Forecast),
			b.Spec.Amount, orDash(b.Spec.Currency), orDash(b.Status.Utilization), b.Status.AlertedSummary, b.Status.Stale})
	}
	return out
}

func writeSpendTable(w io.Writer, by string, t *finops.Tally, groups []finops.Group, budgets []v1alpha1.Budget, stale string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\tPODS\tPER HOUR\tPER MONTH\tCPU\tRAM\tGPU\tSTORAGE\t\n", strings.ToUpper(by))
	for _, g := range groups {
		if g.Pods == 0 && g.Volumes == 0 {
			continue // a namespace that runs nothing
		}
		name := g.Name
		if name == "" {
			name = "(none)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", name, g.Pods, num(g.Hourly.Total, 4), num(g.Monthly.Total, 2),
			num(g.Monthly.CPU, 2), num(g.Monthly.RAM, 2), num(g.Monthly.GPU, 2), num(g.Monthly.Storage, 2))
	}
	fmt.Fprintf(tw, "TOTAL (%s)\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", t.Currency, t.Charged, num(t.Hourly.Total, 4), num(t.Monthly.Total, 2),
		num(t.Monthly.CPU, 2), num(t.Monthly.RAM, 2), num(t.Monthly.GPU, 2), num(t.Monthly.Storage, 2))
	_ = tw.Flush()
	if stale != "" {
		fmt.Fprintf(w, "note: %s\n", stale)
	}
	if len(budgets) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BUDGET\tSCOPE\tPERIOD\tSPEND\tFORECAST\tBUDGET\tUSED\tALERTED")
	for _, r := range budgetRows(budgets) {
		fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%s\t%s\t%s %s\t%s\t%s\n", r.Namespace, r.Name, orDash(r.Scope), r.Period, r.Spend, r.Forecast, r.Amount, r.Currency, r.Utilization, r.Alerted)
	}
	_ = tw.Flush()
}

func num(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
