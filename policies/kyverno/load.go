package kyverno

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	policiesv1beta1 "github.com/kyverno/api/api/policies.kyverno.io/v1beta1"
	kyvernov1 "github.com/kyverno/kyverno/api/kyverno/v1"
	"github.com/kyverno/kyverno/pkg/config"
	engineapi "github.com/kyverno/kyverno/pkg/engine/api"
	policyvalidation "github.com/kyverno/kyverno/pkg/validation/policy"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	kjson "sigs.k8s.io/json"

	"github.com/tollgate-dev/tollgate/policies"
)

// Annotations read on policies. Tollgate's own win over Kyverno's.
const (
	annotationSeverity    = "tollgate.dev/severity"
	annotationControls    = "tollgate.dev/controls"
	annotationRemediation = "tollgate.dev/remediation"
	// The annotations Kyverno's policies carry.
	annotationKyvernoTitle       = "policies.kyverno.io/title"
	annotationKyvernoSeverity    = "policies.kyverno.io/severity"
	annotationKyvernoCategory    = "policies.kyverno.io/category"
	annotationKyvernoDescription = "policies.kyverno.io/description"
)

// loader collects what Compile loads, fails and warns about.
type loader struct {
	errs     []error
	warnings []Warning
	// names are the IDs loaded so far, by the source that loaded them.
	names map[string]string
}

func (l *loader) fail(source, pol, rule string, err error) {
	l.errs = append(l.errs, &LoadError{Source: source, Policy: pol, Rule: rule, Err: err})
}

func (l *loader) warn(source, pol, rule, msg string) {
	l.warnings = append(l.warnings, Warning{Source: source, Policy: pol, Rule: rule, Message: msg})
}

// claim records id as loaded from source; a second policy with the same id
// fails.
func (l *loader) claim(source, id string) bool {
	if first, ok := l.names[id]; ok {
		l.fail(source, id, "", fmt.Errorf("defined twice (first in %s)", first))
		return false
	}
	l.names[id] = source
	return true
}

// strict decodes an object into a typed policy, failing on unknown and
// duplicate fields the way the API server's strict field validation does.
func strict(obj map[string]any, into any) error {
	raw, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	strictErrs, err := kjson.UnmarshalStrict(raw, into, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strictErrs...)
}

// kyvernoPolicy loads a kyverno.io ClusterPolicy or Policy; other
// kyverno.io kinds are warned about. It returns nil when nothing of the
// object runs.
func (l *loader) kyvernoPolicy(o Object, version, kind string) *policy {
	name := objectName(o.Object)
	var p kyvernov1.PolicyInterface
	switch {
	case kind == "ClusterPolicy" && (version == "v1" || version == "v2beta1"):
		cp := &kyvernov1.ClusterPolicy{}
		if err := strict(o.Object, cp); err != nil {
			l.fail(o.Source, "ClusterPolicy/"+name, "", err)
			return nil
		}
		p = cp
	case kind == "Policy" && (version == "v1" || version == "v2beta1"):
		np := &kyvernov1.Policy{}
		if err := strict(o.Object, np); err != nil {
			l.fail(o.Source, "Policy/"+name, "", err)
			return nil
		}
		if np.Namespace == "" {
			l.fail(o.Source, "Policy/"+name, "", errors.New("a Policy needs metadata.namespace (a ClusterPolicy does not)"))
			return nil
		}
		p = np
	case kind == "CleanupPolicy" || kind == "ClusterCleanupPolicy":
		l.warn(o.Source, kind+"/"+name, "", "cleanup policies are not run by Tollgate; ignored")
		return nil
	case kind == "PolicyException":
		return nil // Compile reads them first
	default:
		return nil
	}
	id := policyID(p)
	if p.GetName() == "" {
		l.fail(o.Source, id, "", errors.New("metadata.name is required"))
		return nil
	}

	// Keep the rules Tollgate runs; warn about the others by name.
	spec := p.GetSpec()
	kept := spec.Rules[:0:0]
	for i := range spec.Rules {
		r := &spec.Rules[i]
		var dropped []string
		if r.HasGenerate() {
			dropped = append(dropped, "generate")
		}
		if r.HasVerifyImages() {
			dropped = append(dropped, "verifyImages (Tollgate's image policies verify signatures)")
		}
		if r.HasMutateExisting() {
			dropped = append(dropped, "mutate of existing resources (mutateExistingOnPolicyUpdate / targets)")
		}
		if len(dropped) > 0 {
			l.warn(o.Source, id, r.Name, strings.Join(dropped, ", ")+": not run by Tollgate; rule ignored")
			continue
		}
		kept = append(kept, *r)
	}
	if len(kept) == 0 {
		l.warn(o.Source, id, "", "no rule Tollgate runs; policy ignored")
		return nil
	}
	// Validate the whole policy the way `kyverno apply` does, before the
	// rules are cut down: a broken rule that is not run is still broken.
	if err := validatePolicy(p); err != nil {
		l.fail(o.Source, id, ruleOf(err, spec.Rules), err)
		return nil
	}
	if len(kept) != len(spec.Rules) {
		p = p.CreateDeepCopy()
		p.GetSpec().Rules = kept
	}
	if !l.claim(o.Source, id) {
		return nil
	}
	meta, err := metadata(id, p.GetAnnotations())
	if err != nil {
		l.fail(o.Source, id, "", err)
		return nil
	}
	meta.Source = o.Source
	meta.Action = policyAction(p)
	return &policy{meta: meta, policy: p}
}

