package kyvernotest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/apis/v1alpha1"

	"github.com/tollgate-dev/tollgate/policies/kyverno"
	"github.com/tollgate-dev/tollgate/policies/manifest"
)

// Options tune Run. The zero value runs everything.
type Options struct {
	// Run, when set, checks only the results whose "test/policy/rule"
	// matches (tollgate test --run).
	Run *regexp.Regexp
	// Verbose adds each rule's message to the tables (tollgate test -v).
	Verbose bool
}

// Summary counts the results Run checked: Passed and Failed results (a
// test that could not run counts as one failure), and Unsupported results
// that Tollgate does not check (generate rules), reported but not failed.
type Summary struct {
	Passed, Failed, Unsupported int
}

// Run runs every test of each Kyverno test file and writes, per test, a
// table of its results (ID, policy, rule, resource, result, reason) as
// `kyverno test` prints it, then a line per failure naming the test file,
// test, policy, rule and resource and saying what differs. A test that
// cannot run (a file that does not parse, an unknown field, a missing
// policy or resource file, a part Tollgate does not support) is one
// failure naming the file and line; the other tests still run.
func Run(ctx context.Context, files []string, opts Options, w io.Writer) Summary {
	var sum Summary
	for _, f := range files {
		if ctx.Err() != nil {
			fmt.Fprintf(w, "--- FAIL: %s: %v\n", f, ctx.Err())
			sum.Failed++
			continue
		}
		tests, err := loadTests(f)
		if err != nil {
			fmt.Fprintf(w, "--- FAIL: %s\n", indent(err.Error()))
			sum.Failed++
		}
		for _, t := range tests {
			runOne(ctx, t, opts, w, &sum)
		}
	}
	return sum
}

func runOne(ctx context.Context, t *test, opts Options, w io.Writer, sum *Summary) {
	tr, err := prepare(ctx, t)
	if err != nil {
		fmt.Fprintf(w, "--- FAIL: test %s: %s\n", t.name(), indent(err.Error()))
		sum.Failed++
		return
	}
	fmt.Fprintf(w, "=== RUN   %s (%s): %d %s, %d %s\n", t.name(), t.where(), tr.policyCount,
		plural(tr.policyCount, "policy", "policies"), len(tr.resources), plural(len(tr.resources), "resource", "resources"))
	for _, msg := range tr.notes {
		fmt.Fprintf(w, "    warning: %s\n", msg)
	}
	var rows []row
	for i, res := range t.Results {
		if opts.Run != nil && !opts.Run.MatchString(t.name()+"/"+res.Policy+"/"+res.Rule) {
			continue
		}
		rows = append(rows, tr.check(ctx, i, res)...)
	}
	for i := range rows {
		rows[i].id = i + 1
		switch rows[i].result {
		case resultPass:
			sum.Passed++
		case resultFail:
			sum.Failed++
		default:
			sum.Unsupported++
		}
	}
	printTable(w, rows, opts.Verbose)
	failed := 0
	for _, r := range rows {
		switch r.result {
		case resultFail:
			failed++
			fmt.Fprintf(w, "    --- FAIL: %s: test %s: policy %s, rule %s, resource %s: %s\n",
				t.where("results", r.index), t.name(), r.policy, orNone(r.rule), r.resource, indent(r.message))
		case resultUnsupported:
			fmt.Fprintf(w, "    --- SKIP: %s: policy %s, rule %s: %s\n", t.where("results", r.index), r.policy, orNone(r.rule), r.message)
		}
	}
	if failed > 0 {
		fmt.Fprintf(w, "--- FAIL: %s (%s)\n", t.name(), t.file)
		return
	}
	fmt.Fprintf(w, "--- PASS: %s (%s)\n", t.name(), t.file)
}

// testRun is a test ready to check: its policies compiled, its resources
// and values loaded, the engine responses computed on demand.
type testRun struct {
	t           *test
	eval        *kyverno.Evaluator
	values      *v1alpha1.ValuesSpec
	resources   []resource
	policyCount int
	// policies are the test's Kyverno policies by name: what loaded, what
	// did not and why, and their rules.
	policies map[string]*policyInfo
	notes    []string
	// responses are the engine responses by operation, then resource.
	responses map[string][]responses
}

// resource is one resource of the test.
type resource struct {
	doc manifest.Document
	// key names it as `kyverno test` prints it: apiVersion/kind/namespace/name.
	key string
}

func (r *resource) namespace() string { return r.doc.Namespace() }
func (r *resource) name() string      { return r.doc.Name() }

// policyInfo is what the test knows of one policy name.
type policyInfo struct {
	// kinds are the kinds of the objects of that name ("ClusterPolicy").
	kinds []string
	// rules are the names of its rules (kyverno.io kinds only).
	rules map[string]bool
	// loaded is whether a policy of that name runs; failed why not.
	loaded bool
	failed []string
	// ignored are Tollgate's warnings about parts not run: by rule name,
	// "" for the whole policy.
	ignored map[string]string
}

