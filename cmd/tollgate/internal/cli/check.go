package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate-dev/tollgate/cmd/tollgate/internal/output"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/gatekeeper"
	"github.com/tollgate-dev/tollgate/policies/imagesig"
	"github.com/tollgate-dev/tollgate/policies/kyverno"
	"github.com/tollgate-dev/tollgate/policies/manifest"
	"github.com/tollgate-dev/tollgate/policies/review"
	"github.com/tollgate-dev/tollgate/policies/vap"
)

type checkFlags struct {
	policyFlags
	format     string
	output     string
	namespaces []string
	namespace  string
	ignore     []string
	// Image policies: checked offline unless verifyImages.
	imagePolicies    []string
	verifyImages     bool
	insecureRegistry bool
	imageTimeout     time.Duration
	// cost prints the monthly cost estimate of the inputs.
	cost bool
	// noMutate judges the manifests as written, without the mutation
	// admission would make first.
	noMutate bool
	// scanImages scans every image of the inputs with Trivy, for the
	// policies that read input.imageScans; scan configures the scanner
	// and maxDBAge marks results of an older database stale.
	scanImages bool
	scan       scanFlags
	maxDBAge   time.Duration
	// source is the policy set pulled from a registry.
	source sourceFlags
}

func newCheckCmd(stdio IO) *cobra.Command {
	var f checkFlags
	c := &cobra.Command{
		Use:   "check [flags] PATH...",
		Short: "Check Kubernetes manifests against the policies (the pull-request gate)",
		Long: `Check runs the admission engine over manifests: files, directories (recursed
for .yaml, .yml and .json), or - for standard input; multi-document YAML, JSON,
kind: List, helm template and kustomize build output.

Check judges what the cluster would store: it first makes the changes
Tollgate's mutating webhook makes at admission (ownership labels from the
namespace, a hardened security context, default requests and limits, image
pins with --verify-images), lists them, and then judges the result, so a pull
request is only asked for what the platform does not inject. --no-mutate
judges the manifests exactly as written.

Namespaces defined in the inputs give namespace context (ownership labels) to
the workloads in them; --namespaces supplies more without checking them.

TollgateImagePolicy objects in the inputs (and --image-policy files) judge the
container images of the workloads. Without --verify-images no registry is
contacted: an image no rule matches gets the policy's unmatched action. With
--verify-images every image is resolved and its signatures verified, as the
admission webhook does.

With --scan-images every distinct image of the inputs is scanned once with
Trivy (see tollgate scan image), and the policies that read input.imageScans
(images-vulnerabilities, images-unscanned) judge the results; a scan that
fails is a problem of the check.

Exit status: 0 no enforce finding, 1 at least one enforce finding, 2 usage or
input error (the message names the file and line).`,
		Example: `  tollgate check deploy/
  helm template charts/web | tollgate check -
  kustomize build overlays/prod | tollgate check --format sarif --output tollgate.sarif -`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return fmt.Errorf("check needs at least one PATH (a file, a directory, or - for stdin)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCheck(cmd, stdio, &f, args)
		},
	}
	f.register(c)
	c.Flags().StringVarP(&f.format, "format", "f", "text", "output format: text, json, sarif, junit or github")
	c.Flags().StringVarP(&f.output, "output", "o", "", "write the report to this file instead of standard output")
	c.Flags().StringArrayVar(&f.namespaces, "namespaces", nil, "file of Namespace manifests giving context to the inputs (e.g. kubectl get ns -o yaml); repeatable")
	c.Flags().StringVarP(&f.namespace, "namespace", "n", "", "namespace of objects that do not name one (as kubectl apply -n)")
	c.Flags().StringArrayVar(&f.ignore, "ignore", nil, "glob of files to skip when walking directories (e.g. values*.yaml); repeatable")
	c.Flags().StringArrayVar(&f.imagePolicies, "image-policy", nil, "TollgateImagePolicy file judging the images (beside those in the inputs); repeatable")
	c.Flags().BoolVar(&f.verifyImages, "verify-images", false, "verify image signatures against the registries (default: no registry is contacted)")
	c.Flags().BoolVar(&f.insecureRegistry, "insecure-registry", false, "with --verify-images or --scan-images: allow plain-HTTP registries")
	c.Flags().DurationVar(&f.imageTimeout, "image-timeout", 10*time.Second, "with --verify-images: deadline of the registry calls for one image")
	c.Flags().BoolVar(&f.noMutate, "no-mutate", false, "judge the manifests as written, without the mutations admission would make first")
	c.Flags().BoolVar(&f.scanImages, "scan-images", false, "scan every image of the inputs for vulnerabilities with Trivy, for the policies that read input.imageScans")
	c.Flags().DurationVar(&f.maxDBAge, "max-db-age", 7*24*time.Hour, "with --scan-images: a result from a vulnerability database older than this is stale")
	f.scan.register(c)
	f.source.register(c, false)
	c.Flags().BoolVar(&f.cost, "cost", false, "after the report, print the monthly cost estimate of the workloads to standard error (default prices; see tollgate cost estimate)")
	return c
}

