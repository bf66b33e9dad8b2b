package vap

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	v1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/policy/mutating"
	"k8s.io/apiserver/pkg/admission/plugin/policy/mutating/patch"
	"k8s.io/apiserver/pkg/admission/plugin/policy/validating"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions"
	apiservercel "k8s.io/apiserver/pkg/cel"
	"k8s.io/apiserver/pkg/cel/environment"
)

// baseEnv is the CEL environment the API server compiles admission
// policies in: its own version's, with strict cost. environment caches it.
func baseEnv() *environment.EnvSet {
	return environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion())
}

// compileValidating compiles a policy the way the ValidatingAdmissionPolicy
// plugin does (validating.compilePolicy, which is not exported): the same
// compiler, variable declarations, environment and validator.
func compileValidating(policy *v1.ValidatingAdmissionPolicy) validating.Validator {
	hasParam := policy.Spec.ParamKind != nil
	optionalVars := plugincel.OptionalVariableDeclarations{HasParams: hasParam, HasAuthorizer: true}
	expressionOptionalVars := plugincel.OptionalVariableDeclarations{HasParams: hasParam, HasAuthorizer: false}
	failurePolicy := policy.Spec.FailurePolicy
	filterCompiler, err := plugincel.NewCompositedCompiler(baseEnv())
	if err != nil {
		return validating.NewValidator(nil, nil, nil, nil, failurePolicy, err)
	}
	filterCompiler.CompileAndStoreVariables(variables(policy.Spec.Variables), optionalVars, environment.StoredExpressions)

	var matcher matchconditions.Matcher
	if mcs := policy.Spec.MatchConditions; len(mcs) > 0 {
		accessors := make([]plugincel.ExpressionAccessor, len(mcs))
		for i := range mcs {
			accessors[i] = (*matchconditions.MatchCondition)(&mcs[i])
		}
		matcher = matchconditions.NewMatcher(filterCompiler.CompileCondition(accessors, optionalVars, environment.StoredExpressions), failurePolicy, "policy", "validate", policy.Name)
	}

	validations := make([]plugincel.ExpressionAccessor, len(policy.Spec.Validations))
	messages := make([]plugincel.ExpressionAccessor, len(policy.Spec.Validations))
	for i, v := range policy.Spec.Validations {
		validations[i] = &validating.ValidationCondition{Expression: v.Expression, Message: v.Message, Reason: v.Reason}
		if v.MessageExpression != "" {
			messages[i] = &validating.MessageExpressionCondition{MessageExpression: v.MessageExpression}
		}
	}
	audits := make([]plugincel.ExpressionAccessor, len(policy.Spec.AuditAnnotations))
	for i, a := range policy.Spec.AuditAnnotations {
		audits[i] = &validating.AuditAnnotationCondition{Key: a.Key, ValueExpression: a.ValueExpression}
	}
	return validating.NewValidator(
		filterCompiler.CompileCondition(validations, optionalVars, environment.StoredExpressions),
		matcher,
		filterCompiler.CompileCondition(audits, optionalVars, environment.StoredExpressions),
		filterCompiler.CompileCondition(messages, expressionOptionalVars, environment.StoredExpressions),
		failurePolicy,
		nil,
	)
}

// compileMutating compiles a policy the way the MutatingAdmissionPolicy
// plugin does (mutating.compilePolicy, which is not exported).
func compileMutating(policy *v1.MutatingAdmissionPolicy) mutating.PolicyEvaluator {
	opts := plugincel.OptionalVariableDeclarations{HasParams: policy.Spec.ParamKind != nil, HasAuthorizer: true}
	compiler, err := plugincel.NewCompositedCompiler(baseEnv())
	if err != nil {
		return mutating.PolicyEvaluator{Error: &apiservercel.Error{
			Type:   apiservercel.ErrorTypeInternal,
			Detail: fmt.Sprintf("failed to initialize CEL compiler: %v", err),
		}}
	}
	compiler.CompileAndStoreVariables(variables(policy.Spec.Variables), opts, environment.StoredExpressions)

	var matcher matchconditions.Matcher
	if mcs := policy.Spec.MatchConditions; len(mcs) > 0 {
		accessors := make([]plugincel.ExpressionAccessor, len(mcs))
		for i := range mcs {
			accessors[i] = (*matchconditions.MatchCondition)(&mcs[i])
		}
		matcher = matchconditions.NewMatcher(compiler.CompileCondition(accessors, opts, environment.StoredExpressions), policy.Spec.FailurePolicy, "policy", "validate", policy.Name)
	}

	var patchers []patch.Patcher
	patchOptions := opts
	patchOptions.HasPatchTypes = true
	for _, m := range policy.Spec.Mutations {
		switch m.PatchType {
		case v1.PatchTypeJSONPatch:
			if m.JSONPatch != nil {
				accessor := &patch.JSONPatchCondition{Expression: m.JSONPatch.Expression}
				patchers = append(patchers, patch.NewJSONPatcher(compiler.CompileMutatingEvaluator(accessor, patchOptions, environment.StoredExpressions)))
			}
		case v1.PatchTypeApplyConfiguration:
			if m.ApplyConfiguration != nil {
				accessor := &patch.ApplyConfigurationCondition{Expression: m.ApplyConfiguration.Expression}
				patchers = append(patchers, patch.NewApplyConfigurationPatcher(compiler.CompileMutatingEvaluator(accessor, patchOptions, environment.StoredExpressions)))
			}
		}
	}
	return mutating.PolicyEvaluator{Matcher: matcher, Mutators: patchers, CompositedCompiler: compiler}
}

