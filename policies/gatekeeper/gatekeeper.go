package gatekeeper

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	constraintclient "github.com/open-policy-agent/frameworks/constraint/pkg/client"
	"github.com/open-policy-agent/frameworks/constraint/pkg/client/drivers"
	"github.com/open-policy-agent/frameworks/constraint/pkg/client/drivers/rego"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/drivers/k8scel"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/target"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/util"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"

	"github.com/tollgate-dev/tollgate/policies"
)

// Object is one Kubernetes object read from a file or the cluster. Source
// names it in errors, e.g. "policies/required-labels.yaml:3" or
// "ConstraintTemplate k8srequiredlabels".
type Object struct {
	Source string
	Object map[string]any
}

// Options configure Compile. The zero value is ready to use.
type Options struct {
	// PolicyTimeout bounds one review (default policies.DefaultPolicyTimeout).
	PolicyTimeout time.Duration
}

// Validate checks the options.
func (o *Options) Validate() error {
	if o.PolicyTimeout < 0 {
		return fmt.Errorf("policy timeout %s is negative", o.PolicyTimeout)
	}
	return nil
}

// LoadError is a template or constraint that did not load: which object
// (Source), which field of it (a path such as spec.targets[0].rego or
// spec.parameters.labels; empty when it concerns the whole object), and
// what is wrong.
type LoadError struct {
	Source string
	Field  string
	Err    error
}

// Error implements error: "source: field: problem".
func (e *LoadError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s: %v", e.Source, e.Err)
	}
	return fmt.Sprintf("%s: %s: %v", e.Source, e.Field, e.Err)
}

// Unwrap returns the underlying error.
func (e *LoadError) Unwrap() error { return e.Err }

// Evaluator judges inputs against the templates and constraints Compile
// loaded. Evaluate, AddData and RemoveData are safe for concurrent use.
type Evaluator struct {
	// client is Gatekeeper's constraint framework client: it owns the
	// templates, the constraints, data.inventory and the review itself.
	client  *constraintclient.Client
	timeout time.Duration
	// constraints are the loaded constraints' metadata by kind and name.
	constraints map[drivers.ConstraintKey]*policies.Metadata
	metas       []policies.Metadata
	kinds       []policies.GroupVersionKind
	// crds are the loaded templates' constraint CRDs, as the framework
	// client made them (its internal apiextensions type), sorted by name.
	crds []*apiextensions.CustomResourceDefinition
}

// enforcementPoint is Gatekeeper's name for where a review happens, by
// Tollgate input source. Scoped enforcement actions refer to it.
func enforcementPoint(source string) (string, bool) {
	switch source {
	case policies.SourceAdmission:
		return util.WebhookEnforcementPoint, true
	case policies.SourceAudit:
		return util.AuditEnforcementPoint, true
	case policies.SourceCheck:
		return util.GatorEnforcementPoint, true
	}
	return "", false
}

// newClient builds the client the way Gatekeeper does: its Kubernetes
// target, the K8sNativeValidation (CEL) driver preferred over the Rego
// driver for templates that carry both, data.inventory open to
// referential templates, and every enforcement point Tollgate reviews at.
// Each driver is wrapped in a guard (see guard.go).
func newClient() (*constraintclient.Client, error) {
	celDriver, err := k8scel.New()
	if err != nil {
		return nil, fmt.Errorf("creating the K8sNativeValidation driver: %w", err)
	}
	regoDriver, err := rego.New(rego.Externs("inventory"))
	if err != nil {
		return nil, fmt.Errorf("creating the Rego driver: %w", err)
	}
	c, err := constraintclient.NewClient(
		constraintclient.Targets(&target.K8sValidationTarget{}),
		constraintclient.Driver(&guard{Driver: celDriver, failure: celFailure}),
		constraintclient.Driver(&guard{Driver: regoDriver, failure: regoFailure}),
		constraintclient.EnforcementPoints(util.WebhookEnforcementPoint, util.AuditEnforcementPoint, util.GatorEnforcementPoint),
	)
	if err != nil {
		return nil, fmt.Errorf("creating the constraint client: %w", err)
	}
	return c, nil
}

