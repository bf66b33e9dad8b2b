package gatekeeper

import (
	"fmt"

	"github.com/open-policy-agent/frameworks/constraint/pkg/core/templates"
	celschema "github.com/open-policy-agent/gatekeeper/v3/pkg/drivers/k8scel/schema"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/drivers/k8scel/transform"
	"k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/cel/environment"
)

// checkCEL type-checks every K8sNativeValidation source of a template.
//
// The K8sNativeValidation driver compiles a template's expressions when it
// is added but keeps the errors inside the validator, where they surface
// only as a failed review. This compiles them again exactly as the driver
// does (same environment, same variables in the same order, same
// declarations), so a broken expression is reported at load time with its
// field.
func checkCEL(tmpl *templates.ConstraintTemplate) []fieldError {
	var errs []fieldError
	for ti, t := range tmpl.Spec.Targets {
		for ci, code := range t.Code {
			if code.Engine != celschema.Name {
				continue
			}
			at := fmt.Sprintf("spec.targets[%d].code[%d].source", ti, ci)
			errs = append(errs, checkCELSource(at, code)...)
		}
	}
	return errs
}

func checkCELSource(at string, code templates.Code) []fieldError {
	src, err := celschema.GetSource(code)
	if err != nil {
		return []fieldError{{at, err}}
	}
	if _, err := src.GetFailurePolicy(); err != nil {
		return []fieldError{{at + ".failurePolicy", err}}
	}
	compiler, err := cel.NewCompositedCompiler(environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()))
	if err != nil {
		return []fieldError{{at, err}}
	}
	var errs []fieldError
	check := func(field string, r cel.CompilationResult) {
		if r.Error != nil {
			errs = append(errs, fieldError{field, r.Error})
		}
	}

	// The driver's own variables (params, anyObject), then the template's.
	withParams := cel.OptionalVariableDeclarations{HasParams: true}
	for _, v := range transform.AllVariablesCEL() {
		compiler.CompileAndStoreVariable(v, withParams, environment.StoredExpressions)
	}
	vars, err := src.GetVariables()
	if err != nil {
		return []fieldError{{at + ".variables", err}}
	}
	for i, v := range vars {
		check(fmt.Sprintf("%s.variables[%d].expression", at, i), compiler.CompileAndStoreVariable(v, withParams, environment.StoredExpressions))
	}

	// Conditions, validations and messages see no params but variables.
	plain := cel.OptionalVariableDeclarations{}
	conditions, err := src.GetMatchConditions()
	if err != nil {
		return append(errs, fieldError{at + ".matchCondition", err})
	}
	for i, c := range conditions {
		check(fmt.Sprintf("%s.matchCondition[%d].expression", at, i), compiler.CompileCELExpression(c, plain, environment.StoredExpressions))
	}
	validations, err := src.GetValidations()
	if err != nil {
		return append(errs, fieldError{at + ".validations", err})
	}
	for i, v := range validations {
		check(fmt.Sprintf("%s.validations[%d].expression", at, i), compiler.CompileCELExpression(v, plain, environment.StoredExpressions))
	}
	messages, err := src.GetMessageExpressions()
	if err != nil {
		return append(errs, fieldError{at + ".validations", err})
	}
	for i, m := range messages {
		if m == nil {
			continue
		}
		check(fmt.Sprintf("%s.validations[%d].messageExpression", at, i), compiler.CompileCELExpression(m, plain, environment.StoredExpressions))
	}
	return errs
}
