package kyvernotest

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/apis/v1alpha1"
	clireport "github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/report"
	engineapi "github.com/kyverno/kyverno/pkg/engine/api"
	"github.com/pmezard/go-difflib/difflib"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/manifest"
)

// Results of a row.
const (
	resultPass        = "Pass"
	resultFail        = "Fail"
	resultUnsupported = "Unsupported"
)

// row is one checked result on one resource and rule, as `kyverno test`
// prints it; index is the result's position in the test's results.
type row struct {
	id, index               int
	policy, rule, resource  string
	result, reason, message string
}

// responses are the engine responses of one resource, or why there are
// none.
type responses struct {
	resource *resource
	resps    []engineapi.EngineResponse
	err      error
}

// run evaluates every resource for one operation, once.
func (tr *testRun) run(ctx context.Context, op string) []responses {
	if out, ok := tr.responses[op]; ok {
		return out
	}
	out := make([]responses, len(tr.resources))
	for i := range tr.resources {
		r := &tr.resources[i]
		in := policies.ObjectInput(r.doc.File, r.doc.Object, tr.namespace(r.namespace()))
		in.Operation = op
		switch op {
		case "UPDATE":
			in.OldObject = r.doc.Object
		case "DELETE":
			in.Object, in.OldObject = nil, r.doc.Object
		}
		resps, err := tr.eval.Responses(ctx, in, func(policy string) map[string]any {
			return tr.resourceValues(policy, r.name(), op)
		})
		out[i] = responses{resource: r, resps: resps, err: err}
	}
	tr.responses[op] = out
	return out
}

// check compares one expected result with what the engine reported, on
// every resource it names, as `kyverno test` does; where Tollgate differs
// (a policy, rule or resource the test does not have; a generate rule) the
// row says so.
func (tr *testRun) check(ctx context.Context, index int, res v1alpha1.TestResult) []row {
	base := row{index: index, policy: res.Policy, rule: res.Rule}
	one := func(resource, result, reason, msg string) []row {
		r := base
		r.resource, r.result, r.reason, r.message = resource, result, reason, msg
		return []row{r}
	}
	all := strings.Join(resourceNames(res), ", ")
	if all == "" {
		all = "(all)"
	}
	if res.GeneratedResource != "" || len(res.GeneratedResources) > 0 || res.CloneSourceResource != "" {
		return one(all, resultUnsupported, "Generate", "generate rules are not run by Tollgate; the generated resource is not checked")
	}
	for _, k := range []struct {
		set  bool
		kind string
	}{
		{res.IsValidatingAdmissionPolicy, "ValidatingAdmissionPolicy"},
		{res.IsMutatingAdmissionPolicy, "MutatingAdmissionPolicy"},
		{res.IsDeletingPolicy, "DeletingPolicy"},
		{res.IsImageValidatingPolicy, "ImageValidatingPolicy"},
		{res.IsGeneratingPolicy, "GeneratingPolicy"},
	} {
		if k.set {
			return one(all, resultUnsupported, "Kind", k.kind+" results are not checked by tollgate test")
		}
	}
	switch res.Result {
	case "pass", "fail", "warn", "error", "skip":
	default:
		return one(all, resultFail, "Bad result", fmt.Sprintf("result %q: want pass, fail, warn, error or skip", res.Result))
	}
	op := tr.operation()
	if res.Operation != "" {
		op = strings.ToUpper(res.Operation)
		switch op {
		case "CREATE", "UPDATE", "DELETE":
		default:
			return one(all, resultFail, "Bad operation", fmt.Sprintf("operation %q: want CREATE, UPDATE or DELETE", res.Operation))
		}
	}

	p := tr.policy(res.Policy)
	switch {
	case p == nil:
		return one(all, resultFail, "No such policy", fmt.Sprintf("policy %s is not among the test's policies (%s)", res.Policy, strings.Join(tr.t.Policies, ", ")))
	case !p.loaded && len(p.failed) > 0:
		return one(all, resultFail, "Invalid policy", "the policy did not load: "+strings.Join(p.failed, "; "))
	case !p.loaded:
		return one(all, resultUnsupported, "Not run", p.ignored[""])
	case res.Rule != "" && len(p.rules) > 0 && !p.rules[res.Rule]:
		return one(all, resultFail, "No such rule", fmt.Sprintf("rule %s is not a rule of policy %s", res.Rule, res.Policy))
	case res.Rule != "" && p.ignored[res.Rule] != "":
		return one(all, resultUnsupported, "Not run", p.ignored[res.Rule])
	}
	// The policy's name without its namespace, as Kyverno's responses name it.
	policyName := res.Policy[strings.LastIndex(res.Policy, "/")+1:]

	runs := tr.run(ctx, op)
	var chosen []*responses
	var rows []row
	if names := resourceNames(res); len(names) > 0 {
		for _, n := range res.Resources {
			found := false
			for i := range runs {
				if matchesName(runs[i].resource, n) {
					chosen, found = append(chosen, &runs[i]), true
				}
			}
			if !found {
				rows = append(rows, one(n, resultFail, "No such resource", fmt.Sprintf("resource %s is not among the test's resources (%s)", n, strings.Join(tr.t.Resources, ", ")))...)
			}
		}
		for _, s := range res.ResourceSpecs {
			found := false
			for i := range runs {
				if matchesSpec(runs[i].resource, s) {
					chosen, found = append(chosen, &runs[i]), true
				}
			}
			if !found {
				n := strings.Trim(strings.Join([]string{s.Group, s.Version, s.Kind, s.Namespace, s.Name}, "/"), "/")
				rows = append(rows, one(n, resultFail, "No such resource", fmt.Sprintf("resource %s is not among the test's resources (%s)", n, strings.Join(tr.t.Resources, ", ")))...)
			}
		}
	} else {
		for i := range runs {
			chosen = append(chosen, &runs[i])
		}
	}
	for _, c := range chosen {
		rows = append(rows, tr.checkResource(base, res, policyName, c)...)
	}
	return rows
}

