package gatekeeper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	apiconstraints "github.com/open-policy-agent/frameworks/constraint/pkg/apis/constraints"
	templatesv1 "github.com/open-policy-agent/frameworks/constraint/pkg/apis/templates/v1"
	templatesv1alpha1 "github.com/open-policy-agent/frameworks/constraint/pkg/apis/templates/v1alpha1"
	templatesv1beta1 "github.com/open-policy-agent/frameworks/constraint/pkg/apis/templates/v1beta1"
	constraintclient "github.com/open-policy-agent/frameworks/constraint/pkg/client"
	"github.com/open-policy-agent/frameworks/constraint/pkg/client/crds"
	"github.com/open-policy-agent/frameworks/constraint/pkg/client/drivers"
	"github.com/open-policy-agent/frameworks/constraint/pkg/core/templates"
	celschema "github.com/open-policy-agent/gatekeeper/v3/pkg/drivers/k8scel/schema"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/mutation/match"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/target"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/util"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsvalidation "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"

	"github.com/tollgate-dev/tollgate/policies"
)

const (
	templatesGroup   = "templates.gatekeeper.sh"
	constraintsGroup = "constraints.gatekeeper.sh"

	// maxTemplateBytes is the largest template accepted, as JSON: etcd's
	// default request limit, so nothing bigger can exist in a cluster.
	maxTemplateBytes = 1536 << 10
)

// Annotations read on templates and constraints; a constraint's own
// annotation wins over its template's.
const (
	annotationSeverity    = "tollgate.dev/severity"
	annotationControls    = "tollgate.dev/controls"
	annotationRemediation = "tollgate.dev/remediation"
	// annotationTitle and annotationDescription are the gatekeeper-library's.
	annotationTitle       = "metadata.gatekeeper.sh/title"
	annotationDescription = "description"
)

// loader loads templates and constraints into the client, collecting a
// LoadError for each problem.
type loader struct {
	client *constraintclient.Client
	// templates are the loaded templates by the kind they define.
	templates map[string]*template
	// failedKinds are the kinds of templates that did not load, with the
	// template's source, so their constraints say why they have no template.
	failedKinds map[string]string
	// sources are the loaded constraints' sources, to report duplicates.
	sources map[drivers.ConstraintKey]string
	errs    []error
}

func (l *loader) fail(source, field string, err error) {
	l.errs = append(l.errs, &LoadError{Source: source, Field: field, Err: err})
}

// template is a loaded template and what constraints inherit from it.
type template struct {
	source      string
	crd         *apiextensions.CustomResourceDefinition
	title       string
	description string
	annotations
}

// annotations are Tollgate's annotations, read and checked.
type annotations struct {
	severity    policies.Severity // empty: not set
	controls    []policies.Control
	remediation string
}

// loadedConstraint is a constraint the client accepted.
type loadedConstraint struct {
	kind, name string
	meta       policies.Metadata
	kinds      []policies.GroupVersionKind
}

// normalize makes a JSON-shaped object (json.Number, int, float64...)
// into the shape Kubernetes' unstructured code expects (int64, float64),
// returning its JSON encoding too.
func normalize(obj map[string]any) (map[string]any, []byte, error) {
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, nil, err
	}
	var out map[string]any
	if err := utiljson.Unmarshal(raw, &out); err != nil {
		return nil, nil, err
	}
	return out, raw, nil
}