func runCheck(cmd *cobra.Command, stdio IO, f *checkFlags, args []string) error {
	format, err := output.ParseFormat(f.format)
	if err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	if f.source.ref != "" {
		// Judged with exactly the set the clusters run: verified first.
		if f.policyFlags.source, err = f.source.pull(cmd.Context()); err != nil {
			return fmt.Errorf("--policy-source %w", err)
		}
		fmt.Fprintf(stdio.Err, "policy set %s (revision %s)\n", f.policyFlags.source.Digest, f.policyFlags.source.Revision)
	} else if len(f.source.keys) > 0 {
		return fmt.Errorf("--policy-source-key needs --policy-source")
	}
	engine, err := f.load(cmd.Context())
	if err != nil {
		return err
	}
	report := &output.Report{Tool: "tollgate", Version: Version()}

	docs, loadErr := manifest.Load(args, stdio.In, manifest.Options{Ignore: f.ignore})
	addProblems(report, loadErr)

	// Namespace context: --namespaces files first, then the inputs' own
	// Namespaces, which win because they are what this change applies.
	// Every object of both is a controller a Pod, ReplicaSet or Job may
	// name: it is judged at that controller only when the controller is
	// there, with the UID it names.
	namespaces := map[string]map[string]any{}
	owners := policies.Owners{}
	if len(f.namespaces) > 0 {
		nsDocs, err := manifest.Load(f.namespaces, nil, manifest.Options{})
		if err != nil {
			return fmt.Errorf("--namespaces: %w", err)
		}
		for _, d := range nsDocs {
			if d.Kind() == "Namespace" {
				namespaces[d.Name()] = d.Object
			}
		}
		owners.Add(manifestOwners(nsDocs, f.namespace)...)
	}
	owners.Add(manifestOwners(docs, f.namespace)...)
	inventory := manifestInventory(manifestOwners(docs, f.namespace))
	files := map[string]bool{}
	for _, d := range docs {
		files[d.File] = true
		if d.Kind() == "Namespace" && d.APIVersion() == "v1" {
			namespaces[d.Name()] = d.Object
		}
	}
	report.Files = len(files)
	policyDocs, err := f.policyObjects()
	if err != nil {
		return err
	}
	plugins, perr := f.plugins(cmd.Context(), append(slices.Clone(docs), policyDocs...), engine.Config())
	addProblems(report, perr)
	warnIgnored(stdio.Err, plugins)
	set := review.NewSet(engine, nil, 0, plugins...)
	for _, name := range slices.Sorted(maps.Keys(set.ProfileProblems())) {
		for _, p := range set.ProfileProblems()[name] {
			report.Problems = append(report.Problems, output.Problem{File: f.config, Message: p})
		}
	}
	report.Policies = set.Policies()
	set.Images = loadCheckImages(cmd.Context(), f, docs, report)
	gate := &review.ImageGate{Parallel: 4}
	if f.verifyImages {
		gate.Verifier = imagesig.NewVerifier(imagesig.Options{Insecure: f.insecureRegistry, Timeout: f.imageTimeout})
	}
	opts := review.Options{Images: gate}
	var scans *checkScans
	scanAt := map[string]output.Problem{} // the first input of each image
	if f.scanImages {
		r, err := f.scan.runnerFor(cmd.Context(), f.insecureRegistry, stdio.Err)
		if err != nil {
			return fmt.Errorf("--scan-images: %w", err)
		}
		scans = newCheckScans(r, f.maxDBAge)
		opts.Scans = scans
		var images []string
		for _, d := range docs {
			for _, c := range engine.Images(policies.ObjectInput(policies.SourceCheck, d.Object, nil)) {
				if _, seen := scanAt[c.Image]; !seen {
					scanAt[c.Image] = output.Problem{File: d.File, Line: d.Line}
					images = append(images, c.Image)
				}
			}
		}
		scans.scan(cmd.Context(), images, stdio.Err)
	}
	core := review.New(opts)
	judged := make([]manifest.Document, len(docs)) // what the cluster would store

	for i, d := range docs {
		report.Objects++
		ns := d.Namespace()
		if ns == "" && d.Kind() != "Namespace" {
			ns = f.namespace
		}
		obj := d.Object
		if ns != "" && d.Namespace() == "" {
			obj = withNamespace(obj, ns)
		}
		var nsObj map[string]any
		if ns != "" {
			nsObj = namespaces[ns]
		}
		in := policies.ObjectInput(policies.SourceCheck, obj, nsObj)
		owners.Resolve(in)
		if !f.noMutate {
			obj = mutateForCheck(cmd.Context(), core, set, in, &d, ns, report)
			in = policies.ObjectInput(policies.SourceCheck, obj, nsObj)
			owners.Resolve(in)
		}
		in.Inventory = inventory
		judged[i] = d
		judged[i].Object = obj
		if scans != nil {
			// Images the mutation pinned to a digest are new references.
			var pinned []string
			for _, c := range engine.Images(in) {
				if _, seen := scanAt[c.Image]; !seen {
					scanAt[c.Image] = output.Problem{File: d.File, Line: d.Line}
					pinned = append(pinned, c.Image)
				}
			}
			scans.scan(cmd.Context(), pinned, stdio.Err)
		}
		verdict := core.Review(cmd.Context(), set, in)
		for _, pe := range verdict.Errors {
			report.Problems = append(report.Problems, output.Problem{File: d.File, Line: d.Line, Policy: pe.Policy, Message: pe.Error()})
		}
		for _, fnd := range verdict.Findings {
			line := d.Line
			if segs, err := policies.ParsePath(fnd.Path); err == nil && len(segs) > 0 {
				line = d.LineOf(segs)
			}
			report.Results = append(report.Results, output.Result{
				File: d.File, Line: line, DocumentLine: d.Line,
				APIVersion: d.APIVersion(), Kind: d.Kind(), Namespace: ns, Name: d.Name(),
				Finding: fnd,
			})
		}
	}
	if scans != nil {
		report.Problems = append(report.Problems, scans.problems(scanAt)...)
	}
	if len(docs) == 0 && loadErr == nil {
		fmt.Fprintf(stdio.Err, "tollgate: no Kubernetes objects found in %v\n", args)
	}

	var cost *costReport
	if f.cost {
		cost = checkCost(judged, f.namespace, engine.Config().GovernedKinds, report)
	}

	w := stdio.Out
	if f.output != "" {
		file, err := os.Create(f.output)
		if err != nil {
			return fmt.Errorf("--output: %w", err)
		}
		defer file.Close()
		w = file
	}
	if err := output.Write(w, format, report); err != nil {
		return fmt.Errorf("writing report: %w", err)
	}
	if f.output != "" && format != output.FormatText {
		// Keep a human line on the terminal when the report goes to a file.
		printSummary(stdio.Err, report)
	}
	if cost != nil {
		fmt.Fprintln(stdio.Err)
		if err := writeCostTable(stdio.Err, cost); err != nil {
			return fmt.Errorf("writing cost estimate: %w", err)
		}
	}
	sum := report.Summary()
	switch {
	case sum.Problems > 0:
		return &exitError{ExitUsage}
	case !sum.Passed:
		return &exitError{ExitFindings}
	}
	return nil
}