// validatePolicy runs Kyverno's policy validation without a cluster, as the
// CLI does; a panic in it (a check that needs a cluster) is an error.
func validatePolicy(p kyvernov1.PolicyInterface) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("policy validation needs a cluster for this policy: %v", r)
		}
	}()
	sa := config.KyvernoUserName(config.KyvernoServiceAccountName())
	_, err = policyvalidation.Validate(p, nil, nil, true, sa, sa)
	return err
}

var ruleIndex = regexp.MustCompile(`spec\.rules\[(\d+)\]`)

// ruleOf names the rule a validation error points at (spec.rules[N]...,
// or "rule <name>" in Kyverno's messages), or "" when it does not.
func ruleOf(err error, rules []kyvernov1.Rule) string {
	msg := err.Error()
	if m := ruleIndex.FindStringSubmatch(msg); m != nil {
		if i, convErr := strconv.Atoi(m[1]); convErr == nil && i < len(rules) {
			return rules[i].Name
		}
	}
	best := ""
	for _, r := range rules {
		if r.Name != "" && len(r.Name) > len(best) && ruleNamed(msg, r.Name) {
			best = r.Name
		}
	}
	return best
}

// ruleNamed reports whether msg names the rule: "rule <name>" followed by
// the end, a space, a colon or a quote.
func ruleNamed(msg, name string) bool {
	for _, form := range []string{"rule " + name, "rule '" + name + "'", "rule \"" + name + "\""} {
		for i := strings.Index(msg, form); i >= 0; {
			end := i + len(form)
			if end == len(msg) || strings.ContainsRune(" :,'\"", rune(msg[end])) {
				return true
			}
			next := strings.Index(msg[end:], form)
			if next < 0 {
				break
			}
			i = end + next
		}
	}
	return false
}

