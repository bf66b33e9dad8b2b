// Package cli holds Tollgate's commands (check, test, policies, serve,
// verify-image, cost, audit, report, scan, version):
// flag parsing and wiring of the engine to files and output. Behaviour lives
// here, tested, so main stays a one-liner.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/library"
	"github.com/tollgate-dev/tollgate/policies/loader"
	"github.com/tollgate-dev/tollgate/policies/manifest"
	"github.com/tollgate-dev/tollgate/policies/ocisource"
	"github.com/tollgate-dev/tollgate/policies/review"
)

// Exit codes shared by every command.
const (
	ExitOK       = 0
	ExitFindings = 1 // enforce findings, failed tests
	ExitUsage    = 2 // usage or input error
)

// exitError carries an exit code for an outcome already reported.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// IO is where commands read and write.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
}

// Run runs the tollgate command line and returns the process exit code.
func Run(ctx context.Context, args []string, stdio IO) int {
	root := newRoot(stdio)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	// Anything that stops a command before its verdict (bad flags, bad
	// input, an unwritable output) is a usage or input error.
	fmt.Fprintf(stdio.Err, "tollgate: %v\n", err)
	return ExitUsage
}

// NewRoot returns the tollgate command tree unexecuted, for what reads it
// rather than runs it (the command reference in docs/reference/cli).
func NewRoot(stdio IO) *cobra.Command { return newRoot(stdio) }

