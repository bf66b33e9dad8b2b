// Package policytest runs policy tests for `tollgate test`: the Rego unit
// tests (`_test.rego` files) and fixture suites (directories of allowed and
// denied manifests with the findings they must produce), through the same
// engine that admission and `tollgate check` use.
package policytest

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/policies"
)

// SuiteFile is the file that marks a directory as a fixture suite.
const SuiteFile = "suite.yaml"

// Options say what to test.
type Options struct {
	// Paths are directories (or .rego files, or bundles) holding policies,
	// their _test.rego files and fixture suites.
	Paths []string
	// Modules are extra policies loaded with those found under Paths (the
	// built-in library, --policy paths); their tests are not run.
	Modules []policies.Module
	// Data is served under data to the policies.
	Data map[string]any
	// Builtins are extra functions the policies may call.
	Builtins []policies.Builtin
	// Run, when set, runs only tests and cases whose name matches it.
	Run string
	// Verbose prints every test, not only failures.
	Verbose bool
	// Timeout bounds each Rego test; 0 means 10s.
	Timeout time.Duration
	// AllowEmpty accepts paths with no Rego test and no fixture suite (the
	// caller runs other suites there, such as Gatekeeper's).
	AllowEmpty bool
}

// Summary counts what ran.
type Summary struct {
	Passed, Failed int
}

// Run runs every Rego test and fixture suite found under opts.Paths and
// writes go-test-like output to w. Problems that stop tests from running at
// all (a policy that does not compile, a malformed suite) are errors.
func Run(ctx context.Context, opts Options, w io.Writer) (Summary, error) {
	var sum Summary
	var filter *regexp.Regexp
	if opts.Run != "" {
		re, err := regexp.Compile(opts.Run)
		if err != nil {
			return sum, fmt.Errorf("-run: %w", err)
		}
		filter = re
	}
	var own, tests []policies.Module
	data := opts.Data
	var suites []string
	for _, p := range opts.Paths {
		mods, d, err := policies.ReadPath(p, true)
		if err != nil {
			return sum, err
		}
		for _, m := range mods {
			if policies.IsTestFile(m.Name) {
				tests = append(tests, m)
			} else {
				own = append(own, m)
			}
		}
		data = mergeData(data, d)
		found, err := findSuites(p)
		if err != nil {
			return sum, err
		}
		suites = append(suites, found...)
	}
	if len(tests) == 0 && len(suites) == 0 && !opts.AllowEmpty {
		return sum, fmt.Errorf("no _test.rego files and no %s suites under %s", SuiteFile, strings.Join(opts.Paths, ", "))
	}
	modules, err := overlay(opts.Modules, own)
	if err != nil {
		return sum, err
	}

	if len(tests) > 0 {
		s, err := runRego(ctx, opts, filter, append(slices.Clone(modules), tests...), data, w)
		sum.Passed += s.Passed
		sum.Failed += s.Failed
		if err != nil {
			return sum, err
		}
	}
	engines := map[string]*policies.Engine{}
	for _, dir := range suites {
		s, err := runSuite(ctx, opts, filter, dir, modules, data, engines, w)
		sum.Passed += s.Passed
		sum.Failed += s.Failed
		if err != nil {
			return sum, err
		}
	}
	return sum, nil
}

// overlay adds the modules under test to the extra ones; an extra module
// whose package the modules under test also define is dropped, so testing a
// copy of a built-in policy tests the copy.
func overlay(extra, own []policies.Module) ([]policies.Module, error) {
	pkgs := map[string]bool{}
	parsed, err := policies.ParseModules(own)
	if err != nil {
		return nil, err
	}
	for _, m := range parsed {
		pkgs[m.Package.Path.String()] = true
	}
	out := slices.Clone(own)
	if len(extra) == 0 {
		return out, nil
	}
	parsedExtra, err := policies.ParseModules(extra)
	if err != nil {
		return nil, err
	}
	for _, m := range extra {
		if !pkgs[parsedExtra[m.Name].Package.Path.String()] {
			out = append(out, m)
		}
	}
	return out, nil
}