func (l *loader) addTemplate(ctx context.Context, o Object) {
	obj, raw, err := normalize(o.Object)
	if err != nil {
		l.fail(o.Source, "", fmt.Errorf("not a JSON object: %w", err))
		return
	}
	kind, _, _ := unstructured.NestedString(obj, "spec", "crd", "spec", "names", "kind")
	before := len(l.errs)
	defer func() {
		if len(l.errs) > before && kind != "" && l.templates[kind] == nil {
			l.failedKinds[kind] = o.Source
		}
	}()
	if len(raw) > maxTemplateBytes {
		l.fail(o.Source, "", fmt.Errorf("template is %d bytes, more than the %d a cluster stores", len(raw), maxTemplateBytes))
		return
	}
	tmpl, field, err := decodeTemplate(obj)
	if err != nil {
		l.fail(o.Source, field, err)
		return
	}

	// What the framework client checks first, reported field by field.
	switch {
	case kind == "":
		l.fail(o.Source, "spec.crd.spec.names.kind", errors.New("required"))
	case tmpl.Name != strings.ToLower(kind):
		l.fail(o.Source, "metadata.name", fmt.Errorf("%q must be the lowercase of spec.crd.spec.names.kind %q", tmpl.Name, kind))
	case l.templates[kind] != nil:
		l.fail(o.Source, "spec.crd.spec.names.kind", fmt.Errorf("kind %s is already defined by %s", kind, l.templates[kind].source))
	}
	if len(tmpl.Spec.Targets) != 1 {
		l.fail(o.Source, "spec.targets", fmt.Errorf("want exactly one target, found %d", len(tmpl.Spec.Targets)))
	} else {
		t := tmpl.Spec.Targets[0]
		if t.Target != target.Name {
			l.fail(o.Source, "spec.targets[0].target", fmt.Errorf("%q: want %s", t.Target, target.Name))
		}
		// Gatekeeper's webhook refuses "*" among other operations.
		if slices.Contains(t.Operations, "*") && len(t.Operations) > 1 {
			l.fail(o.Source, "spec.targets[0].operations", errors.New(`"*" must be the only operation`))
		}
	}
	for _, fe := range checkCEL(tmpl) {
		l.fail(o.Source, fe.field, fe.err)
	}
	ann, annErrs := readAnnotations(tmpl.Annotations)
	for _, fe := range annErrs {
		l.fail(o.Source, fe.field, fe.err)
	}
	if len(l.errs) > before {
		return
	}

	crd, err := l.client.CreateCRD(ctx, tmpl)
	if err != nil {
		for _, fe := range diagnoseSchema(ctx, tmpl, err) {
			l.fail(o.Source, fe.field, fe.err)
		}
		return
	}
	if _, err := l.client.AddTemplate(ctx, tmpl); err != nil {
		field, err := diagnoseCode(obj, tmpl, err)
		l.fail(o.Source, field, err)
		return
	}
	l.templates[kind] = &template{
		source:      o.Source,
		crd:         crd,
		title:       tmpl.Annotations[annotationTitle],
		description: tmpl.Annotations[annotationDescription],
		annotations: ann,
	}
}

// decodeTemplate converts a template of any served version to the
// framework's versionless form, with the version's defaults applied, as
// gator does. A field of the wrong type is reported with its path.
func decodeTemplate(obj map[string]any) (*templates.ConstraintTemplate, string, error) {
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, "", err
	}
	apiVersion, _ := obj["apiVersion"].(string)
	var versioned interface {
		ToVersionless() (*templates.ConstraintTemplate, error)
	}
	switch apiVersion {
	case templatesv1.SchemeGroupVersion.String():
		versioned = &templatesv1.ConstraintTemplate{}
	case templatesv1beta1.SchemeGroupVersion.String():
		versioned = &templatesv1beta1.ConstraintTemplate{}
	case templatesv1alpha1.SchemeGroupVersion.String():
		versioned = &templatesv1alpha1.ConstraintTemplate{}
	default:
		return nil, "apiVersion", fmt.Errorf("%q: want %s/v1, v1beta1 or v1alpha1", apiVersion, templatesGroup)
	}
	if err := json.Unmarshal(raw, versioned); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return nil, typeErr.Field, fmt.Errorf("want %s, found %s", kindName(typeErr.Type), typeErr.Value)
		}
		return nil, "", err
	}
	tmpl, err := versioned.ToVersionless()
	if err != nil {
		return nil, "", err
	}
	return tmpl, "", nil
}

// kindName says what a Go type is as JSON.
func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Pointer:
		return kindName(t.Elem())
	default:
		return "a number"
	}
}

// regoFile finds the module an OPA error is about in the names the Rego
// driver gives them: "template" for the template's rego, libs["lib_N"]
// for its libs. The row follows.
var regoFile = regexp.MustCompile(`(template|libs\["lib_(\d+)"\]):(\d+)`)

