package kyverno

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"

	policiesv1beta1 "github.com/kyverno/api/api/policies.kyverno.io/v1beta1"
	kyvernov1 "github.com/kyverno/kyverno/api/kyverno/v1"
	mpolcompiler "github.com/kyverno/kyverno/pkg/cel/policies/mpol/compiler"
	"github.com/kyverno/kyverno/pkg/cel/policies/vpol/compiler"
	vpolengine "github.com/kyverno/kyverno/pkg/cel/policies/vpol/engine"
	"github.com/kyverno/kyverno/pkg/config"
	kyvernoengine "github.com/kyverno/kyverno/pkg/engine"
	engineapi "github.com/kyverno/kyverno/pkg/engine/api"
	"github.com/kyverno/kyverno/pkg/engine/jmespath"
	"github.com/kyverno/kyverno/pkg/exceptions"
	imageverifycache "github.com/kyverno/kyverno/pkg/image/verification/cache"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/vap"
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
	// Exceptions are Kyverno PolicyExceptions: kyverno.io/v2 (and
	// v2beta1) for ClusterPolicy and Policy rules, policies.kyverno.io/v1
	// (and v1beta1, v1alpha1) for ValidatingPolicies and MutatingPolicies.
	// A PolicyException among the objects given to Compile counts the
	// same. Kyverno's engine applies them; each finding one excuses is
	// reported waived, naming it.
	Exceptions []Object
	// ExceptionNamespaces are the namespaces (names or globs, as in
	// Tollgate's config exceptions.namespaces) whose PolicyExceptions are
	// honoured. Anyone who can create objects there can waive a policy,
	// so, as for Tollgate's own exceptions, none is designated by
	// default: an exception elsewhere is ignored with a warning. An
	// exception without a namespace (a file never applied, such as a
	// Kyverno test suite's) counts only under a pattern that matches
	// every namespace, "*".
	ExceptionNamespaces []string
	// RuleValues, when set, gives each rule the variables a Kyverno CLI
	// values file sets for it (`kyverno test`), and ConfigMap context
	// entries are not read: the values stand for them, as in the CLI.
	RuleValues RuleValues
}

