package gatekeeper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/open-policy-agent/frameworks/constraint/pkg/client/drivers"
	clienterrors "github.com/open-policy-agent/frameworks/constraint/pkg/client/errors"
	"github.com/open-policy-agent/frameworks/constraint/pkg/client/reviews"
	"github.com/open-policy-agent/frameworks/constraint/pkg/types"
	mutationtypes "github.com/open-policy-agent/gatekeeper/v3/pkg/mutation/types"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/target"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/util"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tollgate-dev/tollgate/policies"
)

// Evaluate judges one input against every constraint whose match selects
// it, as Gatekeeper would at the enforcement point of in.Source:
// policies.SourceAdmission is Gatekeeper's webhook
// ("validation.gatekeeper.sh"), SourceAudit its audit
// ("audit.gatekeeper.sh"), SourceCheck gator ("gator.gatekeeper.sh").
//
// It never fails as a whole: a constraint that errors, panics or runs out
// of time is a *policies.PolicyError and the others still report.
// Decision.Applied counts the constraints that matched the object.
func (e *Evaluator) Evaluate(ctx context.Context, in *policies.Input) *policies.Decision {
	d := &policies.Decision{Findings: []policies.Finding{}}
	if len(e.constraints) == 0 {
		return d
	}
	ep, ok := enforcementPoint(in.Source)
	if !ok {
		e.failAll(d, fmt.Errorf("input source %q is not admission, audit or check", in.Source))
		return d
	}
	review, opts, err := reviewFor(in, ep)
	if err != nil {
		e.failAll(d, err)
		return d
	}

	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	p := newProbe()
	resp, err := e.review(context.WithValue(ctx, probeKey{}, p), review, opts)
	if err != nil {
		e.failAll(d, err)
		return d
	}

	applied := p.matched
	for _, r := range resp.Results() {
		key := drivers.ConstraintKeyFrom(r.Constraint)
		m := e.constraints[key]
		if m == nil {
			continue
		}
		applied[key] = true
		// The client could not tell whether the constraint matches
		// (Gatekeeper then denies): an error, not a violation.
		if strings.HasPrefix(r.Msg, clienterrors.ErrAutoreject.Error()) {
			p.fail(r.Constraint, errors.New(r.Msg))
			continue
		}
		action := tollgateAction(r.EnforcementAction)
		if r.EnforcementAction == string(util.Scoped) {
			action = strongest(r.ScopedEnforcementActions)
		}
		if action == "" {
			continue
		}
		d.Findings = append(d.Findings, finding(m, r, action))
	}
	for key, err := range p.errs {
		if m := e.constraints[key]; m != nil {
			applied[key] = true
			d.Errors = append(d.Errors, &policies.PolicyError{Policy: m.ID, Err: err})
		}
	}
	d.Applied = len(applied)
	slices.SortFunc(d.Findings, func(a, b policies.Finding) int {
		if c := strings.Compare(a.Policy, b.Policy); c != 0 {
			return c
		}
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Message, b.Message)
	})
	slices.SortFunc(d.Errors, func(a, b *policies.PolicyError) int { return strings.Compare(a.Policy, b.Policy) })
	return d
}

// review runs the client's review, a panic outside the drivers (in the
// target or a matcher) becoming an error.
func (e *Evaluator) review(ctx context.Context, review any, opts []reviews.ReviewOpt) (resp *types.Responses, err error) {
	defer func() {
		if r := recover(); r != nil {
			resp, err = nil, fmt.Errorf("%w: %v", errPanic, r)
		}
	}()
	return e.client.Review(ctx, review, opts...)
}

// failAll records err for every constraint: the input could not be
// reviewed at all, so none can be said to pass.
func (e *Evaluator) failAll(d *policies.Decision, err error) {
	for _, m := range e.metas {
		d.Errors = append(d.Errors, &policies.PolicyError{Policy: m.ID, Err: err})
	}
	d.Applied = len(e.metas)
}

func finding(m *policies.Metadata, r *types.Result, action policies.Action) policies.Finding {
	return policies.Finding{
		Policy:      m.ID,
		Title:       m.Title,
		Message:     r.Msg,
		Severity:    m.Severity,
		Action:      action,
		Path:        detailsPath(r.Metadata),
		Controls:    m.Controls,
		Remediation: m.Remediation,
	}
}

