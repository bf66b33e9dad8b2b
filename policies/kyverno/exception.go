package kyverno

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	policiesv1beta1 "github.com/kyverno/api/api/policies.kyverno.io/v1beta1"
	kyvernov2 "github.com/kyverno/kyverno/api/kyverno/v2"
	engineapi "github.com/kyverno/kyverno/pkg/engine/api"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/tollgate-dev/tollgate/policies"
)

// Annotations a PolicyException may carry to say why it was granted, as
// Tollgate's own exceptions do in their spec (Kyverno's have no such
// fields). Reports show them beside each finding the exception waives.
const (
	annotationReason   = "tollgate.dev/reason"
	annotationTicket   = "tollgate.dev/ticket"
	annotationApprover = "tollgate.dev/approver"
)

// honoured are the PolicyExceptions that count: kyverno.io ones for the
// ClusterPolicy and Policy rules, policies.kyverno.io ones for the CEL
// policies, and how findings they waive refer to each.
type honoured struct {
	kyverno []*kyvernoException
	cel     []*celException
	refs    map[string]*policies.ExceptionRef
}

// kyvernoException is a kyverno.io PolicyException and where it was read.
type kyvernoException struct {
	source, id string
	x          *kyvernov2.PolicyException
}

// celException is a policies.kyverno.io PolicyException and where it was
// read.
type celException struct {
	source, id string
	x          *policiesv1beta1.PolicyException
}

// isException reports whether obj is a Kyverno PolicyException of either
// API.
func isException(obj map[string]any) bool {
	apiVersion, _ := obj["apiVersion"].(string)
	group, _, _ := strings.Cut(apiVersion, "/")
	return obj["kind"] == "PolicyException" && (group == "kyverno.io" || group == "policies.kyverno.io")
}

// exceptions reads PolicyExceptions and keeps those that count: in a
// designated namespace and unexpired. A malformed one fails; one that does
// not count is a warning saying why.
func (l *loader) exceptions(objs []Object, namespaces []string) *honoured {
	h := &honoured{refs: map[string]*policies.ExceptionRef{}}
	now := time.Now()
	for _, o := range objs {
		if o.Object == nil {
			l.fail(o.Source, "", "", errors.New("not an object"))
			continue
		}
		apiVersion, _ := o.Object["apiVersion"].(string)
		kind, _ := o.Object["kind"].(string)
		group, version, _ := strings.Cut(apiVersion, "/")
		meta, _ := o.Object["metadata"].(map[string]any)
		ns, _ := meta["namespace"].(string)
		name, _ := meta["name"].(string)
		id := "PolicyException/" + ns + "/" + name
		if kind != "PolicyException" || (group != "kyverno.io" && group != "policies.kyverno.io") {
			l.fail(o.Source, kind+"/"+name, "", fmt.Errorf("%s %s is not a Kyverno PolicyException (kyverno.io/v2 or policies.kyverno.io/v1)", apiVersion, kind))
			continue
		}
		var objMeta interface {
			GetNamespace() string
			GetName() string
			GetAnnotations() map[string]string
		}
		var expires time.Time
		var add func()
		switch {
		case group == "kyverno.io" && (version == "v2" || version == "v2beta1"):
			x := &kyvernov2.PolicyException{}
			if err := strict(o.Object, x); err != nil {
				l.fail(o.Source, id, "", err)
				continue
			}
			var errs []error
			if len(x.Spec.Exceptions) == 0 {
				errs = append(errs, errors.New("spec.exceptions: Required value: name the policies and rules it excuses"))
			}
			for _, fe := range x.Validate() {
				errs = append(errs, fe)
			}
			if len(errs) > 0 {
				l.fail(o.Source, id, "", errors.Join(errs...))
				continue
			}
			objMeta = x
			add = func() { h.kyverno = append(h.kyverno, &kyvernoException{source: o.Source, id: id, x: x}) }
		case group == "policies.kyverno.io" && (version == "v1" || version == "v1beta1" || version == "v1alpha1"):
			x := &policiesv1beta1.PolicyException{}
			if err := strict(o.Object, x); err != nil {
				l.fail(o.Source, id, "", err)
				continue
			}
			if errs := x.Validate(); len(errs) > 0 {
				l.fail(o.Source, id, "", errs.ToAggregate())
				continue
			}
			if mode := x.Spec.EvaluationMode; mode != "" && mode != "Kubernetes" {
				l.warn(o.Source, id, "", fmt.Sprintf("evaluation mode %s is not run by Tollgate; ignored", mode))
				continue
			}
			objMeta = x
			if x.Spec.ExpiresAt != nil {
				expires = x.Spec.ExpiresAt.UTC()
			}
			add = func() { h.cel = append(h.cel, &celException{source: o.Source, id: id, x: x}) }
		default:
			l.fail(o.Source, id, "", fmt.Errorf("unknown version %s of PolicyException (want kyverno.io/v2, kyverno.io/v2beta1 or policies.kyverno.io/v1, v1beta1, v1alpha1)", apiVersion))
			continue
		}
		switch {
		case name == "":
			l.fail(o.Source, id, "", errors.New("metadata.name is required"))
			continue
		case ns == "" && !matchGlobs(namespaces, ns):
			l.warn(o.Source, id, "", "not honoured: it has no metadata.namespace, and exceptions count only in the namespaces the config designates (exceptions.namespaces: "+designated(namespaces)+")")
			continue
		case !matchGlobs(namespaces, ns):
			l.warn(o.Source, id, "", fmt.Sprintf("not honoured: namespace %s is not one the config designates for exceptions (exceptions.namespaces: %s)", ns, designated(namespaces)))
			continue
		case !expires.IsZero() && !now.Before(expires):
			l.warn(o.Source, id, "", "not honoured: expired at "+expires.Format(time.RFC3339))
			continue
		}
		key := ns + "/" + name
		if _, dup := h.refs[key]; dup {
			l.fail(o.Source, id, "", errors.New("defined twice"))
			continue
		}
		a := objMeta.GetAnnotations()
		h.refs[key] = &policies.ExceptionRef{
			Namespace: ns, Name: name,
			Reason:   firstOf(a[annotationReason], a[annotationKyvernoDescription], "Kyverno PolicyException"),
			Ticket:   a[annotationTicket],
			Approver: a[annotationApprover],
			Expires:  expires,
		}
		add()
	}
	return h
}