// mutateForCheck makes the changes admission would make to one object and
// records them in the report; it returns the object as the cluster would
// store it. An object defaulting cannot handle is judged as written, as the
// webhook admits it with a warning.
func mutateForCheck(ctx context.Context, core *review.Reviewer, set *review.Set, in *policies.Input, d *manifest.Document, ns string, report *output.Report) map[string]any {
	m, _, err := core.Mutate(ctx, set, in)
	if err != nil || m.Empty() {
		return in.Object
	}
	mutated, err := review.Apply(in.Object, m)
	if err != nil {
		report.Problems = append(report.Problems, output.Problem{File: d.File, Line: d.Line, Message: "applying the admission defaults: " + err.Error()})
		return in.Object
	}
	report.Mutations = append(report.Mutations, output.Mutation{
		File: d.File, Line: d.Line, APIVersion: d.APIVersion(), Kind: d.Kind(), Namespace: ns, Name: d.Name(), Patch: m.Patch,
	})
	return mutated
}

// manifestOwners are the objects of docs as they would be stored, with
// ns for those that name no namespace (Namespaces and cluster-scoped kinds
// are never anyone's controller, so giving them one does no harm).
func manifestOwners(docs []manifest.Document, ns string) []map[string]any {
	out := make([]map[string]any, 0, len(docs))
	for _, d := range docs {
		obj := d.Object
		if d.Namespace() == "" && ns != "" {
			obj = withNamespace(obj, ns)
		}
		out = append(out, obj)
	}
	return out
}