// diagnoseSchema points a template whose CRD does not validate at the
// fields of its parameters' schema. The CRD nests the schema under
// spec.parameters; the template has it at spec.crd.spec.validation.
func diagnoseSchema(ctx context.Context, tmpl *templates.ConstraintTemplate, err error) []fieldError {
	const (
		inCRD      = "spec.validation.openAPIV3Schema.properties[spec].properties[parameters]"
		inTemplate = "spec.crd.spec.validation.openAPIV3Schema"
	)
	crd, cerr := crds.CreateCRD(tmpl, crds.CreateSchema(tmpl, &target.K8sValidationTarget{}))
	if cerr != nil {
		return []fieldError{{inTemplate, err}}
	}
	var out []fieldError
	for _, fe := range apiextensionsvalidation.ValidateCustomResourceDefinition(ctx, crd) {
		field, ok := strings.CutPrefix(fe.Field, inCRD)
		if !ok {
			continue
		}
		out = append(out, fieldError{inTemplate + field, errors.New(fe.ErrorBody())})
	}
	if len(out) == 0 {
		return []fieldError{{inTemplate, err}}
	}
	return out
}

// frameworkNoise is what the framework puts before OPA's own errors.
var frameworkNoise = regexp.MustCompile(`^((invalid ConstraintTemplate|unable to compile modules|invalid module): )+(\d+ errors? occurred: )?`)

// diagnoseCode points an error from a driver's AddTemplate at the
// template's code: the Rego (or one of its libs) or the CEL source,
// whichever the client uses (CEL when both are present, as in Gatekeeper).
func diagnoseCode(obj map[string]any, tmpl *templates.ConstraintTemplate, err error) (string, error) {
	codeIndex := func(engine string) int {
		return slices.IndexFunc(tmpl.Spec.Targets[0].Code, func(c templates.Code) bool { return c.Engine == engine })
	}
	if i := codeIndex(celschema.Name); i >= 0 {
		return fmt.Sprintf("spec.targets[0].code[%d].source", i), err
	}
	prefix := "spec.targets[0]."
	if rego := nested(obj, "spec", "targets", 0, "rego"); rego == nil {
		if i := codeIndex("Rego"); i >= 0 {
			prefix = fmt.Sprintf("spec.targets[0].code[%d].source.", i)
		}
	}
	msg := frameworkNoise.ReplaceAllString(err.Error(), "")
	m := regoFile.FindStringSubmatch(msg)
	if m == nil {
		return prefix + "rego", errors.New(msg)
	}
	field := prefix + "rego"
	if m[2] != "" {
		field = prefix + "libs[" + m[2] + "]"
	}
	return field, errors.New(regoLines(msg))
}

// regoLines rewrites the Rego driver's module names, which mean nothing
// to the author, as "line N".
func regoLines(msg string) string {
	return regoFile.ReplaceAllStringFunc(msg, func(s string) string {
		return "line " + regoFile.FindStringSubmatch(s)[3]
	})
}