func mergeData(a, b map[string]any) map[string]any {
	if len(b) == 0 {
		return a
	}
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func findSuites(root string) ([]string, error) {
	// ReadPath has already read root; only a directory can hold suites.
	if st, err := os.Stat(root); err != nil || !st.IsDir() {
		return nil, nil //nolint:nilerr // a file or bundle holds no suites
	}
	var dirs []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root && strings.HasPrefix(d.Name(), ".") {
			return fs.SkipDir
		}
		if !d.IsDir() && d.Name() == SuiteFile && !gatorSuite(p) {
			dirs = append(dirs, filepath.Dir(p))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("finding suites under %s: %w", root, err)
	}
	slices.Sort(dirs)
	return dirs, nil
}

// runRego runs the _test.rego tests with OPA's test runner, compiled with
// the same builtins the engine has.
func runRego(ctx context.Context, opts Options, filter *regexp.Regexp, mods []policies.Module, data map[string]any, w io.Writer) (Summary, error) {
	var sum Summary
	parsed, err := policies.ParseModules(mods)
	if err != nil {
		return sum, err
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	builtins := append(policies.StandardBuiltins(), opts.Builtins...)
	var custom []*tester.Builtin
	for _, b := range builtins {
		custom = append(custom, &tester.Builtin{
			Decl: &ast.Builtin{Name: b.Name, Decl: b.Decl},
			Func: rego.FunctionDyn(&rego.Function{Name: b.Name, Decl: b.Decl}, b.Impl),
		})
	}
	if data == nil {
		data = map[string]any{} // the store's root must be an object
	}
	store := inmem.NewFromObject(data)
	runner := tester.NewRunner().
		SetCompiler(policies.NewCompiler(builtins)).
		SetStore(store).
		SetModules(parsed).
		AddCustomBuiltins(custom).
		RaiseBuiltinErrors(true).
		SetTimeout(timeout)
	if filter != nil {
		runner = runner.Filter(filter.String())
	}
	ch, err := runner.RunTests(ctx, nil)
	if err != nil {
		return sum, fmt.Errorf("running Rego tests: %w", err)
	}
	var results []*tester.Result
	for r := range ch {
		results = append(results, r)
	}
	slices.SortFunc(results, func(a, b *tester.Result) int {
		return strings.Compare(a.Location.File+fmt.Sprintf("%08d", a.Location.Row), b.Location.File+fmt.Sprintf("%08d", b.Location.Row))
	})
	for _, r := range results {
		name := strings.TrimPrefix(r.Package, "data.") + "." + r.Name
		switch {
		case r.Skip:
			if opts.Verbose {
				fmt.Fprintf(w, "--- SKIP: %s (%s:%d)\n", name, r.Location.File, r.Location.Row)
			}
		case r.Pass():
			sum.Passed++
			if opts.Verbose {
				fmt.Fprintf(w, "--- PASS: %s (%s)\n", name, r.Duration.Round(time.Microsecond))
			}
		default:
			sum.Failed++
			fmt.Fprintf(w, "--- FAIL: %s (%s:%d)\n", name, r.Location.File, r.Location.Row)
			if r.Error != nil {
				fmt.Fprintf(w, "    error: %v\n", r.Error)
			}
			if len(r.Output) > 0 {
				fmt.Fprintf(w, "    %s\n", strings.ReplaceAll(strings.TrimSpace(string(r.Output)), "\n", "\n    "))
			}
		}
	}
	return sum, nil
}

// gatorSuite reports whether a suite.yaml is a Gatekeeper (gator) Suite,
// which `tollgate test` runs with gator's runner instead.
func gatorSuite(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	return yaml.Unmarshal(b, &head) == nil && head.Kind == "Suite" && strings.HasPrefix(head.APIVersion, "test.gatekeeper.sh/")
}
