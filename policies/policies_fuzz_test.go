package policies_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/policies"
)

// readSeeds returns the content of every file under root whose name ends in
// suffix: the repository's real policies, configs and fixtures.
func readSeeds(t testing.TB, root, suffix string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, suffix) {
			return err
		}
		data, err := os.ReadFile(p)
		out = append(out, string(data))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// fuzzPod is what each compiled policy is evaluated on.
var fuzzPod = map[string]any{
	"apiVersion": "v1", "kind": "Pod",
	"metadata": map[string]any{"name": "p", "namespace": "shop", "labels": map[string]any{"team": "payments"}},
	"spec": map[string]any{"containers": []any{map[string]any{
		"name": "c", "image": "nginx:1.27", "securityContext": map[string]any{"privileged": true},
	}}},
}

// problemAt is where a compile problem must say it is: the module's file
// name, a line within it (or one past its end, where a parser reports an
// unexpected end of file), and a column.
var problemAt = regexp.MustCompile(`^fuzz\.rego:(\d+)(?::\d+)?: `)

// limitNote ends the problems when the compiler stopped counting.
const limitNote = "(the compiler stops after 10 problems: more may follow)"

// FuzzCompile loads any text as a Rego policy module, as a user policy,
// a ConfigMap or a bundle brings one: it never panics; every problem names
// the file and a line inside it; a module that compiles yields an engine
// whose evaluation of a Pod reports only its own policies, with each
// policy's failure contained in an error rather than a crash.
func FuzzCompile(f *testing.F) {
	for _, root := range []string{"library", "testdata/bundle-src"} {
		for _, text := range readSeeds(f, root, ".rego") {
			f.Add(text)
		}
	}
	for _, text := range []string{
		"", "package", "package x\n", "package x\nviolation contains {\"msg\": 1} if true\n",
		"# METADATA\n# custom:\n#   id: x\npackage x\nviolation contains {\"msg\": \"m\"} if true\n",
		"# METADATA\n# custom: [\npackage x\n",
		"package x\nimport rego.v1\nviolation contains msg if { msg := 1/0 }\n",
		"package x\nviolation contains {\"msg\": \"m\"} if { some i in numbers.range(1, 100000000); i < 0 }\n",
		"package x\nviolation[msg] { msg := \"v0 syntax\" }\n",
	} {
		f.Add(text)
	}
	f.Fuzz(func(t *testing.T, text string) {
		e, err := policies.New(context.Background(), policies.Options{
			Modules:       []policies.Module{{Name: "fuzz.rego", Text: text}},
			PolicyTimeout: 50 * time.Millisecond,
		})
		lines := strings.Count(text, "\n") + 1
		if err != nil {
			var ce *policies.CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("error is not a CompileError: %v", err)
			}
			if len(ce.Problems) == 0 {
				t.Fatalf("CompileError without problems")
			}
			for _, p := range ce.Problems {
				if p == limitNote {
					continue
				}
				m := problemAt.FindStringSubmatch(p)
				if m == nil {
					t.Fatalf("problem does not say where it is (fuzz.rego:line): %q", p)
				}
				if n, _ := strconv.Atoi(m[1]); n < 1 || n > lines+1 {
					t.Fatalf("problem at line %d of a %d-line module: %q", n, lines, p)
				}
			}
			return
		}
		ids := map[string]bool{}
		for _, m := range e.Policies() {
			if m.Source != "fuzz.rego" || m.Line < 1 || m.Line > lines {
				t.Fatalf("policy %s at %s:%d, outside the module", m.ID, m.Source, m.Line)
			}
			ids[m.ID] = true
		}
		d := e.Evaluate(context.Background(), policies.ObjectInput(policies.SourceCheck, fuzzPod, nil))
		for _, fd := range d.Findings {
			if !ids[fd.Policy] {
				t.Fatalf("finding of policy %q, which the module does not define", fd.Policy)
			}
		}
		for _, pe := range d.Errors {
			if pe.Policy != "" && !ids[pe.Policy] {
				t.Fatalf("error of policy %q, which the module does not define: %v", pe.Policy, pe)
			}
		}
	})
}

// configProblem is how each problem of a config begins: the field path it
// is at, "(top level)", or a parse error that gives the line.
var (
	configProblem = regexp.MustCompile(`^(\(top level\)|[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9_-]*|\[\d+\]|\["(?:[^"\\]|\\.)*"\])*:)`)
	yamlProblem   = regexp.MustCompile(`^parsing: .*\bline \d+: `)
)

// FuzzConfig parses any bytes as the platform config: never a panic; each
// problem says where it is (a field path, or the line of a YAML error);
// a config that parses is valid, and an engine builds on it.
func FuzzConfig(f *testing.F) {
	for _, root := range []string{"library", "."} {
		for _, doc := range readSeeds(f, root, "config.yaml") {
			f.Add([]byte(doc))
		}
	}
	if doc, err := os.ReadFile("config.example.yaml"); err == nil {
		f.Add(doc)
	}
	for _, doc := range []string{
		"", "null", "[]", "labels: 3\n", "labels: {team: {key: ''}}\n", "exemptNamespaces: [a, 1]\n",
		"apiVersion: tollgate.dev/v1alpha1\nkind: TollgateConfig\nmetadata: {name: c}\nspec: {}\n",
		"kind: TollgateConfig\nspec: null\n", "policies: {x: {action: deny}}\n", "podSecurity: {version: v1.99}\n",
		"labels: {team: {pattern: '('}}\n", "mutations: {securityContext: {runAsUser: -1}}\n", "a: [\n",
		"parameters: {naming: {patterns: {Pod: '[a-'}}}\n", "parameters: {naming: {patterns: {'a\"b.c': '('}}}\n", "{\"labels\": {\"team\": {\"required\": \"yes\"}}}",
	} {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := policies.ParseConfig(data)
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				parsing := strings.HasPrefix(line, "parsing: ")
				if parsing && !yamlProblem.MatchString(line) || !parsing && !configProblem.MatchString(line) {
					t.Fatalf("problem does not say where it is: %q\nin: %v", line, err)
				}
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("ParseConfig accepted a config that does not validate: %v", err)
		}
		// With no policies loaded, the only complaint may be overrides of
		// policies the config names.
		if _, err := policies.New(context.Background(), policies.Options{Config: cfg}); err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "config policies.") || !strings.HasSuffix(line, "no loaded policy has this id (see `tollgate policies`)") {
					t.Fatalf("an engine does not build on an accepted config: %v", err)
				}
			}
		}
	})
}

