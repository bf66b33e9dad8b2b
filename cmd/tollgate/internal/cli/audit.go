package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/library"
	"github.com/tollgate-dev/tollgate/policies/loader"
	"github.com/tollgate-dev/tollgate/policies/review"
	"github.com/tollgate-dev/tollgate/scanners/audit"
	"github.com/tollgate-dev/tollgate/webhook"
)

type auditFlags struct {
	policyFlags
	kubeconfig   string
	configName   string
	namespace    string
	writeReports bool
	maxResults   int
	format       string
	timeout      time.Duration
}

func newAuditCmd(stdio IO) *cobra.Command {
	var f auditFlags
	c := &cobra.Command{
		Use:   "audit [--kubeconfig FILE] [--write-reports] [--format text|json]",
		Short: "Audit everything already in a cluster against the policies, as the server's background audit does",
		Long: `Audit lists every object of the kinds the policies match, in pages, and judges
each with the same engine, policies, config and exceptions as the admission
server: the built-in library and --policy files, plus the cluster's
TollgatePolicy, TollgateConfig and TollgateException objects. It prints the
findings; --write-reports also writes them as the server does, one
openreports.io Report per namespace (wgpolicyk8s.io where only that is
installed).

Exit status: 0 no enforced finding, 1 at least one, 2 when the cluster cannot be
read.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAudit(cmd.Context(), &f, stdio)
		},
	}
	f.register(c)
	fl := c.Flags()
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)")
	fl.StringVar(&f.configName, "config-name", "tollgate", "name of the TollgateConfig object to use")
	fl.StringVar(&f.namespace, "namespace", "tollgate-system", "Tollgate's own namespace (never audited)")
	fl.BoolVar(&f.writeReports, "write-reports", false, "write the results as PolicyReports, as the server does")
	fl.IntVar(&f.maxResults, "max-results", 1000, "results kept in one report (the summary counts them all)")
	fl.StringVarP(&f.format, "format", "f", "text", "text or json")
	fl.DurationVar(&f.timeout, "timeout", 10*time.Minute, "deadline for the whole audit")
	return c
}

// printSink keeps the scan for printing; it writes nothing to the cluster.
type printSink struct{}

func (printSink) Write(context.Context, *audit.Scan) error { return nil }

func runAudit(ctx context.Context, f *auditFlags, stdio IO) error {
	if f.format != "text" && f.format != "json" {
		return fmt.Errorf("--format %q: want text or json", f.format)
	}
	cfg, mods, data, err := f.serverPolicies()
	if err != nil {
		return err
	}
	restCfg, err := restConfig(f.kubeconfig)
	if err != nil {
		return err
	}
	c, err := client.New(restCfg, client.Options{Scheme: webhook.Scheme()})
	if err != nil {
		return err
	}
	hc, err := rest.HTTPClientFor(restCfg)
	if err != nil {
		return err
	}
	mapper, err := apiutil.NewDynamicRESTMapper(restCfg, hc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	holder := &review.Holder{}
	ld, err := loader.New(loader.Options{
		Client: c, Base: mods, BaseData: data, FileConfig: cfg, ConfigName: f.configName, State: holder,
		PolicyTimeout: f.timeout, Secrets: c, WriteStatus: func() bool { return false },
		Formats: []loader.Format{loader.NewVAPFormat(loader.VAPOptions{Mapper: mapper})},
	})
	if err != nil {
		return err
	}
	if _, err := ld.Reload(ctx); err != nil {
		return fmt.Errorf("loading the cluster's policies: %w", err)
	}
	var sink audit.Sink = printSink{}
	if f.writeReports {
		sink = &audit.ReportWriter{Client: c, Mapper: mapper, MaxResults: f.maxResults, ScannerVersion: Version(), LibraryVersion: library.Version}
	}
	a, err := audit.New(audit.Options{Reader: c, Mapper: mapper, Policies: holder.Load,
		Sink: sink, Skip: []string{f.namespace}})
	if err != nil {
		return err
	}
	scan, err := a.ScanOnce(ctx)
	if err != nil {
		return err
	}
	if f.format == "json" {
		enc := json.NewEncoder(stdio.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(scan); err != nil {
			return err
		}
	} else {
		writeAudit(stdio.Out, scan)
	}
	for _, results := range scan.Results {
		for _, r := range results {
			if r.Finding.Action == policies.ActionEnforce && !r.Finding.Waived() {
				return &exitError{code: ExitFindings}
			}
		}
	}
	return nil
}

func writeAudit(w io.Writer, scan *audit.Scan) {
	kinds := make([]string, 0, len(scan.Scanned))
	objects := 0
	for k, n := range scan.Scanned {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
		objects += n
	}
	sort.Strings(kinds)
	fmt.Fprintf(w, "Audited %d objects in %s (%v)\n\n", objects, scan.Finished.Sub(scan.Started).Round(time.Millisecond), kinds)
	namespaces := make([]string, 0, len(scan.Results))
	for ns := range scan.Results {
		namespaces = append(namespaces, ns)
	}
	sort.Strings(namespaces)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RESULT\tPOLICY\tSEVERITY\tRESOURCE\tMESSAGE")
	for _, ns := range namespaces {
		for _, r := range scan.Results[ns] {
			outcome := "warn"
			switch {
			case r.Finding.Waived():
				outcome = "waived"
			case r.Finding.Action == policies.ActionEnforce:
				outcome = "fail"
			}
			res := r.Resource.Kind + " " + r.Resource.Name
			if ns != "" {
				res = r.Resource.Kind + " " + ns + "/" + r.Resource.Name
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", outcome, r.Finding.Policy, r.Finding.Severity, res, r.Finding.Message)
		}
	}
	_ = tw.Flush()
	for _, e := range scan.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
}
