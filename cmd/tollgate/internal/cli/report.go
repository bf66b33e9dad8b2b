package cli

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/compliance"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/policies/library"
	"github.com/tollgate-dev/tollgate/policies/manifest"
	"github.com/tollgate-dev/tollgate/policies/review"
)

// Limits on what the report reads whole: keys are a few hundred bytes.
const maxKeyBytes = 64 << 10

type reportFlags struct {
	policyFlags
	kubeconfig    string
	clusterName   string
	frameworks    []string
	format        string
	output        string
	since         string
	decisionLogs  []string
	decisionKey   string
	frameworksDir string
	signKey       string
	from          []string
	namespace     string
	timeout       time.Duration
	clusters      []string
	allowMissing  bool
	// clusterSecrets is --clusters-from-secrets: the namespace of the
	// central cluster (--kubeconfig) holding the clusters' kubeconfigs.
	clusterSecrets string
}

const reportHelp = `Report writes a compliance report for auditors: per framework (CIS Kubernetes
Benchmark v1.10 section 5, NSA/CISA Kubernetes Hardening Guide v1.2, Pod
Security Standards, SOC 2 CC6-CC8) each control's verdict — passed, passed
with exceptions, failed, or manual — with the failing resources, the message
and remediation of each, the exceptions in force (reason, ticket, approver,
expiry), the admission denials and warnings of the period, and other engines'
policy reports by source.

On a cluster (the default) it reads the policy reports there: openreports.io
Reports and ClusterReports written by Tollgate's background audit and by other
engines, and wgpolicyk8s.io PolicyReports where that API is served; the
TollgateExceptions in force (honoured: Ready True, unexpired); and the cluster's
identity (API server, Kubernetes version, kube-system UID). Denials come from
the decision logs of tollgate serve given with --decision-log.

With --cluster NAME=KUBECONFIG, repeated, it writes one report over several
clusters: each is read as above, every result names its cluster, a control
fails if it fails in any cluster, and a per-cluster breakdown gives each
cluster's identity, the policy sets its Reports name (tollgate.dev/policy-set)
and per framework its verdict counts and score. A cluster that cannot be read
stops the report (no report from part of the clusters) unless --allow-missing,
which names it in the report instead. With --clusters-from-secrets NAMESPACE
the clusters are read from the central cluster (--kubeconfig): each Secret
there labelled tollgate.dev/cluster=NAME holds a cluster's kubeconfig under
the key kubeconfig, as a report run in the central cluster (a CronJob) finds
them.

With --from it evaluates manifests instead, as tollgate check does (same
--policy and --config flags); TollgateExceptions among them count when the
config designates their namespace (exceptions.namespaces).

Formats: html (one self-contained, printable file), markdown, json (the whole
model), csv (one row per control and failing resource). The format follows
the --output extension unless --format is given; standard output gets
markdown.

--sign-key signs the report as cosign sign-blob does (password from
COSIGN_PASSWORD) and writes OUTPUT.sig; tollgate report verify checks it, as
does cosign verify-blob --key cosign.pub --signature OUTPUT.sig
--insecure-ignore-tlog=true OUTPUT.

Exit status: 0 report written, 2 usage or input error.`

