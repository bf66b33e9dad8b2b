package kyverno

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	policiesv1beta1 "github.com/kyverno/api/api/policies.kyverno.io/v1beta1"
	kyvernov1 "github.com/kyverno/kyverno/api/kyverno/v1"
	"github.com/kyverno/kyverno/pkg/cel/policies/vpol/compiler"
	vpolengine "github.com/kyverno/kyverno/pkg/cel/policies/vpol/engine"
	"github.com/kyverno/kyverno/pkg/config"
	kyvernoengine "github.com/kyverno/kyverno/pkg/engine"
	engineapi "github.com/kyverno/kyverno/pkg/engine/api"
	"github.com/kyverno/kyverno/pkg/engine/jmespath"
	imageverifycache "github.com/kyverno/kyverno/pkg/image/verification/cache"

	"github.com/tollgate-dev/tollgate/policies"
)

// Object is one Kubernetes object read from a file or the cluster. Source
// names it in errors and warnings, e.g. "policies/require-team.yaml:1" or
// "ClusterPolicy require-team".
type Object struct {
	Source string
	Object map[string]any
}

// Options configure Compile. The zero value is ready to use.
type Options struct {
	// ConfigMaps are the ConfigMaps (v1 ConfigMap objects) that context
	// entries of kind configMap may read, by namespace and name. A
	// context entry naming any other ConfigMap fails its rule.
	ConfigMaps []map[string]any
	// RuleValues, when set, gives each rule the variables a Kyverno CLI
	// values file sets for it (`kyverno test`), and ConfigMap context
	// entries are not read: the values stand for them, as in the CLI.
	RuleValues RuleValues
}

