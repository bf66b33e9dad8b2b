package library_test

import (
	"io/fs"
	"os"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/library"
	"github.com/tollgate-dev/tollgate/policies/policytest"
)

// policyFile is one policy module of the library with its metadata.
type policyFile struct {
	path     string
	pkg      string
	title    string
	custom   map[string]any
	hasRules bool
}

func loadPolicies(t *testing.T) []policyFile {
	t.Helper()
	var out []policyFile
	err := fs.WalkDir(library.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".rego") || strings.HasSuffix(p, "_test.rego") {
			return err
		}
		src, err := fs.ReadFile(library.FS(), p)
		if err != nil {
			return err
		}
		m, err := ast.ParseModuleWithOpts(p, string(src), ast.ParserOptions{ProcessAnnotation: true})
		if err != nil {
			t.Errorf("parsing %s: %v", p, err)
			return nil
		}
		f := policyFile{path: p, pkg: m.Package.Path.String()}
		for _, r := range m.Rules {
			if r.Head.Name.String() == "violation" {
				f.hasRules = true
			}
		}
		for _, a := range m.Annotations {
			if a.Scope == "package" {
				f.title, f.custom = a.Title, a.Custom
			}
		}
		out = append(out, f)
		return nil
	})
	if err != nil {
		t.Fatalf("walking the library: %v", err)
	}
	return out
}

var (
	idPattern   = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	frameworks  = map[string]bool{"pss": true, "cis": true, "nsa": true, "soc2": true}
	scopes      = map[string]bool{string(policies.ScopePod): true, string(policies.ScopeObject): true}
	pssAreaByID = map[string]string{"pss/baseline": "pss-baseline-", "pss/restricted": "pss-restricted-"}
)

// TestPolicyMetadata checks what reports, SARIF and config overrides rely
// on: every policy has complete, well-formed metadata and a unique id, and
// library packages define no violations.
func TestPolicyMetadata(t *testing.T) {
	files := loadPolicies(t)
	if len(files) < 20 {
		t.Fatalf("found %d modules; the embed patterns are missing some", len(files))
	}
	seen := map[string]string{}
	for _, f := range files {
		t.Run(f.path, func(t *testing.T) {
			dir := path.Dir(f.path)
			if dir == "lib" {
				if f.hasRules {
					t.Errorf("library package %s defines violation", f.pkg)
				}
				return
			}
			if !f.hasRules {
				t.Fatalf("%s defines no violation rule", f.pkg)
			}
			if f.title == "" || f.custom == nil {
				t.Fatalf("%s has no package METADATA with title and custom fields", f.pkg)
			}
			id, _ := f.custom["id"].(string)
			if !idPattern.MatchString(id) {
				t.Errorf("id %q is not lowercase words joined by '-'", id)
			}
			if prev, ok := seen[id]; ok {
				t.Errorf("id %q used by %s and %s", id, prev, f.path)
			}
			seen[id] = f.path
			if prefix, ok := pssAreaByID[dir]; ok && !strings.HasPrefix(id, prefix) {
				t.Errorf("id %q in %s should start with %s", id, dir, prefix)
			}
			if s, _ := f.custom["severity"].(string); s == "" {
				t.Error("severity is not set")
			} else if _, err := policies.ParseSeverity(s); err != nil {
				t.Error(err)
			}
			if a, _ := f.custom["action"].(string); a == "" {
				t.Error("action is not set")
			} else if action, err := policies.ParseAction(a); err != nil || action == policies.ActionDisabled {
				t.Errorf("action %q: %v", a, err)
			}
			scope, _ := f.custom["scope"].(string)
			if !scopes[scope] {
				t.Errorf("scope %q is neither pod nor object", scope)
			}
			if _, ok := f.custom["kinds"]; ok && scope != string(policies.ScopeObject) {
				t.Error("kinds is set on a pod-scoped policy")
			}
			if r, _ := f.custom["remediation"].(string); strings.TrimSpace(r) == "" {
				t.Error("remediation is empty")
			}
			controls, _ := f.custom["controls"].([]any)
			for _, c := range controls {
				m, _ := c.(map[string]any)
				fw, _ := m["framework"].(string)
				cid, _ := m["id"].(string)
				if !frameworks[fw] || cid == "" {
					t.Errorf("control %v: want a framework of pss, cis, nsa, soc2 and an id", c)
				}
			}
			if strings.HasPrefix(dir, "pss/") && len(controls) == 0 {
				t.Error("a Pod Security Standards policy must name its controls")
			}
		})
	}
}

// TestPoliciesHaveTests checks every policy has Rego tests beside it, a
// fixture suite, and a row in the README table.
func TestPoliciesHaveTests(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatalf("reading README.md: %v", err)
	}
	for _, f := range loadPolicies(t) {
		if path.Dir(f.path) == "lib" {
			continue
		}
		id, _ := f.custom["id"].(string)
		t.Run(id, func(t *testing.T) {
			test := strings.TrimSuffix(f.path, ".rego") + "_test.rego"
			if _, err := fs.Stat(library.FS(), test); err != nil {
				t.Errorf("no Rego tests: %v", err)
			}
			suite := path.Join(path.Dir(f.path), "testdata", id, "suite.yaml")
			if _, err := os.Stat(suite); err != nil {
				t.Errorf("no fixture suite: %v", err)
			}
			for _, dir := range []string{"allowed", "denied"} {
				matches, _ := fs.Glob(os.DirFS(path.Dir(suite)), dir+"/*.yaml")
				if len(matches) == 0 {
					t.Errorf("fixture suite has no %s/*.yaml", dir)
				}
			}
			if !strings.Contains(string(readme), "| `"+id+"` |") {
				t.Errorf("README.md has no row for %s", id)
			}
		})
	}
}

// TestFS checks the embedded tree is rooted at the library and holds only
// Rego.
func TestFS(t *testing.T) {
	for _, p := range []string{"lib/pods.rego", "lib/images.rego", "pss/baseline/privileged.rego", "pss/restricted/seccomp.rego"} {
		if _, err := fs.Stat(library.FS(), p); err != nil {
			t.Errorf("FS() lacks %s: %v", p, err)
		}
	}
	err := fs.WalkDir(library.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(p, ".rego") {
			t.Errorf("FS() holds %s, which is not Rego", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(library.Version) {
		t.Errorf("Version %q is not MAJOR.MINOR.PATCH", library.Version)
	}
}

// TestRegoTestsAndSuites runs what `tollgate test policies/library` runs:
// every _test.rego file and every fixture suite, through the engine.
func TestRegoTestsAndSuites(t *testing.T) {
	var out strings.Builder
	sum, err := policytest.Run(t.Context(), policytest.Options{Paths: []string{"."}, Verbose: testing.Verbose()}, &out)
	if err != nil {
		t.Fatalf("running the library's tests: %v\n%s", err, out.String())
	}
	if sum.Failed > 0 {
		t.Errorf("%d of %d failed:\n%s", sum.Failed, sum.Passed+sum.Failed, out.String())
	} else if testing.Verbose() {
		t.Logf("%d passed:\n%s", sum.Passed, out.String())
	}
	if sum.Passed < 100 {
		t.Errorf("only %d tests and fixtures passed; the runner found too few", sum.Passed)
	}
}