func newReportCmd(stdio IO) *cobra.Command {
	var f reportFlags
	c := &cobra.Command{
		Use:   "report [--framework cis|nsa|pss|soc2|all] [--format html|markdown|json|csv] [--output FILE] [--from PATH...]",
		Short: "Write a compliance report for auditors (CIS, NSA/CISA, Pod Security Standards, SOC 2), optionally signed",
		Long:  reportHelp,
		Example: `  tollgate report --output report.html --decision-log /var/log/tollgate/decisions.jsonl --since 30d
  tollgate report --framework cis,pss --format csv --output controls.csv
  tollgate report --from deploy/ --output report.md
  tollgate report --cluster eu=eu.kubeconfig --cluster us=us.kubeconfig --output fleet.html
  COSIGN_PASSWORD=... tollgate report --output report.html --sign-key cosign.key
  tollgate report verify --key cosign.pub report.html`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 && len(f.from) == 0 {
				return fmt.Errorf("report takes no arguments (%s); to report on manifests give --from PATH", strings.Join(args, " "))
			}
			// --from a b c: the shell hands b and c over as arguments.
			f.from = append(f.from, args...)
			return runReport(cmd.Context(), &f, stdio)
		},
	}
	f.register(c)
	fl := c.Flags()
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)")
	fl.StringVar(&f.clusterName, "cluster-name", "", "name of the cluster in the report (default: the kubeconfig's cluster name)")
	fl.StringSliceVar(&f.frameworks, "framework", []string{"all"}, "frameworks to report on: cis, nsa, pss, soc2 (comma-separated or repeated), or all")
	fl.StringVarP(&f.format, "format", "f", "", "html, markdown, json or csv (default: from the --output extension, else markdown)")
	fl.StringVarP(&f.output, "output", "o", "", "write the report to this file (default: standard output)")
	fl.StringVar(&f.since, "since", "30d", "period of the admission denials: a duration such as 720h or 30d, ending now")
	fl.StringArrayVar(&f.decisionLogs, "decision-log", nil, "decision log of tollgate serve (JSON lines) to count denials and warnings from; repeatable")
	fl.StringVar(&f.decisionKey, "decision-log-key-file", "", "key of a decision log chain keyed by tollgate serve --decision-log-key-file, to verify its hashes")
	fl.StringVar(&f.frameworksDir, "frameworks-dir", "", "directory of framework data files (*.yaml) replacing or adding to the built-in ones")
	fl.StringVar(&f.signKey, "sign-key", "", "cosign private key to sign the report with (password in COSIGN_PASSWORD); writes OUTPUT.sig")
	fl.StringArrayVar(&f.from, "from", nil, "report on manifests instead of a cluster: files, directories or - (repeatable; more paths may follow)")
	fl.StringVarP(&f.namespace, "namespace", "n", "", "with --from: namespace of objects that do not name one")
	fl.DurationVar(&f.timeout, "timeout", time.Minute, "deadline for reading the cluster (each cluster, with --cluster)")
	fl.StringArrayVar(&f.clusters, "cluster", nil, "NAME=KUBECONFIG of a cluster to report on; repeat for one report over several clusters")
	fl.BoolVar(&f.allowMissing, "allow-missing", false, "with --cluster or --clusters-from-secrets: report on the clusters that can be read and name the others, instead of writing no report")
	fl.StringVar(&f.clusterSecrets, "clusters-from-secrets", "", "namespace of the central cluster (--kubeconfig) whose Secrets labelled tollgate.dev/cluster=NAME hold the kubeconfigs (key kubeconfig) of the clusters to report on")
	c.AddCommand(newReportVerifyCmd(stdio))
	return c
}