// checkReferences warns about each exception entry naming a policy that
// is not loaded: it excuses nothing, which is likely a typo.
func (l *loader) checkReferences(h *honoured, validate, mutate []*policy, vpols map[string]*policies.Metadata, mpols map[string]*mpolInfo) {
	loaded := map[string]bool{}
	for _, p := range slices.Concat(validate, mutate) {
		key := p.policy.GetName()
		if p.policy.IsNamespaced() {
			key = p.policy.GetNamespace() + "/" + key
		}
		loaded[key] = true
	}
	for _, k := range h.kyverno {
		for i, entry := range k.x.Spec.Exceptions {
			if !loaded[entry.PolicyName] {
				l.warn(k.source, k.id, "", fmt.Sprintf("spec.exceptions[%d]: policy %q is not loaded (a ClusterPolicy is named by its name, a Policy by namespace/name); this entry excuses nothing", i, entry.PolicyName))
			}
		}
	}
	for _, c := range h.cel {
		for i, ref := range c.x.Spec.PolicyRefs {
			found := false
			switch ref.Kind {
			case "ValidatingPolicy":
				_, found = vpols[ref.Name]
			case "MutatingPolicy":
				_, found = mpols[ref.Name]
			}
			if !found {
				l.warn(c.source, c.id, "", fmt.Sprintf("spec.policyRefs[%d]: %s %q is not loaded; this reference excuses nothing", i, ref.Kind, ref.Name))
			}
		}
	}
}

// named are the CEL exceptions that refer to the policy kind/name.
func named(exs []*celException, kind, name string) []*celException {
	var out []*celException
	for _, c := range exs {
		if slices.ContainsFunc(c.x.Spec.PolicyRefs, func(r policiesv1beta1.PolicyRef) bool { return r.Kind == kind && r.Name == name }) {
			out = append(out, c)
		}
	}
	return out
}

// compilingExceptions compiles a CEL policy with each exception naming it
// alone, so that one whose matchConditions do not compile fails on its own
// object (and is left out) rather than breaking the policy. It returns
// the exceptions that compile.
func (l *loader) compilingExceptions(policyID string, exs []*celException, compile func([]*policiesv1beta1.PolicyException) error) []*policiesv1beta1.PolicyException {
	var good []*policiesv1beta1.PolicyException
	for _, c := range exs {
		if err := compile([]*policiesv1beta1.PolicyException{c.x}); err != nil {
			l.fail(c.source, c.id, "", fmt.Errorf("does not compile for %s: %w", policyID, err))
			continue
		}
		good = append(good, c.x)
	}
	return good
}

// exceptionLister lists the honoured kyverno.io exceptions to Kyverno's
// exception selector, as the Kyverno CLI does with the files it is given.
type exceptionLister []*kyvernoException

// List implements Kyverno's exceptions.Lister.
func (x exceptionLister) List(selector labels.Selector) ([]*kyvernov2.PolicyException, error) {
	var out []*kyvernov2.PolicyException
	for _, k := range x {
		if selector.Matches(labels.Set(k.x.GetLabels())) {
			out = append(out, k.x)
		}
	}
	return out, nil
}

// refOf is how a finding refers to the first honoured exception among
// those Kyverno's engine applied.
func (e *Evaluator) refOf(exs []engineapi.GenericException) *policies.ExceptionRef {
	for _, x := range exs {
		if ref := e.refs[x.GetNamespace()+"/"+x.GetName()]; ref != nil {
			out := *ref
			return &out
		}
	}
	return nil
}

func designated(namespaces []string) string {
	if len(namespaces) == 0 {
		return "none designated"
	}
	return strings.Join(namespaces, ", ")
}

// matchGlobs reports whether s matches one of the patterns (path.Match
// globs, as Tollgate's config uses for exceptions.namespaces).
func matchGlobs(patterns []string, s string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, s); ok {
			return true
		}
	}
	return false
}

func firstOf(ss ...string) string {
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	return ""
}
