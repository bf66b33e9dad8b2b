package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/tollgate-dev/tollgate/cmd/tollgate/internal/output"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/vuln"
	"github.com/tollgate-dev/tollgate/scanners/trivy"
)

// scanFlags are the flags of `tollgate scan image` (and, for the scanner,
// of `tollgate check --scan-images`).
type scanFlags struct {
	trivyBin     string
	trivyServer  string
	dbRepository string
	cacheDir     string
	skipDBUpdate bool
	insecure     bool
	timeout      time.Duration
}

func (f *scanFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&f.trivyBin, "trivy", "", "the trivy binary (default: trivy beside tollgate, else in PATH)")
	c.Flags().StringVar(&f.trivyServer, "trivy-server", "", "URL of a trivy server to scan with (trivy server --listen); its database judges, none is downloaded")
	c.Flags().StringVar(&f.dbRepository, "db-repository", trivy.DefaultDBRepository, "OCI repository of Trivy's vulnerability database (a mirror, for air-gapped networks)")
	c.Flags().StringVar(&f.cacheDir, "cache-dir", "", "where the vulnerability database and layer cache are kept (default: the user cache directory, tollgate/trivy)")
	c.Flags().BoolVar(&f.skipDBUpdate, "skip-db-update", false, "use the cached vulnerability database as it is, even when its publisher's next update is due")
	c.Flags().DurationVar(&f.timeout, "scan-timeout", trivy.DefaultTimeout, "longest one image scan, or the database download, may take")
}

// runnerFor is runner for check: its --insecure-registry is shared with
// --verify-images.
func (f *scanFlags) runnerFor(ctx context.Context, insecure bool, errOut io.Writer) (*trivy.Runner, error) {
	f.insecure = insecure
	return f.runner(ctx, false, errOut)
}

// runner builds the Trivy runner of the flags and makes sure a database
// is there (downloading it when missing or due, unless --skip-db-update
// or a server).
func (f *scanFlags) runner(ctx context.Context, sbom bool, errOut io.Writer) (*trivy.Runner, error) {
	bin := f.trivyBin
	if bin == "" {
		bin = "trivy"
		if exe, err := os.Executable(); err == nil {
			if sibling := filepath.Join(filepath.Dir(exe), "trivy"); isExecutable(sibling) {
				bin = sibling
			}
		}
	}
	cache := f.cacheDir
	if cache == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("--cache-dir: %w", err)
		}
		cache = filepath.Join(dir, "tollgate", "trivy")
	}
	r, err := trivy.New(trivy.Options{
		Binary: bin, CacheDir: cache, DBRepository: f.dbRepository, Server: f.trivyServer,
		Insecure: f.insecure, Timeout: f.timeout, SBOM: sbom,
	})
	if err != nil {
		return nil, err
	}
	if f.trivyServer != "" {
		return r, nil
	}
	info, err := r.Database(ctx)
	switch {
	case err != nil && f.skipDBUpdate:
		return nil, fmt.Errorf("--skip-db-update: %w", err)
	case err == nil && (f.skipDBUpdate || time.Now().Before(info.NextUpdate)):
		return r, nil
	}
	fmt.Fprintf(errOut, "tollgate: downloading the vulnerability database from %s\n", f.dbRepository)
	if _, uerr := r.UpdateDB(ctx); uerr != nil {
		if err != nil {
			return nil, uerr
		}
		// A database is there, only due for an update: scan with it, and
		// say so.
		fmt.Fprintf(errOut, "tollgate: %v; scanning with the database built %s\n", uerr, info.UpdatedAt.Format(time.RFC3339))
	}
	return r, nil
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

type scanImageFlags struct {
	scanFlags
	format        string
	output        string
	severity      string
	ignoreUnfixed bool
}

// The formats of `tollgate scan image`.
const (
	scanTable     = "table"
	scanJSON      = "json"
	scanSARIF     = "sarif"
	scanCycloneDX = "cyclonedx"
)