func variables(vs []v1.Variable) []plugincel.NamedExpressionAccessor {
	out := make([]plugincel.NamedExpressionAccessor, len(vs))
	for i, v := range vs {
		out[i] = &validating.Variable{Name: v.Name, Expression: v.Expression}
	}
	return out
}

// The defaults kube-apiserver sets on admission policies and bindings
// (pkg/apis/admissionregistration/v1/defaults.go in kubernetes).

func defaultValidatingPolicy(p *v1.ValidatingAdmissionPolicy) {
	if p.Spec.FailurePolicy == nil {
		fail := v1.Fail
		p.Spec.FailurePolicy = &fail
	}
	defaultMatchResources(p.Spec.MatchConstraints)
}

func defaultMutatingPolicy(p *v1.MutatingAdmissionPolicy) {
	if p.Spec.FailurePolicy == nil {
		fail := v1.Fail
		p.Spec.FailurePolicy = &fail
	}
	defaultMatchResources(p.Spec.MatchConstraints)
}

func defaultMatchResources(m *v1.MatchResources) {
	if m == nil {
		return
	}
	if m.MatchPolicy == nil {
		equivalent := v1.Equivalent
		m.MatchPolicy = &equivalent
	}
	if m.NamespaceSelector == nil {
		m.NamespaceSelector = &metav1.LabelSelector{}
	}
	if m.ObjectSelector == nil {
		m.ObjectSelector = &metav1.LabelSelector{}
	}
	for _, rules := range [][]v1.NamedRuleWithOperations{m.ResourceRules, m.ExcludeResourceRules} {
		for i := range rules {
			if rules[i].Scope == nil {
				all := v1.AllScopes
				rules[i].Scope = &all
			}
		}
	}
}

// checker validates policies and bindings as kube-apiserver does when they
// are created (pkg/apis/admissionregistration/validation in kubernetes,
// the checks that decide whether a policy can work): required fields,
// supported values, selectors, and every CEL expression compiled in the
// environment the API server admits new expressions in.
type checker struct {
	stateless plugincel.Compiler
}

// matchConditionCompiler is the compiler matchConditions are checked
// with: like the API server's, it has no variables.
func (c *checker) matchConditionCompiler() plugincel.Compiler {
	if c.stateless == nil {
		c.stateless = plugincel.NewCompiler(baseEnv())
	}
	return c.stateless
}