// celPolicy loads a policies.kyverno.io ValidatingPolicy, compiled with
// the honoured exceptions that name it; the other CEL kinds Tollgate does
// not run are warned about.
func (l *loader) celPolicy(o Object, version, kind string, exs []*celException) *compiledVPOL {
	name := objectName(o.Object)
	id := kind + "/" + name
	if !l.celVersion(o.Source, id, version) {
		return nil
	}
	if kind != "ValidatingPolicy" {
		l.warn(o.Source, id, "", kind+" is not run by Tollgate yet; ignored")
		return nil
	}
	vp := &policiesv1beta1.ValidatingPolicy{}
	if err := strict(o.Object, vp); err != nil {
		l.fail(o.Source, id, "", err)
		return nil
	}
	if vp.Name == "" {
		l.fail(o.Source, id, "", errors.New("metadata.name is required"))
		return nil
	}
	if mode := vp.Spec.EvaluationMode(); mode != "" && mode != "Kubernetes" {
		l.warn(o.Source, id, "", fmt.Sprintf("evaluation mode %s is not run by Tollgate; ignored", mode))
		return nil
	}
	plain, err := compileVPOL(vp, nil)
	if err != nil {
		l.fail(o.Source, id, ruleOfCEL(err), err)
		return nil
	}
	v := &compiledVPOL{policy: vp, compiled: plain}
	good := l.compilingExceptions(id, named(exs, kind, vp.Name), func(x []*policiesv1beta1.PolicyException) error {
		_, err := compileVPOL(vp, x)
		return err
	})
	if len(good) > 0 {
		if v.compiled, err = compileVPOL(vp, good); err != nil {
			l.fail(o.Source, id, ruleOfCEL(err), err)
			return nil
		}
		v.plain = plain
	}
	if !l.claim(o.Source, id) {
		return nil
	}
	meta, err := metadata(id, vp.GetAnnotations())
	if err != nil {
		l.fail(o.Source, id, "", err)
		return nil
	}
	meta.Source = o.Source
	meta.Action = vpolAction(vp.Spec.ValidationActions())
	v.meta = meta
	return v
}

// celVersion checks the version of a policies.kyverno.io object.
func (l *loader) celVersion(source, id, version string) bool {
	switch version {
	case "v1", "v1beta1", "v1alpha1":
		return true
	}
	l.fail(source, id, "", fmt.Errorf("unknown version policies.kyverno.io/%s (want v1, v1beta1 or v1alpha1)", version))
	return false
}

var celIndex = regexp.MustCompile(`spec\.(validations|mutations|matchConditions|variables|auditAnnotations)\[(\d+)\]`)

// ruleOfCEL names the part of a CEL policy a compile error points at, as
// "validations[N]" or "mutations[N]" (they have no names).
func ruleOfCEL(err error) string {
	if m := celIndex.FindStringSubmatch(err.Error()); m != nil {
		return m[1] + "[" + m[2] + "]"
	}
	return ""
}

// policyID names a kyverno.io policy in findings: "ClusterPolicy/<name>" or
// "Policy/<namespace>/<name>".
func policyID(p kyvernov1.PolicyInterface) string {
	if p.IsNamespaced() {
		return "Policy/" + p.GetNamespace() + "/" + p.GetName()
	}
	return "ClusterPolicy/" + p.GetName()
}

func objectName(obj map[string]any) string {
	meta, _ := obj["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	if ns, _ := meta["namespace"].(string); ns != "" && obj["kind"] == "Policy" {
		return ns + "/" + name
	}
	return name
}

// policyAction is a policy's action as a whole (what an error in it does):
// enforce when any validate rule, or the spec, enforces; audit otherwise.
func policyAction(p kyvernov1.PolicyInterface) policies.Action {
	spec := p.GetSpec()
	for _, r := range spec.Rules {
		if r.HasValidate() && r.Validation.FailureAction != nil && r.Validation.FailureAction.Enforce() {
			return policies.ActionEnforce
		}
	}
	if spec.HasValidate() && spec.ValidationFailureAction.Enforce() {
		return policies.ActionEnforce
	}
	return policies.ActionAudit
}

// vpolAction maps a ValidatingPolicy's validationActions to the strongest
// Tollgate action: Deny enforces, Warn warns, Audit audits.
func vpolAction(actions []admissionregistrationv1.ValidationAction) policies.Action {
	out := policies.ActionAudit
	for _, a := range actions {
		switch a {
		case admissionregistrationv1.Deny:
			return policies.ActionEnforce
		case admissionregistrationv1.Warn:
			out = policies.ActionWarn
		}
	}
	return out
}