// nested walks maps (string keys) and lists (int indexes); nil if absent.
func nested(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func (l *loader) addConstraint(ctx context.Context, o Object) *loadedConstraint {
	obj, _, err := normalize(o.Object)
	if err != nil {
		l.fail(o.Source, "", fmt.Errorf("not a JSON object: %w", err))
		return nil
	}
	u := &unstructured.Unstructured{Object: obj}
	kind, name := u.GetKind(), u.GetName()
	before := len(l.errs)
	if name == "" {
		l.fail(o.Source, "metadata.name", errors.New("required"))
	}
	t := l.templates[kind]
	switch {
	case kind == "":
		l.fail(o.Source, "kind", errors.New("required"))
	case t == nil && l.failedKinds[kind] != "":
		l.fail(o.Source, "kind", fmt.Errorf("the ConstraintTemplate defining %s did not load (%s)", kind, l.failedKinds[kind]))
	case t == nil:
		l.fail(o.Source, "kind", fmt.Errorf("no ConstraintTemplate defines kind %s", kind))
	}
	if len(l.errs) > before {
		return nil
	}
	key := drivers.ConstraintKey{Kind: kind, Name: name}
	if src, dup := l.sources[key]; dup {
		l.fail(o.Source, "metadata.name", fmt.Errorf("%s/%s is already defined by %s", kind, name, src))
		return nil
	}

	// What Gatekeeper's webhook checks when a constraint is created: the
	// client's validation (schema, match, name), then the enforcement
	// action, which an unknown value fails.
	if err := l.client.ValidateConstraint(u); err != nil {
		for _, fe := range diagnoseConstraint(u, t.crd, err) {
			l.fail(o.Source, fe.field, fe.err)
		}
	}
	written, _, err := unstructured.NestedString(obj, "spec", "enforcementAction")
	action := util.EnforcementAction(written)
	switch {
	case err != nil:
		l.fail(o.Source, "spec.enforcementAction", errors.New("want a string"))
	case action == "":
		action = util.Deny
	case action == util.Scoped:
		if err := util.ValidateEnforcementAction(action, obj); err != nil {
			l.fail(o.Source, "spec.scopedEnforcementActions", err)
		}
	default:
		if err := util.ValidateEnforcementAction(action, obj); err != nil {
			l.fail(o.Source, "spec.enforcementAction", err)
		}
	}
	ann, annErrs := readAnnotations(u.GetAnnotations())
	for _, fe := range annErrs {
		l.fail(o.Source, fe.field, fe.err)
	}
	kinds, err := matchKinds(obj)
	if err != nil {
		l.fail(o.Source, "spec.match", err)
	}
	if len(l.errs) > before {
		return nil
	}
	if _, err := l.client.AddConstraint(ctx, u); err != nil {
		l.fail(o.Source, "", err)
		return nil
	}
	if l.sources == nil {
		l.sources = map[drivers.ConstraintKey]string{}
	}
	l.sources[key] = o.Source

	meta := policies.Metadata{
		ID:          kind + "/" + name,
		Title:       t.title,
		Description: t.description,
		Severity:    policies.SeverityMedium,
		Action:      metadataAction(action, obj),
		Scope:       policies.ScopeObject,
		Controls:    t.controls,
		Remediation: t.remediation,
		Source:      o.Source,
	}
	if meta.Title == "" {
		meta.Title = kind
	}
	if t.severity != "" {
		meta.Severity = t.severity
	}
	if ann.severity != "" {
		meta.Severity = ann.severity
	}
	if ann.controls != nil {
		meta.Controls = ann.controls
	}
	if ann.remediation != "" {
		meta.Remediation = ann.remediation
	}
	for _, k := range kinds {
		if k.Group == "" {
			meta.Kinds = append(meta.Kinds, k.Kind)
		} else {
			meta.Kinds = append(meta.Kinds, k.Group+"/"+k.Kind)
		}
	}
	return &loadedConstraint{kind: kind, name: name, meta: meta, kinds: kinds}
}

type fieldError struct {
	field string
	err   error
}

// diagnoseConstraint points the client's verdict on a constraint at its
// fields. The client decides; this only finds where: the schema errors
// again with their paths, unknown fields by path, which selector is bad.
func diagnoseConstraint(u *unstructured.Unstructured, crd *apiextensions.CustomResourceDefinition, err error) []fieldError {
	var out []fieldError
	msg := err.Error()
	switch {
	case errors.Is(err, apiconstraints.ErrSchema) && crd.Spec.Validation != nil:
		validator, _, verr := validation.NewSchemaValidator(crd.Spec.Validation.OpenAPIV3Schema)
		if verr != nil {
			break
		}
		for _, fe := range validation.ValidateCustomResource(nil, u.Object, validator) {
			out = append(out, fieldError{field: fe.Field, err: errors.New(fe.ErrorBody())})
		}
	case strings.Contains(msg, "unknown fields"):
		structural, serr := structuralschema.NewStructural(crd.Spec.Validation.OpenAPIV3Schema)
		if serr != nil {
			break
		}
		for _, p := range pruning.PruneWithOptions(u.DeepCopy().Object, structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true}) {
			out = append(out, fieldError{field: p, err: errors.New("unknown field")})
		}
	case strings.Contains(msg, "invalid name"):
		out = append(out, fieldError{field: "metadata.name", err: err})
	case strings.Contains(msg, "unsupported version"):
		out = append(out, fieldError{field: "apiVersion", err: err})
	default:
		// The target checks both selectors at once; check each alone.
		for _, sel := range []string{"labelSelector", "namespaceSelector"} {
			v, found, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "match", sel)
			if !found {
				continue
			}
			one := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"match": map[string]any{sel: v}}}}
			if serr := (&target.K8sValidationTarget{}).ValidateConstraint(one); serr != nil {
				out = append(out, fieldError{field: "spec.match." + sel, err: serr})
			}
		}
	}
	if len(out) == 0 {
		out = append(out, fieldError{err: err})
	}
	return out
}