func (c *checker) validatingPolicy(p *v1.ValidatingAdmissionPolicy) field.ErrorList {
	spec := field.NewPath("spec")
	errs := validateName(p.Name)
	errs = append(errs, validateFailurePolicy(p.Spec.FailurePolicy, spec.Child("failurePolicy"))...)
	hasParams := p.Spec.ParamKind != nil
	if hasParams {
		errs = append(errs, validateParamKind(p.Spec.ParamKind, spec.Child("paramKind"))...)
	}
	errs = append(errs, validateMatchConstraints(p.Spec.MatchConstraints, spec.Child("matchConstraints"))...)
	errs = append(errs, c.validateMatchConditions(p.Spec.MatchConditions, hasParams, spec.Child("matchConditions"))...)

	compiler, err := plugincel.NewCompositedCompiler(baseEnv())
	if err != nil {
		return append(errs, field.InternalError(spec, err))
	}
	errs = append(errs, validateVariables(compiler, p.Spec.Variables, hasParams, spec.Child("variables"))...)
	vars := plugincel.OptionalVariableDeclarations{HasParams: hasParams, HasAuthorizer: true}
	if len(p.Spec.Validations) == 0 && len(p.Spec.AuditAnnotations) == 0 {
		errs = append(errs, field.Required(spec.Child("validations"), "validations or auditAnnotations must contain at least one item"))
	}
	for i, v := range p.Spec.Validations {
		path := spec.Child("validations").Index(i)
		if strings.TrimSpace(v.Expression) == "" {
			errs = append(errs, field.Required(path.Child("expression"), "expression is not specified"))
		} else {
			errs = append(errs, compileCheck(compiler, &validating.ValidationCondition{Expression: v.Expression}, vars, path.Child("expression"))...)
		}
		if v.MessageExpression != "" {
			if strings.TrimSpace(v.MessageExpression) == "" {
				errs = append(errs, field.Invalid(path.Child("messageExpression"), v.MessageExpression, "must be non-empty if specified"))
			} else {
				msgVars := plugincel.OptionalVariableDeclarations{HasParams: hasParams}
				errs = append(errs, compileCheck(compiler, &validating.MessageExpressionCondition{MessageExpression: v.MessageExpression}, msgVars, path.Child("messageExpression"))...)
			}
		}
		msg := strings.TrimSpace(v.Message)
		switch {
		case v.Message != "" && msg == "":
			errs = append(errs, field.Invalid(path.Child("message"), v.Message, "must be non-empty if specified"))
		case strings.ContainsAny(msg, "\n\r"):
			errs = append(errs, field.Invalid(path.Child("message"), v.Message, "must not contain line breaks"))
		}
		if v.Reason != nil && !slices.Contains(supportedReasons, *v.Reason) {
			errs = append(errs, field.NotSupported(path.Child("reason"), *v.Reason, supportedReasons))
		}
	}
	keys := map[string]bool{}
	for i, a := range p.Spec.AuditAnnotations {
		path := spec.Child("auditAnnotations").Index(i)
		if a.Key == "" {
			errs = append(errs, field.Required(path.Child("key"), ""))
		} else if keys[a.Key] {
			errs = append(errs, field.Duplicate(path.Child("key"), a.Key))
		}
		keys[a.Key] = true
		if strings.TrimSpace(a.ValueExpression) == "" {
			errs = append(errs, field.Required(path.Child("valueExpression"), "valueExpression is not specified"))
		} else {
			errs = append(errs, compileCheck(compiler, &validating.AuditAnnotationCondition{ValueExpression: strings.TrimSpace(a.ValueExpression)}, vars, path.Child("valueExpression"))...)
		}
	}
	return errs
}