// metadata reads a policy's title, severity, controls and remediation from
// Tollgate's annotations, then Kyverno's. A Kyverno category that names a
// Pod Security Standards level maps to that level's control.
func metadata(id string, a map[string]string) (policies.Metadata, error) {
	m := policies.Metadata{
		ID: id, Title: a[annotationKyvernoTitle], Description: a[annotationKyvernoDescription],
		Severity: policies.SeverityMedium, Scope: policies.ScopeObject,
		Remediation: strings.TrimSpace(a[annotationRemediation]),
	}
	field := func(key string) string { return "metadata.annotations[" + strconv.Quote(key) + "]" }
	var errs []error
	if s, ok := a[annotationKyvernoSeverity]; ok {
		sev, err := policies.ParseSeverity(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field(annotationKyvernoSeverity), err))
		} else {
			m.Severity = sev
		}
	}
	if s, ok := a[annotationSeverity]; ok {
		sev, err := policies.ParseSeverity(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field(annotationSeverity), err))
		} else {
			m.Severity = sev
		}
	}
	category := strings.ToLower(a[annotationKyvernoCategory])
	switch {
	case strings.Contains(category, "pod security standards (baseline)"):
		m.Controls = []policies.Control{{Framework: "pss", ID: "baseline"}}
	case strings.Contains(category, "pod security standards (restricted)"):
		m.Controls = []policies.Control{{Framework: "pss", ID: "restricted"}}
	}
	if s, ok := a[annotationControls]; ok {
		m.Controls = []policies.Control{}
		for item := range strings.SplitSeq(s, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			fw, cid, ok := strings.Cut(item, ":")
			fw, cid = strings.TrimSpace(fw), strings.TrimSpace(cid)
			if !ok || fw == "" || cid == "" {
				errs = append(errs, fmt.Errorf("%s: %q: want framework:id, e.g. cis:5.2.1", field(annotationControls), item))
				continue
			}
			m.Controls = append(m.Controls, policies.Control{Framework: fw, ID: cid})
		}
	}
	return m, errors.Join(errs...)
}

// offlineRegistry is the registry client factory of an offline engine:
// context entries that read an image registry fail their rule.
type offlineRegistry struct{}

func (offlineRegistry) GetClient(context.Context, *kyvernov1.ImageRegistryCredentials, string, []string) (engineapi.RegistryClient, error) {
	return nil, errors.New("image registry lookups are not available to Kyverno policies in Tollgate")
}

var _ engineapi.RegistryClientFactory = offlineRegistry{}

// configMaps resolves the ConfigMaps given in Options for context entries.
type configMaps map[string]*corev1.ConfigMap

func newConfigMaps(objs []map[string]any) configMaps {
	out := configMaps{}
	for _, obj := range objs {
		if cm, err := toConfigMap(obj); err == nil {
			out[cm.Namespace+"/"+cm.Name] = cm
		}
	}
	return out
}

// Get implements engineapi.ConfigmapResolver.
func (c configMaps) Get(_ context.Context, namespace, name string) (*corev1.ConfigMap, error) {
	if cm, ok := c[namespace+"/"+name]; ok {
		return cm, nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource("configmaps"), namespace+"/"+name)
}

var _ engineapi.ConfigmapResolver = configMaps(nil)

func toConfigMap(obj map[string]any) (*corev1.ConfigMap, error) {
	if obj["apiVersion"] != "v1" || obj["kind"] != "ConfigMap" {
		return nil, fmt.Errorf("apiVersion %v kind %v: want a v1 ConfigMap", obj["apiVersion"], obj["kind"])
	}
	cm := &corev1.ConfigMap{}
	if err := strict(obj, cm); err != nil {
		return nil, err
	}
	if cm.Name == "" {
		return nil, errors.New("a ConfigMap needs metadata.name")
	}
	return cm, nil
}