func newScanCmd(stdio IO) *cobra.Command {
	scan := &cobra.Command{
		Use:   "scan",
		Short: "Scan container images for vulnerabilities (with Trivy)",
	}
	var f scanImageFlags
	image := &cobra.Command{
		Use:   "image [flags] REF",
		Short: "Scan one container image for vulnerabilities",
		Long: `Scan image runs Trivy on one image (by tag or digest, straight from its
registry, with the credentials of your docker config) for vulnerabilities of
its OS packages (Debian, Alpine, ...) and language packages (Go binaries,
npm, ...), and prints them most severe first.

The vulnerability database is downloaded from --db-repository into
--cache-dir the first time and again once its publisher's next update is due;
with --trivy-server, the server's database is used instead.

Exit status: 0 no vulnerability at or above --severity, 1 at least one,
2 usage or scan error (the message says what failed).`,
		Example: `  tollgate scan image registry.example.com/team/web:1.4
  tollgate scan image --severity HIGH --ignore-unfixed --format sarif --output web.sarif registry.example.com/team/web@sha256:...
  tollgate scan image --trivy-server http://trivy.tollgate-system:4954 registry.example.com/team/web:1.4
  tollgate scan image --format cyclonedx --output web.cdx.json registry.example.com/team/web:1.4`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("scan image needs exactly one image reference, got %d", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runScanImage(cmd.Context(), stdio, &f, args[0])
		},
	}
	f.register(image)
	image.Flags().BoolVar(&f.insecure, "insecure-registry", false, "allow plain-HTTP registries and unverified TLS")
	image.Flags().StringVarP(&f.format, "format", "f", scanTable, "output format: table, json, sarif or cyclonedx (the image's SBOM)")
	image.Flags().StringVarP(&f.output, "output", "o", "", "write the report to this file instead of standard output")
	image.Flags().StringVar(&f.severity, "severity", vuln.Critical, "fail (exit 1) on a vulnerability of this severity or above: CRITICAL, HIGH, MEDIUM, LOW or UNKNOWN")
	image.Flags().BoolVar(&f.ignoreUnfixed, "ignore-unfixed", false, "leave out vulnerabilities no fixed version exists for")
	scan.AddCommand(image)
	return scan
}