func (c *checker) mutatingPolicy(p *v1.MutatingAdmissionPolicy) field.ErrorList {
	spec := field.NewPath("spec")
	errs := validateName(p.Name)
	errs = append(errs, validateFailurePolicy(p.Spec.FailurePolicy, spec.Child("failurePolicy"))...)
	hasParams := p.Spec.ParamKind != nil
	if hasParams {
		errs = append(errs, validateParamKind(p.Spec.ParamKind, spec.Child("paramKind"))...)
	}
	errs = append(errs, validateMatchConstraints(p.Spec.MatchConstraints, spec.Child("matchConstraints"))...)
	if m := p.Spec.MatchConstraints; m != nil {
		errs = append(errs, validateMutatingOperations(m.ResourceRules, spec.Child("matchConstraints", "resourceRules"))...)
	}
	errs = append(errs, c.validateMatchConditions(p.Spec.MatchConditions, hasParams, spec.Child("matchConditions"))...)

	compiler, err := plugincel.NewCompositedCompiler(baseEnv())
	if err != nil {
		return append(errs, field.InternalError(spec, err))
	}
	errs = append(errs, validateVariables(compiler, p.Spec.Variables, hasParams, spec.Child("variables"))...)
	vars := plugincel.OptionalVariableDeclarations{HasParams: hasParams, HasAuthorizer: true, HasPatchTypes: true}
	if len(p.Spec.Mutations) == 0 {
		errs = append(errs, field.Required(spec.Child("mutations"), "mutations must contain at least one item"))
	}
	for i, m := range p.Spec.Mutations {
		path := spec.Child("mutations").Index(i)
		switch m.PatchType {
		case "":
			errs = append(errs, field.Required(path.Child("patchType"), ""))
		case v1.PatchTypeJSONPatch:
			if m.JSONPatch == nil {
				errs = append(errs, field.Required(path.Child("jsonPatch"), "must be specified when patchType is JSONPatch"))
			} else if strings.TrimSpace(m.JSONPatch.Expression) == "" {
				errs = append(errs, field.Required(path.Child("jsonPatch", "expression"), ""))
			} else {
				errs = append(errs, compileCheck(compiler, &patch.JSONPatchCondition{Expression: strings.TrimSpace(m.JSONPatch.Expression)}, vars, path.Child("jsonPatch", "expression"))...)
			}
			if m.ApplyConfiguration != nil {
				errs = append(errs, field.Invalid(path.Child("applyConfiguration"), "{applyConfiguration}", "must not be specified when patchType is JSONPatch"))
			}
		case v1.PatchTypeApplyConfiguration:
			if m.ApplyConfiguration == nil {
				errs = append(errs, field.Required(path.Child("applyConfiguration"), "must be specified when patchType is ApplyConfiguration"))
			} else if strings.TrimSpace(m.ApplyConfiguration.Expression) == "" {
				errs = append(errs, field.Required(path.Child("applyConfiguration", "expression"), ""))
			} else {
				errs = append(errs, compileCheck(compiler, &patch.ApplyConfigurationCondition{Expression: strings.TrimSpace(m.ApplyConfiguration.Expression)}, vars, path.Child("applyConfiguration", "expression"))...)
			}
			if m.JSONPatch != nil {
				errs = append(errs, field.Invalid(path.Child("jsonPatch"), "{jsonPatch}", "must not be specified when patchType is ApplyConfiguration"))
			}
		default:
			errs = append(errs, field.NotSupported(path.Child("patchType"), m.PatchType, []v1.PatchType{v1.PatchTypeApplyConfiguration, v1.PatchTypeJSONPatch}))
		}
	}
	switch p.Spec.ReinvocationPolicy {
	case "":
		errs = append(errs, field.Required(spec.Child("reinvocationPolicy"), ""))
	case v1.NeverReinvocationPolicy, v1.IfNeededReinvocationPolicy:
	default:
		errs = append(errs, field.NotSupported(spec.Child("reinvocationPolicy"), p.Spec.ReinvocationPolicy, []v1.ReinvocationPolicyType{v1.IfNeededReinvocationPolicy, v1.NeverReinvocationPolicy}))
	}
	return errs
}

func validateValidatingBinding(b *v1.ValidatingAdmissionPolicyBinding) field.ErrorList {
	spec := field.NewPath("spec")
	errs := validateName(b.Name)
	if b.Spec.PolicyName == "" {
		errs = append(errs, field.Required(spec.Child("policyName"), ""))
	}
	errs = append(errs, validateParamRef(b.Spec.ParamRef, spec.Child("paramRef"))...)
	errs = append(errs, validateMatchResources(b.Spec.MatchResources, spec.Child("matchResources"))...)
	path := spec.Child("validationActions")
	seen := map[v1.ValidationAction]bool{}
	for i, a := range b.Spec.ValidationActions {
		if !slices.Contains(validationActions, a) {
			errs = append(errs, field.NotSupported(path.Index(i), a, validationActions))
		}
		if seen[a] {
			errs = append(errs, field.Duplicate(path.Index(i), a))
		}
		seen[a] = true
	}
	if seen[v1.Deny] && seen[v1.Warn] {
		errs = append(errs, field.Invalid(path, b.Spec.ValidationActions, "must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)"))
	}
	if len(b.Spec.ValidationActions) == 0 {
		errs = append(errs, field.Required(path, "at least one validation action is required"))
	}
	return errs
}

func validateMutatingBinding(b *v1.MutatingAdmissionPolicyBinding) field.ErrorList {
	spec := field.NewPath("spec")
	errs := validateName(b.Name)
	if b.Spec.PolicyName == "" {
		errs = append(errs, field.Required(spec.Child("policyName"), ""))
	}
	errs = append(errs, validateParamRef(b.Spec.ParamRef, spec.Child("paramRef"))...)
	errs = append(errs, validateMatchResources(b.Spec.MatchResources, spec.Child("matchResources"))...)
	if m := b.Spec.MatchResources; m != nil {
		errs = append(errs, validateMutatingOperations(m.ResourceRules, spec.Child("matchResources", "resourceRules"))...)
	}
	return errs
}