// policy finds the policy a result names: "name" or "namespace/name" as
// the test's policies are keyed, else by name alone, as `kyverno test`
// matches them.
func (tr *testRun) policy(name string) *policyInfo {
	if p := tr.policies[name]; p != nil {
		return p
	}
	bare := name[strings.LastIndex(name, "/")+1:]
	for _, key := range slices.Sorted(maps.Keys(tr.policies)) {
		if key[strings.LastIndex(key, "/")+1:] == bare {
			return tr.policies[key]
		}
	}
	return nil
}

// checkResource checks one result on one resource's responses.
func (tr *testRun) checkResource(base row, res v1alpha1.TestResult, policyName string, c *responses) []row {
	base.resource = c.resource.key
	if c.err != nil {
		r := base
		r.result, r.reason, r.message = resultFail, "Error", "evaluating the resource: "+c.err.Error()
		return []row{r}
	}
	var rows []row
	skipped := false
	for _, resp := range c.resps {
		if resp.Policy() == nil || resp.Policy().GetName() != policyName {
			continue
		}
		var rules []engineapi.RuleResponse
		ruleless := resp.Policy().GetKind() != "ClusterPolicy" && resp.Policy().GetKind() != "Policy"
		for _, rr := range resp.PolicyResponse.Rules {
			if res.Rule == "" || ruleless || rr.Name() == res.Rule || rr.Name() == "autogen-"+res.Rule || rr.Name() == "autogen-cronjob-"+res.Rule {
				rules = append(rules, rr)
			}
		}
		for _, rr := range rules {
			actual := resp.Resource
			if rr.RuleType() == engineapi.Mutation {
				actual = resp.PatchedResource
			}
			r := base
			r.rule = rr.Name()
			ok, reason, msg, missing := tr.checkRule(res, resp, rr, actual)
			if missing && !res.FailOnMissingResources {
				skipped = true
				continue
			}
			r.result, r.reason, r.message = resultFail, reason, msg
			if ok {
				r.result = resultPass
			}
			rows = append(rows, r)
		}
		// No rule response: the rule did not match the resource, which
		// `kyverno test` counts as a pass.
		if len(rows) == 0 && !skipped {
			r := base
			r.result, r.reason, r.message = resultPass, "Excluded", "the rule does not match the resource"
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 && !skipped {
		r := base
		r.result, r.reason, r.message = resultFail, "Not found", fmt.Sprintf("policy %s gave no result for the resource", base.policy)
		rows = append(rows, r)
	}
	return rows
}

// checkRule compares one rule's response with the expected result (and
// patched resource), as `kyverno test` does: ok, the reason shown, the
// message, and whether the expected patched resource file does not hold
// the resource.
func (tr *testRun) checkRule(res v1alpha1.TestResult, resp engineapi.EngineResponse, rr engineapi.RuleResponse, actual unstructured.Unstructured) (ok bool, reason, msg string, missing bool) {
	if res.PatchedResources != "" {
		file := fullPath(dirOf(tr.t.file), res.PatchedResources)
		expected, err := findResource(file, actual)
		if err != nil {
			return false, "Resource error", err.Error(), strings.Contains(err.Error(), "not found in")
		}
		equal, diff, err := compare(actual.Object, expected)
		if err != nil {
			return false, "Resource error", err.Error(), false
		}
		if !equal {
			return false, "Resource diff", "the patched resource differs from " + res.PatchedResources + ":\n" + diff, false
		}
	}
	got := clireport.ComputePolicyReportResult(false, resp, rr)
	if string(got.Result) != string(res.Result) {
		return false, fmt.Sprintf("Want %s, got %s", res.Result, got.Result), fmt.Sprintf("want %s, got %s: %s", res.Result, got.Result, got.Description), false
	}
	return true, "Ok", got.Description, false
}

// findResource reads the resource of a patched resources file with the
// apiVersion, kind, namespace and name of actual.
func findResource(file string, actual unstructured.Unstructured) (map[string]any, error) {
	docs, err := manifest.Load([]string{file}, nil, manifest.Options{})
	if err != nil {
		return nil, err
	}
	for _, d := range docs {
		if d.APIVersion() == actual.GetAPIVersion() && d.Kind() == actual.GetKind() && d.Namespace() == actual.GetNamespace() && d.Name() == actual.GetName() {
			return d.Object, nil
		}
	}
	return nil, fmt.Errorf("%s %s not found in %s", actual.GetKind(), actual.GetName(), file)
}

// compare tells whether two objects are equal once empty maps and lists
// are dropped (Kyverno's CLI tidies them the same way), with a diff of
// their YAML when they are not.
func compare(actual, expected map[string]any) (bool, string, error) {
	a, err := json.Marshal(tidy(normalize(actual)))
	if err != nil {
		return false, "", err
	}
	e, err := json.Marshal(tidy(normalize(expected)))
	if err != nil {
		return false, "", err
	}
	patch, err := jsonpatch.CreateMergePatch(a, e)
	if err != nil {
		return false, "", fmt.Errorf("comparing the patched resource: %w", err)
	}
	if string(patch) == "{}" {
		return true, "", nil
	}
	ay, _ := yaml.JSONToYAML(a)
	ey, _ := yaml.JSONToYAML(e)
	diff, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(string(ey)), B: difflib.SplitLines(string(ay)),
		FromFile: "expected", ToFile: "actual", Context: 2,
	})
	return false, strings.TrimRight(diff, "\n"), nil
}

