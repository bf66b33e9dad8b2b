package policies

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// CompileError lists every problem found in the policies, each with the file
// and line it is at.
type CompileError struct {
	Problems []string
}

// Error implements error.
func (e *CompileError) Error() string {
	return "compiling policies:\n  " + strings.Join(e.Problems, "\n  ")
}

func formatASTErrors(err error) []string {
	var errs ast.Errors
	var one *ast.Error
	switch {
	case errors.As(err, &errs):
	case errors.As(err, &one):
		errs = ast.Errors{one}
	default:
		return []string{err.Error()}
	}
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		if e.Location == nil && e.Message == "error limit reached" {
			out = append(out, fmt.Sprintf("(the compiler stops after %d problems: more may follow)", ast.CompileErrorLimitDefault))
			continue
		}
		loc := "<unknown>"
		if e.Location != nil {
			// An empty module is reported at row 0; editors count from 1.
			loc = fmt.Sprintf("%s:%d:%d", e.Location.File, max(e.Location.Row, 1), e.Location.Col)
		}
		out = append(out, fmt.Sprintf("%s: %s: %s", loc, e.Code, e.Message))
	}
	return out
}

// ParseModules parses Rego modules (v1 syntax) with their METADATA
// annotations. Every module is tried, so one run reports every broken file.
func ParseModules(mods []Module) (map[string]*ast.Module, error) {
	parsed := make(map[string]*ast.Module, len(mods))
	var problems []string
	for _, m := range mods {
		if _, dup := parsed[m.Name]; dup {
			problems = append(problems, fmt.Sprintf("%s: loaded twice", m.Name))
			continue
		}
		mod, err := ast.ParseModuleWithOpts(m.Name, m.Text, ast.ParserOptions{
			ProcessAnnotation: true,
			RegoVersion:       ast.RegoV1,
		})
		if err != nil {
			problems = append(problems, formatASTErrors(err)...)
			continue
		}
		if mod == nil {
			problems = append(problems, fmt.Sprintf("%s:1: empty module (no package declaration)", m.Name))
			continue
		}
		parsed[m.Name] = mod
	}
	if len(problems) > 0 {
		return nil, &CompileError{Problems: problems}
	}
	return parsed, nil
}

// NewCompiler returns a compiler that knows the extra builtins.
func NewCompiler(builtins []Builtin) *ast.Compiler {
	caps := ast.CapabilitiesForThisVersion()
	for _, b := range builtins {
		caps.Builtins = append(caps.Builtins, &ast.Builtin{Name: b.Name, Decl: b.Decl})
	}
	return ast.NewCompiler().WithCapabilities(caps).WithDefaultRegoVersion(ast.RegoV1)
}

// compile parses and compiles the modules and finds the policies in them.
func compile(mods []Module, builtins []Builtin) (*ast.Compiler, []Metadata, error) {
	parsed, err := ParseModules(mods)
	if err != nil {
		return nil, nil, err
	}
	c := NewCompiler(builtins)
	c.Compile(parsed)
	if c.Failed() {
		return nil, nil, &CompileError{Problems: formatASTErrors(c.Errors)}
	}

	// A policy is a package with a violation rule; its metadata is the
	// package's METADATA annotation.
	names := make([]string, 0, len(parsed))
	for n := range parsed {
		names = append(names, n)
	}
	slices.Sort(names)
	byPkg := map[string]*Metadata{}
	var problems []string
	annotations := c.GetAnnotationSet()
	for _, name := range names {
		mod := c.Modules[name]
		if !hasViolationRule(mod) {
			continue
		}
		pkg := mod.Package.Path.String()
		m, err := metadataOf(annotations.GetPackageScope(mod.Package), pkg)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s:%d: %v", name, mod.Package.Location.Row, err))
			continue
		}
		if prev, ok := byPkg[pkg]; ok {
			// The package spans several files; the first one names it.
			if prev.Title == "" && m.Title != "" {
				m.Source, m.Line = prev.Source, prev.Line
				byPkg[pkg] = &m
			}
			continue
		}
		m.Source, m.Line = name, mod.Package.Location.Row
		byPkg[pkg] = &m
	}
	metas := make([]Metadata, 0, len(byPkg))
	seen := map[string]*Metadata{}
	for _, pkg := range sortedKeys(byPkg) {
		m := byPkg[pkg]
		if prev, dup := seen[m.ID]; dup {
			problems = append(problems, fmt.Sprintf("%s:%d: policy id %q is already used by %s:%d", m.Source, m.Line, m.ID, prev.Source, prev.Line))
			continue
		}
		seen[m.ID] = m
		metas = append(metas, *m)
	}
	if len(problems) > 0 {
		return nil, nil, &CompileError{Problems: problems}
	}
	slices.SortFunc(metas, func(a, b Metadata) int { return strings.Compare(a.ID, b.ID) })
	return c, metas, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

