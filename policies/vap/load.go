package vap

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	sigsjson "sigs.k8s.io/json"

	"github.com/tollgate-dev/tollgate/policies"
)

const groupName = admissionregistrationv1.GroupName

// The kinds Compile loads.
const (
	kindVAP  = "ValidatingAdmissionPolicy"
	kindVAPB = "ValidatingAdmissionPolicyBinding"
	kindMAP  = "MutatingAdmissionPolicy"
	kindMAPB = "MutatingAdmissionPolicyBinding"
)

// The annotations Tollgate reads on policies and bindings.
const (
	AnnotationSeverity    = "tollgate.dev/severity"
	AnnotationControls    = "tollgate.dev/controls"
	AnnotationRemediation = "tollgate.dev/remediation"
	AnnotationTitle       = "tollgate.dev/title"
)

// loader gathers the objects of one Compile call, then links bindings to
// policies.
type loader struct {
	errs  []error
	vaps  map[string]*validatingPolicy
	vapbs []*validatingBinding
	maps  map[string]*mutatingPolicy
	mapbs []*admissionregistrationv1.MutatingAdmissionPolicyBinding
	// sources remembers where each loaded object came from, for errors
	// found while linking; broken names the policies that failed to load,
	// whose bindings need no second error.
	sources map[string]string
	broken  map[string]bool
	checker *checker
}

func newLoader() *loader {
	return &loader{
		vaps:    map[string]*validatingPolicy{},
		maps:    map[string]*mutatingPolicy{},
		sources: map[string]string{},
		broken:  map[string]bool{},
		checker: &checker{},
	}
}