// normalize gives both sides the same JSON shape (numbers as JSON reads
// them).
func normalize(obj map[string]any) any {
	raw, err := json.Marshal(obj)
	if err != nil {
		return obj
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		return obj
	}
	return out
}

// tidy drops empty maps, lists and nulls, as Kyverno's CLI does before
// comparing resources.
func tidy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range t {
			if x = tidy(x); x != nil {
				out[k] = x
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	case []any:
		var out []any
		for _, x := range t {
			if x = tidy(x); x != nil {
				out = append(out, x)
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	}
	return v
}

// resourceNames lists the resources a result names, as written.
func resourceNames(res v1alpha1.TestResult) []string {
	out := append([]string(nil), res.Resources...)
	for _, s := range res.ResourceSpecs {
		out = append(out, strings.Trim(s.Namespace+"/"+s.Name, "/"))
	}
	return out
}

// matchesName matches "name" or "namespace/name", as `kyverno test` does.
func matchesName(r *resource, n string) bool {
	if ns, name, ok := strings.Cut(n, "/"); ok {
		return r.namespace() == ns && r.name() == name
	}
	return r.name() == n
}

// matchesSpec matches a resourceSpecs entry: group/version, namespace and
// name (and kind when given).
func matchesSpec(r *resource, s v1alpha1.TestResourceSpec) bool {
	gv := s.Version
	if s.Group != "" {
		gv = s.Group + "/" + s.Version
	}
	return r.doc.APIVersion() == gv && r.namespace() == s.Namespace && r.name() == s.Name && (s.Kind == "" || s.Kind == r.doc.Kind())
}

func dirOf(file string) string {
	if i := strings.LastIndexAny(file, `/\`); i >= 0 {
		return file[:i]
	}
	return "."
}