// Compile loads every ConstraintTemplate (templates.gatekeeper.sh/v1,
// v1beta1, v1alpha1) and Constraint (constraints.gatekeeper.sh/*) among
// objs; other objects are ignored. Templates load first, then constraints.
//
// A template whose Rego does not compile, a CEL expression that does not
// type-check, a constraint whose kind no template defines, parameters
// that break the template's schema: each is a *LoadError naming the
// object's Source and the field, returned joined with errors.Join, while
// every good template and constraint still loads. The Evaluator is never
// nil.
func Compile(ctx context.Context, objs []Object, opts Options) (*Evaluator, error) {
	c, err := newClient()
	if err != nil {
		e, _ := compile(ctx, nil, opts, nil)
		return e, err
	}
	return compile(ctx, objs, opts, c)
}

// compile loads objs into c, the constraint client; the Evaluator it
// returns is never nil. With a nil client it holds nothing.
func compile(ctx context.Context, objs []Object, opts Options, c *constraintclient.Client) (*Evaluator, error) {
	e := &Evaluator{
		client:      c,
		timeout:     opts.PolicyTimeout,
		constraints: map[drivers.ConstraintKey]*policies.Metadata{},
		metas:       []policies.Metadata{},
		kinds:       []policies.GroupVersionKind{},
	}
	if e.timeout <= 0 {
		e.timeout = policies.DefaultPolicyTimeout
	}
	if err := opts.Validate(); err != nil {
		return e, err
	}
	if c == nil {
		return e, nil
	}

	l := &loader{client: c, templates: map[string]*template{}, failedKinds: map[string]string{}}
	var templs, cons []Object
	for _, o := range objs {
		if o.Object == nil {
			l.fail(o.Source, "", errors.New("not an object"))
			continue
		}
		apiVersion, _ := o.Object["apiVersion"].(string)
		kind, _ := o.Object["kind"].(string)
		group, _, _ := strings.Cut(apiVersion, "/")
		switch {
		case group == templatesGroup && kind == "ConstraintTemplate":
			templs = append(templs, o)
		case group == constraintsGroup:
			cons = append(cons, o)
		}
	}
	for _, o := range templs {
		l.addTemplate(ctx, o)
	}
	for _, t := range l.templates {
		e.crds = append(e.crds, t.crd)
	}
	slices.SortFunc(e.crds, func(a, b *apiextensions.CustomResourceDefinition) int { return strings.Compare(a.Name, b.Name) })
	for _, o := range cons {
		if c := l.addConstraint(ctx, o); c != nil {
			e.constraints[drivers.ConstraintKey{Kind: c.kind, Name: c.name}] = &c.meta
			e.metas = append(e.metas, c.meta)
			e.kinds = append(e.kinds, c.kinds...)
		}
	}
	slices.SortFunc(e.metas, func(a, b policies.Metadata) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(e.kinds, compareGVK)
	e.kinds = slices.Compact(e.kinds)
	return e, errors.Join(l.errs...)
}

// Policies lists one Metadata per loaded constraint, sorted by ID
// ("<ConstraintKind>/<name>").
func (e *Evaluator) Policies() []policies.Metadata {
	return slices.Clone(e.metas)
}

// Kinds are the group/kinds the loaded constraints' spec.match.kinds
// select, so the webhook and the audit know what to intercept and list. A
// constraint that does not restrict kinds contributes {Group: "*", Kind:
// "*"}; "*" in apiGroups or kinds stays "*". Version is always empty.
func (e *Evaluator) Kinds() []policies.GroupVersionKind {
	return slices.Clone(e.kinds)
}

func compareGVK(a, b policies.GroupVersionKind) int {
	if c := strings.Compare(a.Group, b.Group); c != 0 {
		return c
	}
	return strings.Compare(a.Kind, b.Kind)
}