var violationRef = ast.Ref{ast.VarTerm("violation")}

func hasViolationRule(mod *ast.Module) bool {
	for _, r := range mod.Rules {
		if r.Head.Ref().Equal(violationRef) {
			return true
		}
	}
	return false
}

// metadataOf reads a policy's METADATA annotation. Missing fields take
// defaults; wrong ones are errors, so a typo in a severity never silently
// downgrades a policy.
func metadataOf(a *ast.Annotations, pkg string) (Metadata, error) {
	m := Metadata{
		ID:       strings.TrimPrefix(pkg, "data."),
		Package:  pkg,
		Severity: SeverityMedium,
		Action:   ActionEnforce,
		Scope:    ScopeObject,
	}
	if a == nil {
		return m, nil
	}
	m.Title = a.Title
	m.Description = strings.TrimSpace(a.Description)
	c := a.Custom
	str := func(key string) (string, bool, error) {
		v, ok := c[key]
		if !ok {
			return "", false, nil
		}
		s, ok := v.(string)
		if !ok {
			return "", false, fmt.Errorf("METADATA custom.%s: want a string, got %v", key, v)
		}
		return s, true, nil
	}
	var errs []error
	if s, ok, err := str("id"); err != nil {
		errs = append(errs, err)
	} else if ok {
		if strings.TrimSpace(s) == "" || strings.ContainsAny(s, " \t\n") {
			errs = append(errs, fmt.Errorf("METADATA custom.id: %q is not a valid policy id", s))
		}
		m.ID = s
	}
	if s, ok, err := str("severity"); err != nil {
		errs = append(errs, err)
	} else if ok {
		sev, err := ParseSeverity(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("METADATA custom.severity: %w", err))
		}
		m.Severity = sev
	}
	if s, ok, err := str("action"); err != nil {
		errs = append(errs, err)
	} else if ok {
		act, err := ParseAction(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("METADATA custom.action: %w", err))
		}
		m.Action = act
	}
	if s, ok, err := str("scope"); err != nil {
		errs = append(errs, err)
	} else if ok {
		switch Scope(s) {
		case ScopePod, ScopeObject:
			m.Scope = Scope(s)
		default:
			errs = append(errs, fmt.Errorf("METADATA custom.scope: %q is neither pod nor object", s))
		}
	}
	if s, _, err := str("remediation"); err != nil {
		errs = append(errs, err)
	} else {
		m.Remediation = strings.TrimSpace(s)
	}
	if v, ok := c["kinds"]; ok {
		list, ok := v.([]any)
		for i, k := range list {
			s, isStr := k.(string)
			if !isStr || s == "" {
				errs = append(errs, fmt.Errorf("METADATA custom.kinds[%d]: want a kind name", i))
				continue
			}
			m.Kinds = append(m.Kinds, s)
		}
		if !ok {
			errs = append(errs, errors.New("METADATA custom.kinds: want a list of kinds"))
		}
	}
	if v, ok := c["governedKinds"]; ok {
		b, isBool := v.(bool)
		if !isBool {
			errs = append(errs, fmt.Errorf("METADATA custom.governedKinds: want true or false, got %v", v))
		}
		m.GovernedKinds = b
	}
	if v, ok := c["inventory"]; ok {
		switch v {
		case "required", "complete":
			m.Inventory = v.(string)
		default:
			errs = append(errs, fmt.Errorf("METADATA custom.inventory: want required or complete, got %v", v))
		}
	}
	if v, ok := c["admission"]; ok {
		b, isBool := v.(bool)
		if !isBool {
			errs = append(errs, fmt.Errorf("METADATA custom.admission: want true or false, got %v", v))
		}
		m.AuditOnly = !b
	}
	if v, ok := c["controls"]; ok {
		list, ok := v.([]any)
		if !ok {
			errs = append(errs, errors.New("METADATA custom.controls: want a list of {framework, id}"))
		}
		for i, item := range list {
			obj, _ := item.(map[string]any)
			fw, _ := obj["framework"].(string)
			id := fmt.Sprint(obj["id"])
			if fw == "" || obj["id"] == nil || id == "" {
				errs = append(errs, fmt.Errorf("METADATA custom.controls[%d]: want framework and id", i))
				continue
			}
			m.Controls = append(m.Controls, Control{Framework: fw, ID: id})
		}
	}
	return m, errors.Join(errs...)
}