// readAnnotations reads Tollgate's annotations on a template or constraint.
func readAnnotations(a map[string]string) (annotations, []fieldError) {
	var out annotations
	var errs []fieldError
	field := func(key string) string { return "metadata.annotations[" + strconv.Quote(key) + "]" }
	if s, ok := a[annotationSeverity]; ok {
		sev, err := policies.ParseSeverity(s)
		if err != nil {
			errs = append(errs, fieldError{field(annotationSeverity), err})
		}
		out.severity = sev
	}
	if s, ok := a[annotationControls]; ok {
		out.controls = []policies.Control{}
		for item := range strings.SplitSeq(s, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			fw, id, ok := strings.Cut(item, ":")
			fw, id = strings.TrimSpace(fw), strings.TrimSpace(id)
			if !ok || fw == "" || id == "" {
				errs = append(errs, fieldError{field(annotationControls), fmt.Errorf("%q: want framework:id, e.g. cis:5.2.1", item)})
				continue
			}
			out.controls = append(out.controls, policies.Control{Framework: fw, ID: id})
		}
	}
	out.remediation = strings.TrimSpace(a[annotationRemediation])
	return out, errs
}

// matchKinds lists the group/kinds a constraint's spec.match.kinds names,
// for the webhook and the audit to know what to watch. It does not decide
// whether an object matches: Gatekeeper's target does.
func matchKinds(obj map[string]any) ([]policies.GroupVersionKind, error) {
	v, found, _ := unstructured.NestedFieldNoCopy(obj, "spec", "match")
	if !found {
		return []policies.GroupVersionKind{{Group: "*", Kind: "*"}}, nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m match.Match
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	if len(m.Kinds) == 0 {
		return []policies.GroupVersionKind{{Group: "*", Kind: "*"}}, nil
	}
	var out []policies.GroupVersionKind
	for _, k := range m.Kinds {
		groups, kinds := k.APIGroups, k.Kinds
		if len(groups) == 0 || slices.Contains(groups, "*") {
			groups = []string{"*"}
		}
		if len(kinds) == 0 || slices.Contains(kinds, "*") {
			kinds = []string{"*"}
		}
		for _, g := range groups {
			for _, kk := range kinds {
				out = append(out, policies.GroupVersionKind{Group: g, Kind: kk})
			}
		}
	}
	slices.SortFunc(out, compareGVK)
	return slices.Compact(out), nil
}

// metadataAction is a constraint's default action: its enforcementAction,
// or for a scoped one the strongest action any enforcement point lists.
func metadataAction(action util.EnforcementAction, obj map[string]any) policies.Action {
	if action != util.Scoped {
		return tollgateAction(string(action))
	}
	var actions []string
	if scoped, err := util.GetScopedEnforcementAction(obj); err == nil {
		for _, s := range *scoped {
			actions = append(actions, s.Action)
		}
	}
	return strongest(actions)
}

// tollgateAction maps a Gatekeeper enforcement action to Tollgate's.
func tollgateAction(a string) policies.Action {
	switch util.EnforcementAction(a) {
	case util.Deny:
		return policies.ActionEnforce
	case util.Warn:
		return policies.ActionWarn
	case util.Dryrun:
		return policies.ActionAudit
	}
	return ""
}

// strongest is the strongest of Gatekeeper actions: deny, then warn, then
// dryrun. Gatekeeper's webhook both denies and warns when a scoped
// constraint lists deny and warn; one finding carries the denial.
func strongest(actions []string) policies.Action {
	best := policies.Action("")
	rank := map[policies.Action]int{"": 0, policies.ActionAudit: 1, policies.ActionWarn: 2, policies.ActionEnforce: 3}
	for _, a := range actions {
		if t := tollgateAction(a); rank[t] > rank[best] {
			best = t
		}
	}
	return best
}