// clusterSources reads --cluster, which excludes reading one cluster
// (--kubeconfig, --cluster-name) or manifests (--from).
func (f *reportFlags) clusterSources(ctx context.Context) ([]clusterSource, error) {
	if len(f.clusters) == 0 && f.clusterSecrets == "" {
		if f.allowMissing {
			return nil, errors.New("--allow-missing needs --cluster or --clusters-from-secrets")
		}
		return nil, nil
	}
	switch {
	case len(f.from) > 0 && len(f.clusters) > 0:
		return nil, errors.New("--cluster and --from exclude each other: report on clusters or on manifests")
	case len(f.from) > 0:
		return nil, errors.New("--clusters-from-secrets and --from exclude each other: report on clusters or on manifests")
	case f.kubeconfig != "" && f.clusterSecrets == "":
		return nil, errors.New("--cluster and --kubeconfig exclude each other: give every cluster as --cluster NAME=KUBECONFIG (--kubeconfig names the central cluster only with --clusters-from-secrets)")
	case f.clusterName != "":
		return nil, errors.New("--cluster and --cluster-name exclude each other: --cluster NAME=KUBECONFIG names each cluster")
	}
	sources, err := parseClusters(f.clusters)
	if err != nil || f.clusterSecrets == "" {
		return sources, err
	}
	fromSecrets, err := f.clustersFromSecrets(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range fromSecrets {
		if slices.ContainsFunc(sources, func(o clusterSource) bool { return o.name == s.name }) {
			return nil, fmt.Errorf("--clusters-from-secrets %s: cluster %s is also given with --cluster", f.clusterSecrets, s.name)
		}
	}
	return append(sources, fromSecrets...), nil
}

// parseSince reads a duration as Go writes them, or a whole number of
// days ("30d").
func parseSince(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("--since %q: want a positive number of days (30d) or a duration (720h)", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--since %q: want a positive duration (720h) or number of days (30d)", s)
	}
	return d, nil
}

// reportFormat is --format, else the --output extension, else markdown.
func (f *reportFlags) reportFormat() (compliance.Format, error) {
	if f.format != "" {
		format, err := compliance.ParseFormat(f.format)
		if err != nil {
			return "", fmt.Errorf("--format: %w", err)
		}
		return format, nil
	}
	if format, ok := compliance.FormatOf(f.output); ok {
		return format, nil
	}
	if f.output != "" {
		return "", fmt.Errorf("--output %s: give --format (html, markdown, json or csv); the extension names none", f.output)
	}
	return compliance.FormatMarkdown, nil
}

// loadFrameworks is the built-in frameworks, overridden from
// --frameworks-dir, selected by --framework.
func (f *reportFlags) loadFrameworks() ([]compliance.Framework, error) {
	all, err := compliance.Builtin()
	if err != nil {
		return nil, err
	}
	if f.frameworksDir != "" {
		fi, err := os.Stat(f.frameworksDir)
		if err != nil {
			return nil, fmt.Errorf("--frameworks-dir: %w", err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("--frameworks-dir: %s is not a directory", f.frameworksDir)
		}
		own, err := compliance.LoadFrameworks(os.DirFS(f.frameworksDir))
		if err != nil {
			return nil, fmt.Errorf("--frameworks-dir %s: %w", f.frameworksDir, err)
		}
		all = compliance.MergeFrameworks(all, own)
	}
	sel, err := compliance.SelectFrameworks(all, f.frameworks...)
	if err != nil {
		return nil, fmt.Errorf("--framework: %w", err)
	}
	return sel, nil
}

func runReport(ctx context.Context, f *reportFlags, stdio IO) error {
	// Every flag is checked before the cluster or the manifests are read.
	format, err := f.reportFormat()
	if err != nil {
		return err
	}
	since, err := parseSince(f.since)
	if err != nil {
		return err
	}
	frameworks, err := f.loadFrameworks()
	if err != nil {
		return err
	}
	clusters, err := f.clusterSources(ctx)
	if err != nil {
		return err
	}
	var signKey []byte
	if f.signKey != "" {
		if f.output == "" {
			return errors.New("--sign-key needs --output: the signature is written beside the report file")
		}
		if signKey, err = readLimitedFile(f.signKey, maxKeyBytes); err != nil {
			return fmt.Errorf("--sign-key: %w", err)
		}
	}
	now := time.Now().UTC()
	defer func() {
		for _, c := range clusters {
			if c.remove {
				_ = os.Remove(c.kubeconfig)
			}
		}
	}()

	var in compliance.Input
	var parts []compliance.Input
	switch {
	case len(f.from) > 0:
		in, err = f.fromManifests(ctx, stdio.In, now)
	case len(clusters) > 0:
		parts, err = f.fromClusters(ctx, clusters, now)
	default:
		in, err = f.fromCluster(ctx, now)
	}
	if err != nil {
		return err
	}
	in.GeneratedAt = now
	in.Frameworks = frameworks
	in.Versions.Tollgate = Version()

	if f.decisionKey != "" && len(f.decisionLogs) == 0 {
		return fmt.Errorf("--decision-log-key-file needs --decision-log")
	}
	if len(f.decisionLogs) > 0 {
		var key []byte
		if f.decisionKey != "" {
			if key, err = readKeyFile(f.decisionKey); err != nil {
				return fmt.Errorf("--decision-log-key-file: %w", err)
			}
		}
		d := &compliance.Denials{}
		for _, p := range f.decisionLogs {
			if err := readDecisionLog(d, p, now.Add(-since), now, key); err != nil {
				return err
			}
		}
		in.Denials = d
	}

	var report *compliance.Report
	if len(clusters) > 0 {
		report = compliance.BuildClusters(in, parts)
	} else {
		report = compliance.Build(in)
	}
	var buf bytes.Buffer
	if err := compliance.Write(&buf, format, report); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	if f.output == "" {
		_, err := stdio.Out.Write(buf.Bytes())
		return err
	}
	var sig []byte
	if signKey != nil {
		// Sign before writing anything, so a wrong password leaves no
		// unsigned report behind.
		if sig, err = compliance.Sign(signKey, []byte(os.Getenv("COSIGN_PASSWORD")), buf.Bytes()); err != nil {
			return fmt.Errorf("--sign-key %s: %w (the password is read from COSIGN_PASSWORD)", f.signKey, err)
		}
	}
	if err := os.WriteFile(f.output, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("--output: %w", err)
	}
	fmt.Fprintf(stdio.Out, "report: %s (%s)\n", f.output, format)
	for _, fw := range report.Frameworks {
		s := fw.Summary
		fmt.Fprintf(stdio.Out, "  %-5s %d passed, %d passed with exceptions, %d failed, %d manual\n", fw.ID, s.Passed, s.PassedWithExceptions, s.Failed, s.Manual)
	}
	for _, b := range report.Clusters {
		if b.Cluster.Unreachable != "" {
			fmt.Fprintf(stdio.Out, "  cluster %s: not read: %s\n", b.Cluster.Name, b.Cluster.Unreachable)
			continue
		}
		failed := 0
		for _, fw := range b.Frameworks {
			failed += fw.Summary.Failed
		}
		fmt.Fprintf(stdio.Out, "  cluster %s: %d failed controls, policy set %s\n", b.Cluster.Name, failed, cmp.Or(strings.Join(b.Cluster.PolicySets, ", "), "not recorded"))
	}
	if d := report.Denials; d != nil {
		fmt.Fprintf(stdio.Out, "  evidence: %d admission requests from the authenticated API server; %d unauthenticated, %d edited left out; %d lost\n",
			d.Requests, d.Unauthenticated, d.Tampered, d.Lost)
		for _, l := range d.Integrity {
			fmt.Fprintf(stdio.Out, "  decision log %s: %s (%d problems)\n", l.Source, l.Status, len(l.Problems)+l.MoreProblems)
		}
	}
	if sig != nil {
		sigPath := f.output + ".sig"
		if err := os.WriteFile(sigPath, append(sig, '\n'), 0o644); err != nil {
			return fmt.Errorf("writing the signature: %w", err)
		}
		fmt.Fprintf(stdio.Out, "signature: %s\n", sigPath)
	}
	return nil
}

func readDecisionLog(d *compliance.Denials, p string, from, to time.Time, key []byte) error {
	file, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("--decision-log: %w", err)
	}
	defer file.Close()
	if fi, err := file.Stat(); err == nil && fi.IsDir() {
		return fmt.Errorf("--decision-log: %s is a directory", p)
	}
	return d.ReadDecisionLog(file, compliance.DecisionLogOptions{From: from, To: to, Source: p, Key: key})
}

// fromManifests evaluates manifests as tollgate check does, and records
// every finding, and the policy checks that passed, as results.
func (f *reportFlags) fromManifests(ctx context.Context, stdin io.Reader, now time.Time) (compliance.Input, error) {
	var in compliance.Input
	engine, err := f.load(ctx)
	if err != nil {
		return in, err
	}
	mods, _, err := f.modules()
	if err != nil {
		return in, err
	}
	in.Versions = compliance.Versions{
		Scanner: Version(), PolicyLibrary: library.Version, PolicyDigest: policies.ModulesDigest(mods),
		PodSecurity: engine.Config().PodSecurity.Version,
	}
	if f.noBuiltin {
		in.Versions.PolicyLibrary = "not loaded (--no-builtin)"
	}
	docs, err := manifest.Load(f.from, stdin, manifest.Options{})
	if err != nil {
		return in, fmt.Errorf("--from: %w", err)
	}
	if len(docs) == 0 {
		return in, fmt.Errorf("--from: no Kubernetes objects found in %s", strings.Join(f.from, ", "))
	}
	in.Manifests = slices.Clone(f.from)

	namespaces := map[string]map[string]any{}
	var exceptions []policies.Exception
	for i := range docs {
		d := &docs[i]
		switch {
		case d.Kind() == "Namespace" && d.APIVersion() == "v1":
			namespaces[d.Name()] = d.Object
		case d.Kind() == "TollgateException" && d.APIVersion() == v1alpha1.GroupVersion.String():
			x, note := manifestException(d, engine.Config(), now)
			if note != "" {
				in.Notes = append(in.Notes, note)
				continue
			}
			exceptions = append(exceptions, x)
		}
	}
	in.Exceptions = exceptions

	policyDocs, err := f.policyObjects()
	if err != nil {
		return in, err
	}
	plugins, err := f.plugins(ctx, append(slices.Clone(docs), policyDocs...), engine.Config())
	if err != nil {
		// A report for auditors is never made from half the policies.
		return in, fmt.Errorf("loading the policies: %w", err)
	}
	set := review.NewSet(engine, exceptions, 0, plugins...)
	core := review.New(review.Options{Now: func() time.Time { return now }})
	counted := compliance.Summary{}
	owners := policies.Owners{}
	owners.Add(manifestOwners(docs, f.namespace)...)
	inventory := manifestInventory(manifestOwners(docs, f.namespace))
	examined := compliance.ExaminedCounts{}
	for i := range docs {
		d := &docs[i]
		ns := d.Namespace()
		obj := d.Object
		if ns == "" && d.Kind() != "Namespace" && f.namespace != "" {
			ns = f.namespace
			obj = withNamespace(obj, ns)
		}
		var nsObj map[string]any
		if ns != "" {
			nsObj = namespaces[ns]
		}
		input := policies.ObjectInput(policies.SourceCheck, obj, nsObj)
		owners.Resolve(input)
		input.Inventory = inventory
		decision := core.Review(ctx, set, input)
		in.Objects++
		res := compliance.ResourceOf(obj)
		failed := map[string]bool{}
		for j := range decision.Findings {
			r := compliance.FromFinding(&decision.Findings[j], res, now)
			r.Properties = withProperty(r.Properties, compliance.PropFile, fmt.Sprintf("%s:%d", d.File, d.Line))
			in.Results = append(in.Results, r)
			counted.Add(r.Result)
			failed[r.Policy] = true
		}
		for _, pe := range decision.Errors {
			in.Results = append(in.Results, compliance.Result{
				Source: compliance.SourceTollgate, Policy: pe.Policy, Resource: res, Result: compliance.OutcomeError,
				Message: pe.Err.Error(), Timestamp: now,
				Properties: map[string]string{compliance.PropFile: fmt.Sprintf("%s:%d", d.File, d.Line)},
			})
			counted.Add(compliance.OutcomeError)
			failed[pe.Policy] = true
		}
		// Passes are counted, not listed, as the audit does; what each
		// policy examined is the controls' evidence, with the passes as
		// examples.
		counted.Pass += max(decision.Applied-len(failed), 0)
		kind := compliance.ExaminedKind(d.APIVersion(), d.Kind())
		for _, id := range decision.Checked {
			examined.Add(ns, id, kind)
			if !failed[id] {
				in.Results = append(in.Results, compliance.Result{
					Source: compliance.SourceTollgate, Policy: id, Resource: res, Result: compliance.OutcomePass,
					Message: "passed", Timestamp: now,
					Properties: map[string]string{compliance.PropFile: fmt.Sprintf("%s:%d", d.File, d.Line)},
				})
			}
		}
	}
	in.Counted = map[string]compliance.Summary{compliance.SourceTollgate: counted}
	in.Examined, in.EvidenceKnown = examined.Examined(), true
	in.Notes = append(in.Notes, "Image signatures are verified at admission and by the audit; a report on manifests does not contact registries, so image-policy controls show only what the manifests state.")
	return in, nil
}

// manifestException converts a TollgateException from the manifests, or
// says why it does not count.
func manifestException(d *manifest.Document, cfg *policies.Config, now time.Time) (policies.Exception, string) {
	where := fmt.Sprintf("TollgateException %s/%s (%s:%d)", d.Namespace(), d.Name(), d.File, d.Line)
	raw, err := yaml.Marshal(d.Object)
	if err != nil {
		return policies.Exception{}, where + " is not honoured: " + err.Error()
	}
	var obj v1alpha1.TollgateException
	if err := yaml.UnmarshalStrict(raw, &obj); err != nil {
		return policies.Exception{}, where + " is not honoured: " + err.Error()
	}
	x := exceptionOf(&obj)
	var designated []string
	if cfg != nil {
		designated = cfg.Exceptions.Namespaces
	}
	switch {
	case !matchAny(designated, obj.Namespace):
		return x, fmt.Sprintf("%s is not honoured: its namespace is not one the config designates for exceptions (exceptions.namespaces: %v)", where, designated)
	case x.Validate() != nil:
		return x, fmt.Sprintf("%s is not honoured: %v", where, x.Validate())
	case !x.Active(now):
		return x, fmt.Sprintf("%s is not honoured: expired at %s", where, x.Expires.UTC().Format(time.RFC3339))
	}
	return x, ""
}

// exceptionOf is the engine's view of a TollgateException.
func exceptionOf(obj *v1alpha1.TollgateException) policies.Exception {
	return policies.Exception{
		Namespace: obj.Namespace, Name: obj.Name, Policies: obj.Spec.Policies,
		Match: policies.ExceptionMatch{
			Namespaces: obj.Spec.Match.Namespaces, Kinds: obj.Spec.Match.Kinds,
			Names: obj.Spec.Match.Names, Labels: obj.Spec.Match.Labels,
		},
		Reason: obj.Spec.Reason, Ticket: obj.Spec.Ticket, Approver: obj.Spec.Approver,
		Expires: obj.Spec.Expiry.Time,
	}
}

func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, s); ok {
			return true
		}
	}
	return false
}

func withProperty(props map[string]string, k, v string) map[string]string {
	if props == nil {
		props = map[string]string{}
	}
	props[k] = v
	return props
}
