package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/tollgate-dev/tollgate/cmd/tollgate/internal/output"
	"github.com/tollgate-dev/tollgate/finops"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/manifest"
	"github.com/tollgate-dev/tollgate/policies/review"
)

// maxPricesBytes bounds the prices file: a catalogue is a few kilobytes.
const maxPricesBytes = 1 << 20

// newCostCmd is the parent of the cost commands. It does nothing itself.
func newCostCmd(stdio IO) *cobra.Command {
	var f costLiveFlags
	c := &cobra.Command{
		Use:   "cost [--kubeconfig FILE] [--prometheus URL] [--by namespace|team|cost-center|label:KEY]",
		Short: "What workloads cost, priced like OpenCost: a live cluster's spend and budgets, or manifests' (estimate)",
		Long:  costLiveHelp,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCostLive(cmd.Context(), &f, stdio)
		},
	}
	f.register(c)
	c.AddCommand(newCostEstimateCmd(stdio))
	return c
}

type costEstimateFlags struct {
	prices   string
	format   string
	nodes    int
	config   string
	noMutate bool
}

func newCostEstimateCmd(stdio IO) *cobra.Command {
	var f costEstimateFlags
	c := &cobra.Command{
		Use:   "estimate [flags] PATH...",
		Short: "The monthly cost of the workloads in manifests (for pull requests)",
		Long: `Estimate prices the workloads in manifests for a month of 730 hours: files,
directories (recursed for .yaml, .yml and .json), or - for standard input, as
tollgate check reads them.

A pod costs its requests (what the scheduler reserves: containers, sidecars,
init containers, pod-level resources; a limit stands in for a missing
request) at OpenCost's default prices, or those of --prices. Deployments,
ReplicaSets, StatefulSets and ReplicationControllers run spec.replicas pods
(1 when unset); a DaemonSet runs one pod on each of --nodes nodes; a Job runs
spec.parallelism pods (at most spec.completions) and a CronJob one such Job,
charged as if running all month, since their run time is unknown; a
PersistentVolumeClaim, a StatefulSet's volumeClaimTemplates and generic
ephemeral volumes cost their requested storage; the kinds --config's
governedKinds prices (a claim for a managed database) cost their price lines,
at the instance (per hour) and storage (per GB-month) classes of the
catalogue's cloud section. A nodeSelector that names a
spot label or an override's labels is priced as those nodes. A container
without a cpu or memory request is not charged for it, and a note says so.

cpu, memory, gpu and storage are totals over all replicas.

Like tollgate check, it prices what the cluster would store: the requests and
limits admission defaults (from --config's mutations.resources, or the
built-in defaults) are charged where a container sets none; --no-mutate
prices the manifests exactly as written.

Exit status: 0 when every workload was priced, 2 for a usage or input error
(malformed YAML, a quantity that does not parse, negative replicas); the
message names the file and line.`,
		Example: `  tollgate cost estimate deploy/
  helm template charts/web | tollgate cost estimate --prices prices.yaml -
  tollgate cost estimate --format json --nodes 12 overlays/prod/`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return fmt.Errorf("cost estimate needs at least one PATH (a file, a directory, or - for stdin)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCostEstimate(cmd.Context(), stdio, &f, args)
		},
	}
	c.Flags().StringVar(&f.prices, "prices", "", "price catalogue (OpenCost custom pricing, YAML or JSON); default: OpenCost's default prices")
	c.Flags().StringVarP(&f.format, "format", "f", "table", "output format: table or json")
	c.Flags().IntVar(&f.nodes, "nodes", 1, "nodes a DaemonSet runs on, one pod each")
	c.Flags().StringVar(&f.config, "config", "", "Tollgate config file whose mutations admission makes and whose governedKinds are priced (default: the built-in defaults)")
	c.Flags().BoolVar(&f.noMutate, "no-mutate", false, "price the manifests as written, without the requests and limits admission would default")
	return c
}