// prepare loads what a test names: values, policies and exceptions,
// resources. A missing or malformed file is an error naming the test
// file's line that names it.
func prepare(ctx context.Context, t *test) (*testRun, error) {
	if err := unsupported(t); err != nil {
		return nil, err
	}
	dir := filepath.Dir(t.file)
	tr := &testRun{t: t, policies: map[string]*policyInfo{}, responses: map[string][]responses{}}
	tr.values = t.Values
	if tr.values == nil && t.Variables != "" {
		v, err := loadValues(fullPath(dir, t.Variables))
		if err != nil {
			return nil, fmt.Errorf("%s: variables: %w", t.where("variables"), err)
		}
		tr.values = v
	}
	if tr.values == nil {
		tr.values = &v1alpha1.ValuesSpec{}
	}
	if len(tr.values.Subresources) > 0 {
		where := t.where("values", "subresources")
		if t.Values == nil {
			where = t.where("variables")
		}
		return nil, fmt.Errorf("%s: values subresources: not supported by tollgate test (judge the subresource's own object instead)", where)
	}
	if len(t.Policies) == 0 {
		return nil, fmt.Errorf("%s: the test names no policies", t.where())
	}
	if len(t.Resources) == 0 {
		return nil, fmt.Errorf("%s: the test names no resources", t.where())
	}

	policyDocs, err := loadFiles(t, dir, "policies", t.Policies)
	if err != nil {
		return nil, err
	}
	exceptionDocs, err := loadFiles(t, dir, "exceptions", t.PolicyExceptions)
	if err != nil {
		return nil, err
	}
	objects := func(docs []manifest.Document) []kyverno.Object {
		out := make([]kyverno.Object, 0, len(docs))
		for _, d := range docs {
			out = append(out, kyverno.Object{Source: d.File + ":" + strconv.Itoa(d.Line), Object: d.Object})
		}
		return out
	}
	for i := range policyDocs {
		tr.describe(&policyDocs[i])
	}
	// A test's exceptions count wherever its resources are, as in
	// `kyverno test`: every namespace is designated.
	eval, err := kyverno.Compile(ctx, objects(policyDocs), kyverno.Options{
		RuleValues:          tr.ruleValues,
		Exceptions:          objects(exceptionDocs),
		ExceptionNamespaces: []string{"*"},
	})
	tr.eval = eval
	tr.policyCount = len(eval.Policies())
	for _, e := range flatten(err) {
		var le *kyverno.LoadError
		if errors.As(e, &le) {
			if p := tr.policies[nameOf(le.Policy)]; p != nil {
				p.failed = append(p.failed, le.Error())
			}
		}
		tr.notes = append(tr.notes, "policy did not load: "+e.Error())
	}
	for _, wn := range eval.Warnings() {
		if p := tr.policies[nameOf(wn.Policy)]; p != nil {
			p.ignored[wn.Rule] = wn.Message
		}
		tr.notes = append(tr.notes, wn.String())
	}
	for _, m := range eval.Policies() {
		if p := tr.policies[nameOf(m.ID)]; p != nil {
			p.loaded = true
		}
	}

	resourceDocs, err := loadFiles(t, dir, "resources", t.Resources)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, d := range resourceDocs {
		r := resource{doc: d, key: strings.Join([]string{d.APIVersion(), d.Kind(), d.Namespace(), d.Name()}, "/")}
		if seen[r.key] {
			tr.notes = append(tr.notes, fmt.Sprintf("%s:%d: resource %s given twice; the first one is used", d.File, d.Line, r.key))
			continue
		}
		seen[r.key] = true
		tr.resources = append(tr.resources, r)
	}
	return tr, nil
}

// unsupported refuses tests that use parts of `kyverno test` Tollgate
// does not run, naming the field: judging without them would report
// results that do not hold.
func unsupported(t *test) error {
	var errs []error
	field := func(set bool, name, why string) {
		if set {
			errs = append(errs, fmt.Errorf("%s: %s: not supported by tollgate test (%s)", t.where(name), name, why))
		}
	}
	offline := "Tollgate evaluates Kyverno policies offline"
	field(t.JSONPayload != "" || len(t.JSONPayloads) > 0, "jsonPayloads", "JSON-mode policies are not run by Tollgate")
	field(len(t.HTTPPayloads) > 0, "httpPayloads", "authorization policies are not run by Tollgate")
	field(len(t.EnvoyPayloads) > 0, "envoyPayloads", "authorization policies are not run by Tollgate")
	field(len(t.TargetResources) > 0, "targetResources", "mutate of existing resources is not run by Tollgate")
	field(len(t.ParamResources) > 0, "paramResources", "ValidatingAdmissionPolicies are tested with tollgate check")
	field(t.UserInfo != "", "userinfo", "roles and cluster roles of a request are not modelled")
	field(t.Context != "", "context", offline)
	field(len(t.ClusterResources) > 0, "clusterResources", offline)
	field(len(t.APICallResponses) > 0, "apiCallResponses", offline+"; API calls fail their rule")
	field(len(t.GlobalContextEntries) > 0, "globalContextEntries", offline)
	return errors.Join(errs...)
}