func runScanImage(ctx context.Context, stdio IO, f *scanImageFlags, ref string) error {
	switch f.format {
	case scanTable, scanJSON, scanSARIF, scanCycloneDX:
	default:
		return fmt.Errorf("--format %q: want table, json, sarif or cyclonedx", f.format)
	}
	threshold := strings.ToUpper(f.severity)
	if vuln.SeverityRank(threshold) < 0 {
		return fmt.Errorf("--severity %q: want one of %s", f.severity, strings.Join(vuln.Severities, ", "))
	}
	if _, err := name.ParseReference(ref); err != nil {
		return fmt.Errorf("image reference %q: %w", ref, err)
	}
	r, err := f.runner(ctx, f.format == scanCycloneDX, stdio.Err)
	if err != nil {
		return err
	}
	rep, err := r.Scan(ctx, ref, authn.DefaultKeychain)
	if err != nil {
		return err
	}
	if f.ignoreUnfixed {
		kept := rep.Vulnerabilities[:0]
		for _, v := range rep.Vulnerabilities {
			if v.Fixable() {
				kept = append(kept, v)
			}
		}
		rep.Vulnerabilities = kept
	}
	failing := 0
	for i := range rep.Vulnerabilities {
		if vuln.SeverityRank(rep.Vulnerabilities[i].Severity) >= vuln.SeverityRank(threshold) {
			failing++
		}
	}

	w := stdio.Out
	var file *os.File
	if f.output != "" {
		if file, err = os.Create(f.output); err != nil {
			return fmt.Errorf("--output: %w", err)
		}
		w = file
	}
	switch f.format {
	case scanTable:
		err = writeScanTable(w, rep, threshold, failing)
	case scanJSON:
		err = writeScanJSON(w, rep, threshold, failing)
	case scanSARIF:
		err = output.Write(w, output.FormatSARIF, scanSARIFReport(rep, threshold))
	case scanCycloneDX:
		_, err = w.Write(rep.SBOM)
	}
	if file != nil {
		if cerr := file.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	if f.output != "" {
		fmt.Fprintf(stdio.Err, "%s: %s\n", ref, scanSummary(rep, threshold, failing))
	}
	if failing > 0 {
		return &exitError{code: ExitFindings}
	}
	return nil
}

// scanSummary is the closing line: counts by severity and the verdict.
func scanSummary(rep *vuln.Report, threshold string, failing int) string {
	all, fixable := rep.Counts()
	var parts []string
	for _, s := range vuln.Severities {
		if all[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s (%d fixable)", all[s], s, fixable[s]))
		}
	}
	counts := "no vulnerabilities"
	if len(parts) > 0 {
		counts = strings.Join(parts, ", ")
	}
	verdict := "PASS"
	if failing > 0 {
		verdict = fmt.Sprintf("FAIL: %d at or above %s", failing, threshold)
	}
	return fmt.Sprintf("%d packages, %s — %s", rep.Packages, counts, verdict)
}

func writeScanTable(w io.Writer, rep *vuln.Report, threshold string, failing int) error {
	if strings.HasSuffix(rep.Image, "@"+rep.Digest) {
		fmt.Fprintln(w, rep.Image)
	} else {
		fmt.Fprintf(w, "%s (%s)\n", rep.Image, rep.Digest)
	}
	if rep.OS != "" {
		fmt.Fprintf(w, "OS: %s\n", rep.OS)
	}
	if !rep.DB.UpdatedAt.IsZero() {
		fmt.Fprintf(w, "Vulnerability database: built %s (%s)\n", rep.DB.UpdatedAt.Format(time.RFC3339), rep.DB.Repository)
	}
	if len(rep.Vulnerabilities) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEVERITY\tID\tPACKAGE\tINSTALLED\tFIXED\tWHERE")
		for _, v := range rep.Vulnerabilities {
			fixed := v.Fixed
			if fixed == "" {
				fixed = "(no fix)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", v.Severity, v.ID, v.Package, v.Installed, fixed, printableTarget(v))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintln(w)
	_, err := fmt.Fprintln(w, scanSummary(rep, threshold, failing))
	return err
}

// printableTarget is where a package was found, for the table: the file
// of a language package, the ecosystem of an OS one.
func printableTarget(v vuln.Vulnerability) string {
	if v.Class == "os-pkgs" {
		return v.Type
	}
	if v.Target == "" {
		return v.Type
	}
	return v.Target + " (" + v.Type + ")"
}

// scanJSONReport is the JSON output: the report, and the verdict.
type scanJSONReport struct {
	*vuln.Report
	Threshold string         `json:"threshold"`
	Counts    map[string]int `json:"counts"`
	Fixable   map[string]int `json:"fixable"`
	Failing   int            `json:"failing"`
	Passed    bool           `json:"passed"`
}

func writeScanJSON(w io.Writer, rep *vuln.Report, threshold string, failing int) error {
	all, fixable := rep.Counts()
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(scanJSONReport{Report: rep, Threshold: threshold, Counts: all, Fixable: fixable, Failing: failing, Passed: failing == 0})
}

// scanSARIFReport maps the vulnerabilities to findings for the SARIF
// writer the check command uses: one rule per advisory, the image as the
// object, enforce at or above the threshold and warn below.
func scanSARIFReport(rep *vuln.Report, threshold string) *output.Report {
	out := &output.Report{Tool: "tollgate", Version: Version(), Objects: 1}
	repo, object := rep.Image, rep.Image
	if !strings.HasSuffix(object, "@"+rep.Digest) {
		object += "@" + rep.Digest
	}
	if ref, err := name.ParseReference(rep.Image); err == nil {
		repo = ref.Context().RepositoryStr()
	}
	for _, v := range rep.Vulnerabilities {
		if v.URL != "" {
			if out.HelpURIs == nil {
				out.HelpURIs = map[string]string{}
			}
			out.HelpURIs[v.ID] = v.URL
		}
		action := policies.ActionWarn
		if vuln.SeverityRank(v.Severity) >= vuln.SeverityRank(threshold) {
			action = policies.ActionEnforce
		}
		msg := fmt.Sprintf("%s %s in %s", v.Package, v.Installed, printableTarget(v))
		if v.Fixed != "" {
			msg += ", fixed in " + v.Fixed
		} else {
			msg += ", no fix yet"
		}
		if v.Title != "" {
			msg += ": " + v.Title
		}
		remediation := "No fixed version exists yet."
		if v.Fixed != "" {
			remediation = "Upgrade " + v.Package + " to " + v.Fixed + " or later and rebuild the image."
		}
		out.Results = append(out.Results, output.Result{
			File: repo, Line: 1, Kind: "Image", Name: object,
			Finding: policies.Finding{
				Policy: v.ID, Title: v.ID + ": " + v.Title, Message: msg, Severity: policySeverity(v.Severity),
				Action: action, Path: v.Package + "@" + v.Installed, Remediation: remediation,
			},
		})
	}
	return out
}

// policySeverity maps a vulnerability severity to a policy severity.
func policySeverity(s string) policies.Severity {
	switch s {
	case vuln.Critical:
		return policies.SeverityCritical
	case vuln.High:
		return policies.SeverityHigh
	case vuln.Medium:
		return policies.SeverityMedium
	case vuln.Low:
		return policies.SeverityLow
	}
	return policies.SeverityInfo
}