func runCostEstimate(ctx context.Context, stdio IO, f *costEstimateFlags, args []string) error {
	if f.format != "table" && f.format != "json" {
		return fmt.Errorf("--format %q: want table or json", f.format)
	}
	if f.nodes < 1 {
		return fmt.Errorf("--nodes must be at least 1, got %d", f.nodes)
	}
	prices, err := loadPrices(f.prices)
	if err != nil {
		return err
	}
	cfg := policies.DefaultConfig()
	if f.config != "" {
		if cfg, err = policies.LoadConfig(f.config); err != nil {
			return err
		}
	}
	est, err := finops.NewEstimator(finops.EstimateOptions{Prices: prices, Nodes: f.nodes, GovernedKinds: cfg.GovernedKinds})
	if err != nil {
		return err
	}
	docs, err := manifest.Load(args, stdio.In, manifest.Options{})
	if err != nil {
		printInputErrors(stdio.Err, err)
		return &exitError{ExitUsage}
	}
	if !f.noMutate {
		pf := policyFlags{config: f.config, timeout: policies.DefaultPolicyTimeout}
		engine, err := pf.load(ctx)
		if err != nil {
			return err
		}
		docs = admitted(ctx, engine, docs, "")
	}
	report, errs := estimateDocs(est, docs, "")
	if len(errs) > 0 {
		printInputErrors(stdio.Err, errors.Join(errs...))
		return &exitError{ExitUsage}
	}
	if len(docs) == 0 {
		fmt.Fprintf(stdio.Err, "tollgate: no Kubernetes objects found in %v\n", args)
	}
	if f.format == "json" {
		return writeCostJSON(stdio.Out, report)
	}
	return writeCostTable(stdio.Out, report)
}

// loadPrices reads the --prices file; no file means OpenCost's defaults.
func loadPrices(path string) (*finops.Prices, error) {
	if path == "" {
		return finops.DefaultPrices(), nil
	}
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--prices: %w", err)
	}
	defer file.Close()
	data, err := io.ReadAll(io.LimitReader(file, maxPricesBytes+1))
	if err != nil {
		return nil, fmt.Errorf("--prices: reading %s: %w", path, err)
	}
	if len(data) > maxPricesBytes {
		return nil, fmt.Errorf("--prices: %s is larger than 1 MiB; a price catalogue is a few kilobytes", path)
	}
	p, err := finops.ParsePrices(data)
	if err != nil {
		return nil, fmt.Errorf("--prices %s: %w", path, err)
	}
	return p, nil
}

// printInputErrors writes each of a joined list of errors on its own line,
// "file:line: message" for input errors.
func printInputErrors(w io.Writer, err error) {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		fmt.Fprintf(w, "tollgate: %s\n", e)
	}
}

// costRow is one priced object and where it was read.
type costRow struct {
	File string `json:"file"`
	Line int    `json:"line"`
	finops.WorkloadEstimate
}

// costReport is the output of cost estimate, and of check --cost.
type costReport struct {
	Currency      string `json:"currency"`
	HoursPerMonth int    `json:"hoursPerMonth"`
	// Workloads are in the order they were read.
	Workloads []costRow `json:"workloads"`
	// Total is the monthly cost of them all.
	Total finops.Spend `json:"total"`
	// unpriced counts the objects that could not be priced, which check
	// --cost reports as problems and leaves out of the total.
	unpriced int
}

// estimateDocs prices every workload of docs. Objects without a namespace
// are shown in namespace (as kubectl apply -n would place them). Objects
// that cannot be priced are errors naming their file and line.
func estimateDocs(est *finops.Estimator, docs []manifest.Document, namespace string) (*costReport, []error) {
	r := &costReport{Currency: est.Currency(), HoursPerMonth: finops.HoursPerMonth, Workloads: []costRow{}}
	var errs []error
	for i := range docs {
		d := &docs[i]
		e, ok, err := est.Estimate(d.Object)
		if err != nil {
			line := d.Line
			var fe *finops.FieldError
			if errors.As(err, &fe) {
				line = d.LineOf(fe.Path)
			}
			r.unpriced++
			errs = append(errs, &manifest.Error{File: d.File, Line: line,
				Msg: fmt.Sprintf("%s %s: cannot estimate its cost: %v", d.Kind(), objectName(d.Namespace(), d.Name()), err)})
			continue
		}
		if !ok {
			continue
		}
		if e.Namespace == "" {
			e.Namespace = namespace
		}
		r.Workloads = append(r.Workloads, costRow{File: d.File, Line: d.Line, WorkloadEstimate: e})
		r.Total = r.Total.Add(e.Monthly)
	}
	return r, errs
}