// loadFiles reads the files a test names under field (policies,
// resources, exceptions), relative to the test file's directory; an error
// names the test file's line that names the file.
func loadFiles(t *test, dir, field string, names []string) ([]manifest.Document, error) {
	var out []manifest.Document
	var errs []error
	for i, n := range names {
		if strings.Contains(n, "://") {
			errs = append(errs, fmt.Errorf("%s: %s[%d]: %s: remote files are not read; give a path relative to the test file", t.where(field, i), field, i, n))
			continue
		}
		docs, err := manifest.Load([]string{fullPath(dir, n)}, nil, manifest.Options{})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %s[%d]: %w", t.where(field, i), field, i, err))
			continue
		}
		if len(docs) == 0 {
			errs = append(errs, fmt.Errorf("%s: %s[%d]: %s holds no objects", t.where(field, i), field, i, n))
			continue
		}
		out = append(out, docs...)
	}
	return out, errors.Join(errs...)
}

// describe records a policy document's name, kind and rules.
func (tr *testRun) describe(d *manifest.Document) {
	apiVersion := d.APIVersion()
	group, _, _ := strings.Cut(apiVersion, "/")
	if group != "kyverno.io" && group != "policies.kyverno.io" {
		if d.Kind() != "" {
			tr.notes = append(tr.notes, fmt.Sprintf("%s:%d: %s %s is not a Kyverno policy; not run by tollgate test", d.File, d.Line, d.Kind(), d.Name()))
		}
		return
	}
	name := d.Name()
	if d.Kind() == "Policy" && d.Namespace() != "" {
		name = d.Namespace() + "/" + name
	}
	p := tr.policies[name]
	if p == nil {
		p = &policyInfo{rules: map[string]bool{}, ignored: map[string]string{}}
		tr.policies[name] = p
	}
	p.kinds = append(p.kinds, d.Kind())
	spec, _ := d.Object["spec"].(map[string]any)
	rules, _ := spec["rules"].([]any)
	for _, r := range rules {
		if m, ok := r.(map[string]any); ok {
			if n, ok := m["name"].(string); ok {
				p.rules[n] = true
			}
		}
	}
}

// ruleValues gives each rule its values from the test's values.
func (tr *testRun) ruleValues(policy, rule string) (map[string]any, map[string][]any) {
	for _, p := range tr.values.Policies {
		if p.Name != policy {
			continue
		}
		for _, r := range p.Rules {
			if r.Name == rule {
				return r.Values, r.ForeachValues
			}
		}
	}
	return nil, nil
}

// resourceValues are the values `kyverno test` sets for a policy and a
// resource: the global values, then the policy's values for the resource,
// with request.operation the operation of the run.
func (tr *testRun) resourceValues(policy, resource, operation string) map[string]any {
	out := map[string]any{}
	for k, v := range tr.values.GlobalValues {
		out[k] = v
	}
	for _, p := range tr.values.Policies {
		if p.Name != policy {
			continue
		}
		for _, r := range p.Resources {
			if r.Name == resource {
				for k, v := range r.Values {
					out[k] = v
				}
			}
		}
	}
	out["request.operation"] = operation
	return out
}

// namespace is the Namespace the values give for a name (its labels for
// namespaceSelectors), or nil.
func (tr *testRun) namespace(name string) map[string]any {
	if name == "" {
		return nil
	}
	for _, n := range tr.values.Namespaces {
		if n.Name == name {
			return map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name, "labels": toAny(n.Labels)}}
		}
	}
	for _, n := range tr.values.NamespaceSelectors {
		if n.Name == name {
			return map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name, "labels": toAny(n.Labels)}}
		}
	}
	return nil
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// operation is the operation of the default run: the global
// request.operation value, else CREATE.
func (tr *testRun) operation() string {
	if op, ok := tr.values.GlobalValues["request.operation"].(string); ok && op != "" {
		return strings.ToUpper(op)
	}
	return "CREATE"
}

func fullPath(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// nameOf turns a Tollgate policy ID ("ClusterPolicy/x",
// "Policy/ns/x") into the name a test result uses ("x", "ns/x").
func nameOf(id string) string {
	_, name, _ := strings.Cut(id, "/")
	return name
}

func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// indent keeps a multi-line message under its line.
func indent(s string) string {
	return strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n        ")
}