// detailsPath reads the offending field from a violation's details, when
// the template names one: details.path as a string
// ("spec.containers[0].image") or a list of keys and indexes.
func detailsPath(meta map[string]any) string {
	details, _ := meta["details"].(map[string]any)
	switch p := details["path"].(type) {
	case string:
		return p
	case []any:
		segs := make([]any, 0, len(p))
		for _, s := range p {
			switch v := s.(type) {
			case string:
				segs = append(segs, v)
			case float64:
				segs = append(segs, int(v))
			case int64:
				segs = append(segs, int(v))
			case json.Number:
				n, err := v.Int64()
				if err != nil {
					return ""
				}
				segs = append(segs, int(n))
			default:
				return ""
			}
		}
		return policies.FormatPath(segs)
	}
	return ""
}

// reviewFor builds what Gatekeeper reviews at enforcement point ep. In
// admission that is the webhook's AugmentedReview: the admission request
// and the Namespace object. In audit and check it is the audit's and
// gator's AugmentedUnstructured: the object and its Namespace. The
// Namespace is also passed as a review option, as Gatekeeper does, for
// CEL's namespaceObject and Rego's input.review.namespaceObject.
func reviewFor(in *policies.Input, ep string) (any, []reviews.ReviewOpt, error) {
	opts := []reviews.ReviewOpt{reviews.EnforcementPoint(ep)}
	isNamespace := in.Kind.Group == "" && in.Kind.Kind == "Namespace"
	var ns *corev1.Namespace
	// Gatekeeper reviews a Namespace without a namespace of its own.
	if in.Namespace != nil && !isNamespace {
		ns = &corev1.Namespace{}
		raw, err := json.Marshal(in.Namespace)
		if err == nil {
			err = json.Unmarshal(raw, ns)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("reading the Namespace: %w", err)
		}
		nsMap, err := util.NamespaceToMap(ns)
		if err != nil {
			return nil, nil, fmt.Errorf("reading the Namespace: %w", err)
		}
		opts = append(opts, reviews.Namespace(nsMap))
	}

	if in.Source == policies.SourceAdmission {
		req, err := admissionRequest(in, ns, isNamespace)
		if err != nil {
			return nil, nil, err
		}
		return &target.AugmentedReview{
			AdmissionRequest: req,
			Namespace:        ns,
			Source:           mutationtypes.SourceTypeOriginal,
			IsAdmission:      true,
		}, opts, nil
	}

	if in.Object == nil {
		return nil, nil, errors.New("no object to review")
	}
	obj, _, err := normalize(in.Object)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the object: %w", err)
	}
	return &target.AugmentedUnstructured{
		Object:    unstructured.Unstructured{Object: obj},
		Namespace: ns,
		Source:    mutationtypes.SourceTypeOriginal,
	}, opts, nil
}

// admissionRequest rebuilds the admission request an input came from, with
// the fields the Input keeps: kind, name, namespace, operation, userInfo,
// object, oldObject, dryRun and subResource.
func admissionRequest(in *policies.Input, ns *corev1.Namespace, isNamespace bool) (*admissionv1.AdmissionRequest, error) {
	dryRun := in.DryRun
	req := &admissionv1.AdmissionRequest{
		Kind:        metav1.GroupVersionKind{Group: in.Kind.Group, Version: in.Kind.Version, Kind: in.Kind.Kind},
		SubResource: in.SubResource,
		Operation:   admissionv1.Operation(in.Operation),
		DryRun:      &dryRun,
	}
	if u := in.UserInfo; u != nil {
		req.UserInfo = authenticationv1.UserInfo{Username: u.Username, UID: u.UID, Groups: u.Groups}
		if len(u.Extra) > 0 {
			req.UserInfo.Extra = make(map[string]authenticationv1.ExtraValue, len(u.Extra))
			for k, v := range u.Extra {
				req.UserInfo.Extra[k] = v
			}
		}
	}
	var err error
	if req.Object.Raw, err = marshalObject(in.Object); err != nil {
		return nil, fmt.Errorf("encoding the object: %w", err)
	}
	if req.OldObject.Raw, err = marshalObject(in.OldObject); err != nil {
		return nil, fmt.Errorf("encoding the old object: %w", err)
	}
	obj := in.Object
	if obj == nil {
		obj = in.OldObject
	}
	meta, _ := obj["metadata"].(map[string]any)
	req.Name, _ = meta["name"].(string)
	req.Namespace, _ = meta["namespace"].(string)
	if req.Namespace == "" && ns != nil {
		req.Namespace = ns.Name
	}
	// Gatekeeper's webhook clears the namespace of a Namespace request.
	if isNamespace {
		req.Namespace = ""
	}
	return req, nil
}

func marshalObject(obj map[string]any) ([]byte, error) {
	if obj == nil {
		return nil, nil
	}
	return json.Marshal(obj)
}