// add loads one object if it is a policy or binding.
func (l *loader) add(obj Object) {
	apiVersion, _ := obj.Object["apiVersion"].(string)
	kind, _ := obj.Object["kind"].(string)
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil || gv.Group != groupName {
		return
	}
	switch kind {
	case kindVAP, kindVAPB, kindMAP, kindMAPB:
	default:
		return
	}
	meta, _ := obj.Object["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	key := kind + "/" + name
	fail := func(errs ...*field.Error) {
		for _, fe := range errs {
			l.errs = append(l.errs, &LoadError{Source: obj.Source, Object: key, Field: fe.Field, Err: errors.New(fe.ErrorBody())})
		}
	}
	if gv.Version != "v1" && gv.Version != "v1beta1" {
		fail(field.NotSupported(field.NewPath("apiVersion"), apiVersion, []string{groupName + "/v1", groupName + "/v1beta1"}))
		l.broken[key] = true
		return
	}
	if prev, dup := l.sources[key]; dup {
		fail(field.Duplicate(field.NewPath("metadata", "name"), fmt.Sprintf("%s, first loaded from %s", name, prev)))
		return
	}

	switch kind {
	case kindVAP:
		p := &admissionregistrationv1.ValidatingAdmissionPolicy{}
		if errs := decode(obj.Object, p); len(errs) > 0 {
			fail(errs...)
			l.broken[key] = true
			return
		}
		defaultValidatingPolicy(p)
		ann, annErrs := readAnnotations(p.Annotations)
		if errs := l.checker.validatingPolicy(p); len(errs) > 0 {
			fail(append(errs, annErrs...)...)
			l.broken[key] = true
			return
		}
		fail(annErrs...)
		l.vaps[name] = &validatingPolicy{
			policy:      p,
			validator:   compileValidating(p),
			meta:        metadataOf(p, ann, obj.Source),
			annotations: ann,
		}
	case kindVAPB:
		b := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{}
		if errs := decode(obj.Object, b); len(errs) > 0 {
			fail(errs...)
			return
		}
		defaultMatchResources(b.Spec.MatchResources)
		ann, annErrs := readAnnotations(b.Annotations)
		if errs := validateValidatingBinding(b); len(errs) > 0 {
			fail(append(errs, annErrs...)...)
			return
		}
		fail(annErrs...)
		l.vapbs = append(l.vapbs, &validatingBinding{binding: b, action: actionOf(b.Spec.ValidationActions), annotations: ann})
	case kindMAP:
		p := &admissionregistrationv1.MutatingAdmissionPolicy{}
		if errs := decode(obj.Object, p); len(errs) > 0 {
			fail(errs...)
			l.broken[key] = true
			return
		}
		defaultMutatingPolicy(p)
		if errs := l.checker.mutatingPolicy(p); len(errs) > 0 {
			fail(errs...)
			l.broken[key] = true
			return
		}
		l.maps[name] = &mutatingPolicy{policy: p, evaluator: compileMutating(p)}
	case kindMAPB:
		b := &admissionregistrationv1.MutatingAdmissionPolicyBinding{}
		if errs := decode(obj.Object, b); len(errs) > 0 {
			fail(errs...)
			return
		}
		defaultMatchResources(b.Spec.MatchResources)
		if errs := validateMutatingBinding(b); len(errs) > 0 {
			fail(errs...)
			return
		}
		l.mapbs = append(l.mapbs, b)
	}
	l.sources[key] = obj.Source
}

// link attaches bindings to their policies and returns the policies in
// name order, their bindings in name order. A binding whose policy is not
// loaded is an error (the API server would silently skip it), unless the
// policy was given but failed to load.
func (l *loader) link() ([]*validatingPolicy, []*mutatingPolicy) {
	for _, b := range l.vapbs {
		p, ok := l.vaps[b.binding.Spec.PolicyName]
		if !ok {
			l.missingPolicy(kindVAPB, b.binding.Name, kindVAP, b.binding.Spec.PolicyName)
			continue
		}
		p.bindings = append(p.bindings, b)
	}
	for _, b := range l.mapbs {
		p, ok := l.maps[b.Spec.PolicyName]
		if !ok {
			l.missingPolicy(kindMAPB, b.Name, kindMAP, b.Spec.PolicyName)
			continue
		}
		p.bindings = append(p.bindings, b)
	}

	vaps := make([]*validatingPolicy, 0, len(l.vaps))
	for _, p := range l.vaps {
		slices.SortFunc(p.bindings, func(a, b *validatingBinding) int { return strings.Compare(a.binding.Name, b.binding.Name) })
		p.meta.Action = policies.ActionDisabled
		for _, b := range p.bindings {
			if rank(b.action) > rank(p.meta.Action) {
				p.meta.Action = b.action
			}
		}
		vaps = append(vaps, p)
	}
	slices.SortFunc(vaps, func(a, b *validatingPolicy) int { return strings.Compare(a.policy.Name, b.policy.Name) })
	maps := make([]*mutatingPolicy, 0, len(l.maps))
	for _, p := range l.maps {
		slices.SortFunc(p.bindings, func(a, b *admissionregistrationv1.MutatingAdmissionPolicyBinding) int {
			return strings.Compare(a.Name, b.Name)
		})
		maps = append(maps, p)
	}
	slices.SortFunc(maps, func(a, b *mutatingPolicy) int { return strings.Compare(a.policy.Name, b.policy.Name) })
	return vaps, maps
}

func (l *loader) missingPolicy(bindingKind, bindingName, policyKind, policyName string) {
	if l.broken[policyKind+"/"+policyName] {
		return
	}
	key := bindingKind + "/" + bindingName
	l.errs = append(l.errs, &LoadError{
		Source: l.sources[key], Object: key, Field: "spec.policyName",
		Err: fmt.Errorf("%s %q is not among the loaded objects; the binding does nothing without it", policyKind, policyName),
	})
}

func rank(a policies.Action) int {
	switch a {
	case policies.ActionEnforce:
		return 3
	case policies.ActionWarn:
		return 2
	case policies.ActionAudit:
		return 1
	}
	return 0
}

// decode reads a JSON-shaped object into an API type the way the API
// server does with strict field validation: unknown and duplicate fields
// are errors, each with its path; so is a value of the wrong type.
func decode(obj map[string]any, into any) []*field.Error {
	data, err := json.Marshal(obj)
	if err != nil {
		return []*field.Error{field.Invalid(nil, nil, err.Error())}
	}
	strict, err := sigsjson.UnmarshalStrict(data, into)
	if err != nil {
		// The strict decoder's type errors are internal; encoding/json
		// reports the same ones with the field's path.
		var te *json.UnmarshalTypeError
		if errors.As(json.Unmarshal(data, reflect.New(reflect.TypeOf(into).Elem()).Interface()), &te) && te.Field != "" {
			return []*field.Error{field.Invalid(pathOf(te.Field), te.Value, "must be "+describe(te.Type))}
		}
		return []*field.Error{field.Invalid(nil, nil, err.Error())}
	}
	var out []*field.Error
	for _, e := range strict {
		var fe sigsjson.FieldError
		if errors.As(e, &fe) {
			msg := strings.TrimSuffix(fe.Error(), " "+strconv.Quote(fe.FieldPath()))
			out = append(out, &field.Error{Type: field.ErrorTypeForbidden, Field: fe.FieldPath(), Detail: msg})
			continue
		}
		out = append(out, field.Invalid(nil, nil, e.Error()))
	}
	return out
}

// pathOf turns encoding/json's dotted field path into a field.Path (its
// String is the same dotted path).
func pathOf(p string) *field.Path {
	parts := strings.Split(p, ".")
	return field.NewPath(parts[0], parts[1:]...)
}

// describe names the JSON type a Go type decodes from.
func describe(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return t.String()
}

// annotations are the tollgate.dev annotations of a policy or binding.
type annotations struct {
	severity    policies.Severity
	controls    []policies.Control
	remediation string
	title       string
}

func readAnnotations(a map[string]string) (annotations, []*field.Error) {
	var out annotations
	var errs []*field.Error
	path := field.NewPath("metadata", "annotations")
	if s, ok := a[AnnotationSeverity]; ok {
		sev, err := policies.ParseSeverity(s)
		if err != nil {
			errs = append(errs, field.Invalid(path.Key(AnnotationSeverity), s, err.Error()))
		}
		out.severity = sev
	}
	if s, ok := a[AnnotationControls]; ok {
		for _, c := range strings.Split(s, ",") {
			c = strings.TrimSpace(c)
			if c == "" {
				continue
			}
			framework, id, ok := strings.Cut(c, ":")
			framework, id = strings.TrimSpace(framework), strings.TrimSpace(id)
			if !ok || framework == "" || id == "" {
				errs = append(errs, field.Invalid(path.Key(AnnotationControls), c, "want framework:id, e.g. cis:5.2.1"))
				continue
			}
			out.controls = append(out.controls, policies.Control{Framework: framework, ID: id})
		}
	}
	out.remediation = strings.TrimSpace(a[AnnotationRemediation])
	out.title = strings.TrimSpace(a[AnnotationTitle])
	return out, errs
}

// merge returns the binding's annotations with the policy's filling in
// what the binding does not set.
func (a annotations) merge(policy annotations) annotations {
	if a.severity == "" {
		a.severity = policy.severity
	}
	if a.controls == nil {
		a.controls = policy.controls
	}
	if a.remediation == "" {
		a.remediation = policy.remediation
	}
	if a.title == "" {
		a.title = policy.title
	}
	return a
}

func metadataOf(p *admissionregistrationv1.ValidatingAdmissionPolicy, ann annotations, source string) policies.Metadata {
	m := policies.Metadata{
		ID:          policyID(kindVAP, p.Name),
		Title:       ann.title,
		Severity:    ann.severity,
		Scope:       policies.ScopeObject,
		Controls:    ann.controls,
		Remediation: ann.remediation,
		Source:      source,
	}
	if m.Title == "" {
		m.Title = p.Name
	}
	if m.Severity == "" {
		m.Severity = policies.SeverityMedium
	}
	return m
}