// Validate checks the options: every ConfigMap is a v1 ConfigMap with a
// name and string data.
func (o *Options) Validate() error {
	var errs []error
	for i, cm := range o.ConfigMaps {
		if _, err := toConfigMap(cm); err != nil {
			errs = append(errs, fmt.Errorf("configMaps[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// LoadError is a policy, or a rule of one, that did not load: which object
// (Source), which policy and rule (empty when the problem concerns the
// whole object or policy), and what is wrong.
type LoadError struct {
	Source string
	Policy string
	Rule   string
	Err    error
}

// Error implements error: "source: policy P: rule R: problem".
func (e *LoadError) Error() string {
	var b strings.Builder
	b.WriteString(e.Source)
	if e.Policy != "" {
		fmt.Fprintf(&b, ": policy %s", e.Policy)
	}
	if e.Rule != "" {
		fmt.Fprintf(&b, ": rule %s", e.Rule)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

// Unwrap returns the underlying error.
func (e *LoadError) Unwrap() error { return e.Err }

// Warning is a part of a loaded policy that Tollgate does not run (a
// generate or verifyImages rule, a cleanup policy): it is reported so that
// nothing is ignored silently.
type Warning struct {
	Source  string
	Policy  string
	Rule    string
	Message string
}

// String renders the warning like a LoadError: "source: policy P: rule R: message".
func (w Warning) String() string {
	return (&LoadError{Source: w.Source, Policy: w.Policy, Rule: w.Rule, Err: errors.New(w.Message)}).Error()
}

// Evaluator judges inputs against the Kyverno policies Compile loaded.
// Evaluate and Mutate are safe for concurrent use.
type Evaluator struct {
	cfg    config.Configuration
	jp     jmespath.Interface
	engine engineapi.Engine
	// validate and mutate are the kyverno.io policies with validate and
	// mutate rules, in the order of their IDs.
	validate, mutate []*policy
	// vpols are the ValidatingPolicies, compiled, with their autogen
	// variants; vpolMeta their metadata by name.
	vpols    vpolengine.ProviderFunc
	vpolMeta map[string]*policies.Metadata
	metas    []policies.Metadata
	warnings []Warning
}

// policy is a loaded kyverno.io policy: the rules Tollgate runs, and its
// metadata.
type policy struct {
	meta   policies.Metadata
	policy kyvernov1.PolicyInterface
}

// Compile loads every Kyverno policy among objs: kyverno.io/v1 (and
// v2beta1) ClusterPolicy and Policy, policies.kyverno.io ValidatingPolicy.
// Objects of other groups are ignored; other Kyverno kinds load as
// warnings.
//
// A policy that does not decode (an unknown or mistyped field), that
// Kyverno's policy validation rejects (a bad variable, pattern, patch or
// CEL expression), or whose CEL does not type-check is a *LoadError naming
// the object's Source, the policy and, where it can be told, the rule;
// the errors are returned joined with errors.Join while every good policy
// still loads. The Evaluator is never nil. Compiling needs no cluster and
// no network; the context is for the signature Tollgate's formats share.
func Compile(_ context.Context, objs []Object, opts Options) (*Evaluator, error) {
	cfg := config.NewDefaultConfiguration(false)
	jp := jmespath.New(cfg)
	e := &Evaluator{cfg: cfg, jp: jp, vpolMeta: map[string]*policies.Metadata{}}
	var errs []error
	if err := opts.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("options: %w", err))
	}
	cms := newConfigMaps(opts.ConfigMaps)
	isCluster := false
	e.engine = kyvernoengine.NewEngine(
		cfg, jp,
		nil, // no cluster client: API calls fail the rule that makes them
		offlineRegistry{},
		imageverifycache.DisabledImageVerifyCache(),
		contextLoaders(cms, opts.RuleValues),
		nil,
		&isCluster,
	)

	l := &loader{names: map[string]string{}}
	var vpols []compiledVPOL
	for _, o := range objs {
		if o.Object == nil {
			l.fail(o.Source, "", "", errors.New("not an object"))
			continue
		}
		apiVersion, _ := o.Object["apiVersion"].(string)
		kind, _ := o.Object["kind"].(string)
		group, version, _ := strings.Cut(apiVersion, "/")
		switch group {
		case "kyverno.io":
			if p := l.kyvernoPolicy(o, version, kind); p != nil {
				if p.policy.GetSpec().HasValidate() {
					e.validate = append(e.validate, p)
				}
				if p.policy.GetSpec().HasMutate() {
					e.mutate = append(e.mutate, p)
				}
				e.metas = append(e.metas, p.meta)
			}
		case "policies.kyverno.io":
			if v := l.celPolicy(o, version, kind); v != nil {
				vpols = append(vpols, *v)
				e.vpolMeta[v.policy.GetName()] = &v.meta
				e.metas = append(e.metas, v.meta)
			}
		}
	}
	byID := func(a, b *policy) int { return strings.Compare(a.meta.ID, b.meta.ID) }
	slices.SortFunc(e.validate, byID)
	slices.SortFunc(e.mutate, byID)
	slices.SortFunc(e.metas, func(a, b policies.Metadata) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(vpols, func(a, b compiledVPOL) int { return strings.Compare(a.meta.ID, b.meta.ID) })
	var compiled []vpolengine.Policy
	for _, v := range vpols {
		compiled = append(compiled, v.compiled...)
	}
	e.vpols = func(context.Context) ([]vpolengine.Policy, error) { return compiled, nil }
	e.warnings = l.warnings
	return e, errors.Join(append(errs, l.errs...)...)
}

// Policies lists one Metadata per loaded policy, sorted by ID:
// "ClusterPolicy/<name>", "Policy/<namespace>/<name>",
// "ValidatingPolicy/<name>".
func (e *Evaluator) Policies() []policies.Metadata {
	return slices.Clone(e.metas)
}

// Warnings lists what the loaded policies hold that Tollgate does not run.
func (e *Evaluator) Warnings() []Warning {
	return slices.Clone(e.warnings)
}

// compiledVPOL is a ValidatingPolicy and what Kyverno's CEL compiler made
// of it (the policy and its autogen variants for pod controllers).
type compiledVPOL struct {
	meta     policies.Metadata
	policy   policiesv1beta1.ValidatingPolicyLike
	compiled []vpolengine.Policy
}

// compileVPOL compiles one ValidatingPolicy the way Kyverno's provider
// does, so errors are per policy.
func compileVPOL(p policiesv1beta1.ValidatingPolicyLike) ([]vpolengine.Policy, error) {
	provider, err := vpolengine.NewProvider(compiler.NewCompiler(), []policiesv1beta1.ValidatingPolicyLike{p}, nil)
	if err != nil {
		return nil, err
	}
	return provider.Fetch(context.Background())
}