var (
	validationActions = []v1.ValidationAction{v1.Audit, v1.Deny, v1.Warn}
	supportedReasons  = []metav1.StatusReason{metav1.StatusReasonForbidden, metav1.StatusReasonInvalid, metav1.StatusReasonRequestEntityTooLarge}
	operations        = []v1.OperationType{v1.OperationAll, v1.Create, v1.Update, v1.Delete, v1.Connect}
	celIdent          = regexp.MustCompile(`^[_a-zA-Z][_a-zA-Z0-9]*$`)
	celReserved       = []string{"true", "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function", "if", "import", "let", "loop", "package", "namespace", "return", "var", "void", "while"}
)

func validateName(name string) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(field.NewPath("metadata", "name"), "")}
	}
	return nil
}

func validateFailurePolicy(fp *v1.FailurePolicyType, path *field.Path) field.ErrorList {
	if fp != nil && *fp != v1.Fail && *fp != v1.Ignore {
		return field.ErrorList{field.NotSupported(path, *fp, []v1.FailurePolicyType{v1.Fail, v1.Ignore})}
	}
	return nil
}

func validateParamKind(pk *v1.ParamKind, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if pk.APIVersion == "" {
		errs = append(errs, field.Required(path.Child("apiVersion"), ""))
	} else if gv, err := schema.ParseGroupVersion(pk.APIVersion); err != nil {
		errs = append(errs, field.Invalid(path.Child("apiVersion"), pk.APIVersion, err.Error()))
	} else if gv.Version == "" {
		errs = append(errs, field.Invalid(path.Child("apiVersion"), pk.APIVersion, "version must be specified"))
	}
	if pk.Kind == "" {
		errs = append(errs, field.Required(path.Child("kind"), ""))
	}
	return errs
}

func validateMatchConstraints(m *v1.MatchResources, path *field.Path) field.ErrorList {
	if m == nil {
		return field.ErrorList{field.Required(path, "")}
	}
	errs := validateMatchResources(m, path)
	if len(m.ResourceRules) == 0 {
		// The rules give the expressions their type information.
		errs = append(errs, field.Required(path.Child("resourceRules"), ""))
	}
	return errs
}

func validateMatchResources(m *v1.MatchResources, path *field.Path) field.ErrorList {
	if m == nil {
		return nil
	}
	var errs field.ErrorList
	if m.MatchPolicy != nil && *m.MatchPolicy != v1.Exact && *m.MatchPolicy != v1.Equivalent {
		errs = append(errs, field.NotSupported(path.Child("matchPolicy"), *m.MatchPolicy, []v1.MatchPolicyType{v1.Equivalent, v1.Exact}))
	}
	errs = append(errs, metav1validation.ValidateLabelSelector(m.NamespaceSelector, metav1validation.LabelSelectorValidationOptions{}, path.Child("namespaceSelector"))...)
	errs = append(errs, metav1validation.ValidateLabelSelector(m.ObjectSelector, metav1validation.LabelSelectorValidationOptions{}, path.Child("objectSelector"))...)
	for i, r := range m.ResourceRules {
		errs = append(errs, validateRule(&r, path.Child("resourceRules").Index(i))...)
	}
	for i, r := range m.ExcludeResourceRules {
		errs = append(errs, validateRule(&r, path.Child("excludeResourceRules").Index(i))...)
	}
	return errs
}

func validateRule(r *v1.NamedRuleWithOperations, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(r.Operations) == 0 {
		errs = append(errs, field.Required(path.Child("operations"), ""))
	}
	for i, op := range r.Operations {
		if !slices.Contains(operations, op) {
			errs = append(errs, field.NotSupported(path.Child("operations").Index(i), op, operations))
		}
	}
	if len(r.APIGroups) == 0 {
		errs = append(errs, field.Required(path.Child("apiGroups"), ""))
	}
	if len(r.APIVersions) == 0 {
		errs = append(errs, field.Required(path.Child("apiVersions"), ""))
	}
	if len(r.Resources) == 0 {
		errs = append(errs, field.Required(path.Child("resources"), ""))
	}
	if r.Scope != nil && *r.Scope != v1.AllScopes && *r.Scope != v1.ClusterScope && *r.Scope != v1.NamespacedScope {
		errs = append(errs, field.NotSupported(path.Child("scope"), *r.Scope, []v1.ScopeType{v1.AllScopes, v1.ClusterScope, v1.NamespacedScope}))
	}
	return errs
}