// manifestInventory is the inventory policies about the cluster's own
// configuration read in check: the manifests' Namespaces, NetworkPolicies,
// RBAC and ServiceAccounts. It is not complete (the cluster may hold what
// the manifests do not), so no policy concludes from it that something is
// missing from the cluster; an object it cannot hold (no name) is a
// problem the manifest checks report.
func manifestInventory(objs []map[string]any) *policies.Inventory {
	b := policies.NewInventory(false)
	for _, o := range objs {
		_, _ = b.Add(o)
	}
	return b.Build()
}

func withNamespace(obj map[string]any, ns string) map[string]any {
	out := make(map[string]any, len(obj))
	for k, v := range obj {
		out[k] = v
	}
	meta := map[string]any{}
	if m, ok := obj["metadata"].(map[string]any); ok {
		for k, v := range m {
			meta[k] = v
		}
	}
	meta["namespace"] = ns
	out["metadata"] = meta
	return out
}

// addProblems turns manifest errors (joined *manifest.Error values) into
// report problems, each with its file and line.
func addProblems(r *output.Report, err error) {
	if err == nil {
		return
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		var me *manifest.Error
		if errors.As(e, &me) {
			r.Problems = append(r.Problems, output.Problem{File: me.File, Line: me.Line, Message: me.Msg})
			continue
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			addProblems(r, errors.Join(j.Unwrap()...)) // a format's joined load errors
			continue
		}
		file, line, msg := sourceOf(e)
		r.Problems = append(r.Problems, output.Problem{File: file, Line: line, Message: msg})
	}
}

func printSummary(w io.Writer, r *output.Report) {
	s := r.Summary()
	verdict := "PASSED"
	if !s.Passed {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "tollgate: %d objects in %d files: %d enforce, %d warn, %d audit findings, %d problems: %s\n",
		s.Objects, s.Files, s.ByAction.Enforce, s.ByAction.Warn, s.ByAction.Audit, s.Problems, verdict)
}

// warnIgnored prints what loaded policies hold that Tollgate does not run
// (a Kyverno generate rule, a cleanup policy), so nothing is ignored
// silently.
func warnIgnored(w io.Writer, plugins []review.Plugin) {
	for _, p := range plugins {
		if k, ok := p.Evaluator.(interface{ Warnings() []kyverno.Warning }); ok {
			for _, warning := range k.Warnings() {
				fmt.Fprintf(w, "tollgate: warning: %s\n", warning)
			}
		}
	}
}

// sourceOf splits a policy load error of a Gatekeeper or
// ValidatingAdmissionPolicy object into the file and line its source names
// and the rest of the message.
func sourceOf(err error) (string, int, string) {
	var source string
	var gk *gatekeeper.LoadError
	var va *vap.LoadError
	var ky *kyverno.LoadError
	switch {
	case errors.As(err, &gk):
		source = gk.Source
	case errors.As(err, &va):
		source = va.Source
	case errors.As(err, &ky):
		source = ky.Source
	default:
		return "", 0, err.Error()
	}
	i := strings.LastIndexByte(source, ':')
	line, lerr := strconv.Atoi(source[i+1:])
	file := source[:max(i, 0)]
	if i < 0 || lerr != nil {
		return "", 0, err.Error()
	}
	return file, line, strings.TrimPrefix(err.Error(), source+": ")
}