func objectName(namespace, name string) string {
	if name == "" {
		name = "(unnamed)"
	}
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

// writeCostTable renders the report for a terminal: one row per workload,
// the total, then the notes.
func writeCostTable(w io.Writer, r *costReport) error {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "KIND\tNAME\tREPLICAS\tCPU\tMEMORY\tGPU\tSTORAGE\tMONTHLY (%s)\n", r.Currency)
	for _, row := range r.Workloads {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n",
			clean(row.Kind), clean(objectName(row.Namespace, row.Name)), row.Replicas,
			formatAmount(row.CPU), formatBytes(row.Memory), formatAmount(row.GPU), formatBytes(row.Storage),
			finops.Amount(row.Monthly.Total))
	}
	fmt.Fprintf(tw, "TOTAL\t\t\t\t\t\t\t%s\n", finops.Amount(r.Total.Total))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(&b, "\nA month is %d hours; cpu, memory, gpu and storage are totals over replicas.\n", r.HoursPerMonth)
	switch {
	case r.unpriced == 1:
		b.WriteString("1 object could not be priced and is left out of the total: see the problems.\n")
	case r.unpriced > 1:
		fmt.Fprintf(&b, "%d objects could not be priced and are left out of the total: see the problems.\n", r.unpriced)
	}
	first := true
	for _, row := range r.Workloads {
		for _, n := range row.Notes {
			if first {
				b.WriteString("Notes:\n")
				first = false
			}
			fmt.Fprintf(&b, "  %s %s: %s\n", clean(row.Kind), clean(objectName(row.Namespace, row.Name)), clean(n))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeCostJSON renders the report for programs. Money is rounded to a
// millionth of the currency, so that the output does not change with the
// last bits of floating-point arithmetic.
func writeCostJSON(w io.Writer, r *costReport) error {
	out := *r
	out.Workloads = make([]costRow, len(r.Workloads))
	for i, row := range r.Workloads {
		row.Monthly = roundSpend(row.Monthly)
		if row.Notes == nil {
			row.Notes = []string{}
		}
		out.Workloads[i] = row
	}
	out.Total = roundSpend(r.Total)
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(data, '\n'))
	return err
}

func roundSpend(s finops.Spend) finops.Spend {
	round := func(v float64) float64 { return math.Round(v*1e6) / 1e6 }
	return finops.Spend{CPU: round(s.CPU), RAM: round(s.RAM), GPU: round(s.GPU), Storage: round(s.Storage), Cloud: round(s.Cloud), Total: round(s.Total)}
}

// formatAmount writes cores or GPUs with up to three decimals.
func formatAmount(v float64) string {
	return strconv.FormatFloat(math.Round(v*1000)/1000, 'f', -1, 64)
}

// formatBytes writes a size with the binary suffix Kubernetes uses, with up
// to two decimals: 512Mi, 1.5Gi.
func formatBytes(v float64) string {
	units := []string{"Ki", "Mi", "Gi", "Ti", "Pi", "Ei"}
	unit, suffix := 1.0, ""
	for i, u := range units {
		if f := math.Pow(1024, float64(i+1)); v >= f {
			unit, suffix = f, u
		}
	}
	return strconv.FormatFloat(math.Round(v/unit*100)/100, 'f', -1, 64) + suffix
}

// clean escapes characters that would let a manifest's names and values
// move the cursor or recolour the terminal.
func clean(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) {
		return s
	}
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}

// checkCost prices the checked documents for tollgate check --cost: objects
// that cannot be priced become problems of the report, so the check fails
// as for any input error.
func checkCost(docs []manifest.Document, namespace string, governed []policies.GovernedKind, report *output.Report) *costReport {
	est, err := finops.NewEstimator(finops.EstimateOptions{GovernedKinds: governed})
	if err != nil {
		report.Problems = append(report.Problems, output.Problem{Message: err.Error()})
		return nil
	}
	r, errs := estimateDocs(est, docs, namespace)
	addProblems(report, errors.Join(errs...))
	return r
}

// admitted returns the documents as the cluster would store them: each
// mutated as admission mutates it, with the namespace context of the
// Namespaces among them. A document defaulting cannot handle stays as
// written.
func admitted(ctx context.Context, engine *policies.Engine, docs []manifest.Document, namespace string) []manifest.Document {
	namespaces := map[string]map[string]any{}
	for _, d := range docs {
		if d.Kind() == "Namespace" && d.APIVersion() == "v1" {
			namespaces[d.Name()] = d.Object
		}
	}
	set := review.NewSet(engine, nil, 0)
	core := review.New(review.Options{})
	out := make([]manifest.Document, len(docs))
	for i, d := range docs {
		out[i] = d
		ns := d.Namespace()
		if ns == "" && d.Kind() != "Namespace" {
			ns = namespace
		}
		in := policies.ObjectInput(policies.SourceCheck, d.Object, namespaces[ns])
		m, _, err := core.Mutate(ctx, set, in)
		if err != nil {
			continue
		}
		if mutated, err := review.Apply(d.Object, m); err == nil {
			out[i].Object = mutated
		}
	}
	return out
}