// validateMutatingOperations: only CREATE and UPDATE can be mutated.
func validateMutatingOperations(rules []v1.NamedRuleWithOperations, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, r := range rules {
		for j, op := range r.Operations {
			if op != v1.Create && op != v1.Update {
				errs = append(errs, field.NotSupported(path.Index(i).Child("operations").Index(j), op, []v1.OperationType{v1.Create, v1.Update}))
			}
		}
	}
	return errs
}

func (c *checker) validateMatchConditions(mcs []v1.MatchCondition, hasParams bool, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(mcs) > 64 {
		errs = append(errs, field.TooMany(path, len(mcs), 64))
	}
	names := map[string]bool{}
	vars := plugincel.OptionalVariableDeclarations{HasParams: hasParams, HasAuthorizer: true}
	for i := range mcs {
		mc := &mcs[i]
		p := path.Index(i)
		if mc.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), ""))
		} else if names[mc.Name] {
			errs = append(errs, field.Duplicate(p.Child("name"), mc.Name))
		}
		names[mc.Name] = true
		if strings.TrimSpace(mc.Expression) == "" {
			errs = append(errs, field.Required(p.Child("expression"), ""))
			continue
		}
		errs = append(errs, compileCheck(c.matchConditionCompiler(), &matchconditions.MatchCondition{Expression: strings.TrimSpace(mc.Expression)}, vars, p.Child("expression"))...)
	}
	return errs
}

// validateVariables compiles the variables into compiler, in order, so
// the expressions after them see their types.
func validateVariables(compiler *plugincel.CompositedCompiler, vs []v1.Variable, hasParams bool, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, v := range vs {
		p := path.Index(i)
		if strings.TrimSpace(v.Name) == "" {
			errs = append(errs, field.Required(p.Child("name"), "name is not specified"))
		} else if !celIdent.MatchString(v.Name) || slices.Contains(celReserved, v.Name) {
			errs = append(errs, field.Invalid(p.Child("name"), v.Name, "must be a valid CEL identifier"))
		}
		if strings.TrimSpace(v.Expression) == "" {
			errs = append(errs, field.Required(p.Child("expression"), "expression is not specified"))
			continue
		}
		result := compiler.CompileAndStoreVariable(&validating.Variable{Name: v.Name, Expression: v.Expression},
			plugincel.OptionalVariableDeclarations{HasParams: hasParams, HasAuthorizer: true}, environment.NewExpressions)
		if result.Error != nil {
			errs = append(errs, celError(p.Child("expression"), v.Expression, result.Error))
		}
	}
	return errs
}

func validateParamRef(pr *v1.ParamRef, path *field.Path) field.ErrorList {
	if pr == nil {
		return nil
	}
	var errs field.ErrorList
	if pr.Name != "" && pr.Selector != nil {
		errs = append(errs, field.Forbidden(path.Child("name"), "name and selector are mutually exclusive"))
	}
	if pr.Selector != nil {
		errs = append(errs, metav1validation.ValidateLabelSelector(pr.Selector, metav1validation.LabelSelectorValidationOptions{}, path.Child("selector"))...)
	}
	if pr.Name == "" && pr.Selector == nil {
		errs = append(errs, field.Required(path, "one of name or selector must be specified"))
	}
	switch {
	case pr.ParameterNotFoundAction == nil || *pr.ParameterNotFoundAction == "":
		errs = append(errs, field.Required(path.Child("parameterNotFoundAction"), ""))
	case *pr.ParameterNotFoundAction != v1.DenyAction && *pr.ParameterNotFoundAction != v1.AllowAction:
		errs = append(errs, field.NotSupported(path.Child("parameterNotFoundAction"), *pr.ParameterNotFoundAction, []v1.ParameterNotFoundActionType{v1.AllowAction, v1.DenyAction}))
	}
	return errs
}

// compileCheck compiles one expression for new objects, as the API
// server's validation does, and reports its error at path.
func compileCheck(compiler plugincel.Compiler, expr plugincel.ExpressionAccessor, vars plugincel.OptionalVariableDeclarations, path *field.Path) field.ErrorList {
	result := compiler.CompileCELExpression(expr, vars, environment.NewExpressions)
	if result.Error == nil {
		return nil
	}
	return field.ErrorList{celError(path, expr.GetExpression(), result.Error)}
}

func celError(path *field.Path, expr string, err *apiservercel.Error) *field.Error {
	switch err.Type {
	case apiservercel.ErrorTypeRequired:
		return field.Required(path, err.Detail)
	case apiservercel.ErrorTypeInvalid:
		return field.Invalid(path, expr, err.Detail)
	}
	return field.InternalError(path, err)
}