// Validate checks the options: every ConfigMap is a v1 ConfigMap with a
// name and string data, every exception namespace a name or glob.
func (o *Options) Validate() error {
	var errs []error
	for i, cm := range o.ConfigMaps {
		if _, err := toConfigMap(cm); err != nil {
			errs = append(errs, fmt.Errorf("configMaps[%d]: %w", i, err))
		}
	}
	for i, ns := range o.ExceptionNamespaces {
		if _, err := path.Match(ns, ""); err != nil || ns == "" {
			errs = append(errs, fmt.Errorf("exceptionNamespaces[%d]: %q is not a namespace name or glob", i, ns))
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
	// plain is the engine without exceptions: it says what a rule an
	// exception excused would have found.
	plain engineapi.Engine
	// validate and mutate are the kyverno.io policies with validate and
	// mutate rules, in the order of their IDs.
	validate, mutate []*policy
	// vpols are the ValidatingPolicies, compiled, with their autogen
	// variants; vpolMeta their metadata by name.
	vpols    vpolengine.ProviderFunc
	vpolMeta map[string]*policies.Metadata
	// vpolsPlain are the ValidatingPolicies that exceptions name,
	// compiled without them, by name.
	vpolsPlain map[string][]vpolengine.Policy
	// mpols are the MutatingPolicies, compiled with their autogen
	// variants, in the order of their IDs; mpolMeta their metadata by
	// name; typeConverters the schemas their ApplyConfigurations merge by.
	mpols          mpolProvider
	mpolMeta       map[string]*mpolInfo
	typeConverters func() mpolcompiler.TypeConverterManager
	// refs describe the honoured exceptions by namespace/name, for the
	// findings they waive.
	refs     map[string]*policies.ExceptionRef
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
// v2beta1) ClusterPolicy and Policy, policies.kyverno.io ValidatingPolicy
// and MutatingPolicy, and the PolicyExceptions among objs and in
// Options.Exceptions. Objects of other groups are ignored; other Kyverno
// kinds load as warnings.
//
// A PolicyException counts only in a namespace Options.ExceptionNamespaces
// designates; one elsewhere, one that has expired, and one naming a policy
// that is not loaded is a Warning; a malformed one (an unknown field, no
// policy named, CEL that does not compile) is a *LoadError, and the
// policies it names load without it.
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
	e := &Evaluator{
		cfg: cfg, jp: jp,
		vpolMeta: map[string]*policies.Metadata{}, vpolsPlain: map[string][]vpolengine.Policy{},
		mpolMeta: map[string]*mpolInfo{}, typeConverters: sync.OnceValue(func() mpolcompiler.TypeConverterManager { return vap.NewTypeConverters() }),
	}
	var errs []error
	if err := opts.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("options: %w", err))
	}
	cms := newConfigMaps(opts.ConfigMaps)
	l := &loader{names: map[string]string{}}

	// Exceptions first: the CEL policies compile with theirs.
	var exObjs []Object
	for _, o := range objs {
		if isException(o.Object) {
			exObjs = append(exObjs, o)
		}
	}
	ex := l.exceptions(append(slices.Clone(opts.Exceptions), exObjs...), opts.ExceptionNamespaces)
	e.refs = ex.refs
	newEngine := func(selector engineapi.PolicyExceptionSelector) engineapi.Engine {
		isCluster := false
		return kyvernoengine.NewEngine(
			cfg, jp,
			nil, // no cluster client: API calls fail the rule that makes them
			offlineRegistry{},
			imageverifycache.DisabledImageVerifyCache(),
			contextLoaders(cms, opts.RuleValues),
			selector,
			&isCluster,
		)
	}
	e.plain = newEngine(nil)
	e.engine = e.plain
	if len(ex.kyverno) > 0 {
		e.engine = newEngine(exceptions.New(exceptionLister(ex.kyverno)))
	}

	var vpols []compiledVPOL
	var mpols []compiledMPOL
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
			switch kind {
			case "PolicyException":
				// read above
			case "MutatingPolicy":
				if m := l.mutatingPolicy(o, version, ex.cel); m != nil {
					mpols = append(mpols, *m)
					e.mpolMeta[m.policy.GetName()] = &m.info
					e.metas = append(e.metas, m.info.meta)
				}
			default:
				if v := l.celPolicy(o, version, kind, ex.cel); v != nil {
					vpols = append(vpols, *v)
					e.vpolMeta[v.policy.GetName()] = &v.meta
					if v.plain != nil {
						e.vpolsPlain[v.policy.GetName()] = v.plain
					}
					e.metas = append(e.metas, v.meta)
				}
			}
		}
	}
	l.checkReferences(ex, e.validate, e.mutate, e.vpolMeta, e.mpolMeta)
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
	slices.SortFunc(mpols, func(a, b compiledMPOL) int { return strings.Compare(a.info.meta.ID, b.info.meta.ID) })
	for _, m := range mpols {
		e.mpols = append(e.mpols, m.compiled...)
	}
	e.warnings = l.warnings
	return e, errors.Join(append(errs, l.errs...)...)
}

// Policies lists one Metadata per loaded policy, sorted by ID:
// "ClusterPolicy/<name>", "Policy/<namespace>/<name>",
// "ValidatingPolicy/<name>", "MutatingPolicy/<name>".
func (e *Evaluator) Policies() []policies.Metadata {
	return slices.Clone(e.metas)
}

// Warnings lists what the loaded policies hold that Tollgate does not run.
func (e *Evaluator) Warnings() []Warning {
	return slices.Clone(e.warnings)
}

// compiledVPOL is a ValidatingPolicy and what Kyverno's CEL compiler made
// of it (the policy and its autogen variants for pod controllers), with
// the exceptions that name it and, when there are some, without them
// (plain).
type compiledVPOL struct {
	meta            policies.Metadata
	policy          policiesv1beta1.ValidatingPolicyLike
	compiled, plain []vpolengine.Policy
}

// compileVPOL compiles one ValidatingPolicy the way Kyverno's provider
// does, so errors are per policy.
func compileVPOL(p policiesv1beta1.ValidatingPolicyLike, exs []*policiesv1beta1.PolicyException) ([]vpolengine.Policy, error) {
	provider, err := vpolengine.NewProvider(compiler.NewCompiler(), []policiesv1beta1.ValidatingPolicyLike{p}, exs)
	if err != nil {
		return nil, err
	}
	return provider.Fetch(context.Background())
}