// FuzzExceptions builds an exception and an object from the fuzzer's
// strings and checks how exceptions match: a problem names its spec field;
// an exception covers only the policies it names; each match field only
// narrows (clearing one never uncovers an object); a literal name, kind,
// namespace or label covers exactly the object that carries it; an expired
// exception waives nothing and a waived finding records who waived it.
func FuzzExceptions(f *testing.F) {
	f.Add("pss-baseline-privileged", "shop", "legacy-app-7d9c", "apps/Deployment", "shop", "legacy-app*", "app", "legacy", int64(3600))
	f.Add("x", "", "node-1", "Node", "*", "node-?", "", "", int64(-1))
	f.Add("x", "kube-system", "a", "Pod", "[", "a", "k", "v", int64(0))
	f.Add("*", "ns", "n", "batch/Job", "ns", "n", "a", "b", int64(10))
	f.Add("p", "ns", "web", "Deployment", "n[!a]", "w\\eb", "team", "", int64(1))
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, policy, ns, name, kind, nsGlob, nameGlob, labelKey, labelValue string, expiresIn int64) {
		group, k, _ := strings.Cut(kind, "/")
		if k == "" {
			group, k = "", kind
		}
		apiVersion := "v1"
		if group != "" {
			apiVersion = group + "/v1"
		}
		meta := map[string]any{"name": name, "labels": map[string]any{labelKey: labelValue}}
		if ns != "" {
			meta["namespace"] = ns
		}
		in := policies.ObjectInput(policies.SourceAdmission, map[string]any{"apiVersion": apiVersion, "kind": k, "metadata": meta}, nil)
		x := policies.Exception{
			Namespace: "platform-exceptions", Name: "x", Policies: []string{policy},
			Match: policies.ExceptionMatch{
				Namespaces: []string{nsGlob}, Names: []string{nameGlob}, Kinds: []string{kind},
				Labels: map[string]string{labelKey: labelValue},
			},
			Reason: "r", Approver: "a", Expires: now.Add(time.Duration(expiresIn) * time.Second),
		}
		if err := x.Validate(); err != nil {
			for _, line := range strings.Split(strings.TrimPrefix(err.Error(), "exception platform-exceptions/x: "), "\n") {
				if !strings.HasPrefix(line, "spec.") {
					t.Fatalf("problem does not name its field: %q", line)
				}
			}
			return
		}
		covered := x.Covers(policy, in)
		if x.Covers(policy+"-other", in) {
			t.Fatalf("the exception covers a policy it does not name")
		}
		for _, clear := range []func(*policies.ExceptionMatch){
			func(m *policies.ExceptionMatch) { m.Namespaces = nil },
			func(m *policies.ExceptionMatch) { m.Names = nil },
			func(m *policies.ExceptionMatch) { m.Kinds = nil },
			func(m *policies.ExceptionMatch) { m.Labels = nil },
		} {
			wider := x
			clear(&wider.Match)
			if covered && !wider.Covers(policy, in) {
				t.Fatalf("clearing a match field uncovered the object: %+v", wider.Match)
			}
		}
		literal := x
		literal.Match = policies.ExceptionMatch{
			Namespaces: []string{globQuote(ns)}, Names: []string{globQuote(name)}, Kinds: []string{kind},
			Labels: map[string]string{labelKey: labelValue},
		}
		// ("/" alone names no kind: the object's kind is then "/".)
		if literal.Validate() == nil && !(group == "" && k == kind && strings.Contains(kind, "/")) && !literal.Covers(policy, in) {
			t.Fatalf("an exception naming the object literally does not cover it: %+v", literal.Match)
		}
		d := &policies.Decision{Findings: []policies.Finding{
			{Policy: policy, Action: policies.ActionEnforce}, {Policy: policy + "-other", Action: policies.ActionEnforce},
		}}
		d.ApplyExceptions(in, []policies.Exception{x}, now)
		waived := d.Findings[0].Waived()
		if waived != (covered && x.Active(now)) {
			t.Fatalf("waived %v, covered %v, active %v (expires %s)", waived, covered, x.Active(now), x.Expires)
		}
		if d.Findings[1].Waived() {
			t.Fatalf("a finding of another policy was waived")
		}
		if waived && (d.Findings[0].Exception.Approver != "a" || !d.Findings[0].Exception.Expires.Equal(x.Expires)) {
			t.Fatalf("a waived finding does not record its exception: %+v", d.Findings[0].Exception)
		}
		if slices.Contains([]string{"", "*"}, policy) {
			t.Fatalf("an exception for policy %q validated", policy)
		}
	})
}

// globQuote writes s as a glob that matches s alone.
func globQuote(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ { // bytes: a glob matches invalid UTF-8 byte for byte
		if strings.IndexByte(`*?[\`, s[i]) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