func newRoot(stdio IO) *cobra.Command {
	root := &cobra.Command{
		Use:   "tollgate",
		Short: "Admission policy and governance engine for Kubernetes",
		Long: `Tollgate judges Kubernetes objects against the platform's policies: ownership
labels, Pod Security Standards, resource caps, allowed registries. The same
engine runs in the admission webhook, on pull requests (tollgate check) and in
the background audit.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdio.In)
	root.SetOut(stdio.Out)
	root.SetErr(stdio.Err)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w (see %s --help)", err, c.CommandPath())
	})
	root.AddCommand(newCheckCmd(stdio), newTestCmd(stdio), newPoliciesCmd(stdio), newServeCmd(stdio), newVerifyImageCmd(stdio), newCostCmd(stdio), newAuditCmd(stdio), newReportCmd(stdio), newScanCmd(stdio), newVersionCmd(stdio), newPolicyCmd(stdio), newUICmd(stdio))
	return root
}

// Version is the binary's version: the module version when built with
// `go install`, else "dev".
func Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// policyFlags are the flags every command that loads policies shares.
type policyFlags struct {
	config    string
	policies  []string
	noBuiltin bool
	timeout   time.Duration
	// source is a policy set pulled from a registry (check
	// --policy-source): its modules, data and objects join the others,
	// and its config is used when --config is not given.
	source *ocisource.Set
}

func (f *policyFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&f.config, "config", "", "Tollgate config file (YAML); defaults apply when omitted")
	c.Flags().StringArrayVar(&f.policies, "policy", nil, "extra policies: a .rego file, a directory (its .rego files, and its YAML and JSON files with Gatekeeper templates and constraints or ValidatingAdmissionPolicies), a YAML or JSON file of those, or an OPA bundle (.tar.gz); repeatable")
	c.Flags().BoolVar(&f.noBuiltin, "no-builtin", false, "do not load the built-in policy library")
	c.Flags().DurationVar(&f.timeout, "policy-timeout", policies.DefaultPolicyTimeout, "longest one policy may take on one object")
}

// load reads the config and the policies and builds the engine.
func (f *policyFlags) load(ctx context.Context) (*policies.Engine, error) {
	var cfg *policies.Config
	if f.source != nil {
		cfg = f.source.Config
	}
	if f.config != "" {
		var err error
		if cfg, err = policies.LoadConfig(f.config); err != nil {
			return nil, err
		}
	}
	mods, data, err := f.modules()
	if err != nil {
		return nil, err
	}
	if len(mods) == 0 {
		return nil, fmt.Errorf("no policies to run: drop --no-builtin or give --policy")
	}
	if f.timeout <= 0 {
		return nil, fmt.Errorf("--policy-timeout must be positive, got %s", f.timeout)
	}
	e, err := policies.New(ctx, policies.Options{Modules: mods, Data: data, Config: cfg, PolicyTimeout: f.timeout})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// restConfig reads the kubeconfig at path, or else $KUBECONFIG,
// ~/.kube/config, or the in-cluster service account.
func restConfig(path string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = path
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("--kubeconfig: %w", err)
	}
	return cfg, nil
}

// serverPolicies reads what a command that judges like the server starts
// from: the --config file (nil when none) and the modules.
func (f *policyFlags) serverPolicies() (*policies.Config, []policies.Module, map[string]any, error) {
	var cfg *policies.Config
	if f.config != "" {
		var err error
		if cfg, err = policies.LoadConfig(f.config); err != nil {
			return nil, nil, nil, err
		}
	}
	mods, data, err := f.modules()
	if err != nil {
		return nil, nil, nil, err
	}
	return cfg, mods, data, nil
}

// modules reads the built-in library and the --policy paths (tests left
// out: they belong to `tollgate test`, which reads its own).
func (f *policyFlags) modules() ([]policies.Module, map[string]any, error) {
	var mods []policies.Module
	data := map[string]any{}
	if !f.noBuiltin {
		lib, err := policies.ReadFS(library.FS(), "library", false)
		if err != nil {
			return nil, nil, err
		}
		mods = append(mods, lib...)
	}
	for _, p := range f.policies {
		if isManifestFile(p) {
			continue // Gatekeeper or ValidatingAdmissionPolicy objects: policyObjects reads them
		}
		m, d, err := policies.ReadPath(p, false)
		if err != nil {
			return nil, nil, err
		}
		mods = append(mods, m...)
		for k, v := range d {
			data[k] = v
		}
	}
	if f.source != nil {
		mods = append(mods, f.source.Modules...)
		for k, v := range f.source.Data {
			data[k] = v
		}
	}
	return mods, data, nil
}

// isManifestFile reports whether a --policy path is a YAML or JSON file of
// policy objects rather than Rego.
func isManifestFile(p string) bool {
	switch strings.ToLower(filepath.Ext(p)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// policyObjects reads the Gatekeeper templates and constraints and the
// ValidatingAdmissionPolicies of the --policy paths. A YAML or JSON file
// named there is read whole, so it may carry the objects its policies read
// too (a policy's ConfigMap param); in a directory only the policy objects
// count, and files that are not Kubernetes objects (test fixtures) are
// skipped.
func (f *policyFlags) policyObjects() ([]manifest.Document, error) {
	var out []manifest.Document
	if f.source != nil {
		out = append(out, f.source.Objects...)
	}
	for _, p := range f.policies {
		st, err := os.Stat(p)
		switch {
		case err != nil && isManifestFile(p):
			return nil, fmt.Errorf("--policy: %w", err)
		case err != nil:
			continue // ReadPath reports it
		case st.IsDir():
			docs, _ := manifest.Load([]string{p}, nil, manifest.Options{})
			out = append(out, slices.DeleteFunc(docs, func(d manifest.Document) bool { return loader.FormatOf(d.Object) == "" })...)
		case isManifestFile(p):
			docs, err := manifest.Load([]string{p}, nil, manifest.Options{})
			if err != nil {
				return nil, fmt.Errorf("--policy: %w", err)
			}
			out = append(out, docs...)
		}
	}
	return out, nil
}

// plugins compiles the other policy formats found among the documents
// (the inputs, and the --policy objects) for check and report --from. The
// Kyverno PolicyExceptions among them count in the namespaces cfg
// designates for exceptions (exceptions.namespaces), as Tollgate's own do.
func (f *policyFlags) plugins(ctx context.Context, docs []manifest.Document, cfg *policies.Config) ([]review.Plugin, error) {
	objs := make([]loader.Object, len(docs))
	for i, d := range docs {
		objs[i] = loader.Object{Source: fmt.Sprintf("%s:%d", d.File, d.Line), Object: d.Object}
	}
	opts := loader.FileOptions{PolicyTimeout: f.timeout}
	if cfg != nil {
		opts.ExceptionNamespaces = cfg.Exceptions.Namespaces
	}
	return loader.FromObjects(ctx, objs, opts)
}
