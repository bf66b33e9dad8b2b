package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

// kyvernoTests is the Kyverno test suite of policies/kyverno/kyvernotest.
const kyvernoTests = "../../../../policies/kyverno/kyvernotest/testdata/"

// tollgate test runs Kyverno CLI test files unchanged, beside the other
// suites: every result of the suite holds and the run passes.
func TestTestRunsKyvernoTests(t *testing.T) {
	code, out, errs := run(t, "", "test", kyvernoTests+"pass")
	if code != ExitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{
		"=== RUN   platform-policies",
		"--- PASS: platform-policies",
		"PASS\n22 passed, 0 failed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if !hasRow(out, "14 add-owner owner-label v1/Pod/prod/good-pod Pass Ok") {
		t.Errorf("no row for the mutation in\n%s", out)
	}

	// A test file given by itself runs alone, whatever its name.
	dir := t.TempDir()
	suite := write(t, dir, "suite/platform.yaml", readFile(t, kyvernoTests+"pass/kyverno-test.yaml"))
	for _, f := range []string{"values.yaml", "patched-good-pod.yaml", "patched-web.yaml", "exception.yaml"} {
		write(t, dir, "suite/"+f, readFile(t, kyvernoTests+"pass/"+f))
	}
	abs, err := filepath.Abs(kyvernoTests + "policies")
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "suite/platform.yaml", strings.ReplaceAll(readFile(t, suite), "../policies/", abs+"/"))
	code, out, errs = run(t, "", "test", suite)
	if code != ExitOK || !strings.Contains(out, "PASS\n22 passed, 0 failed") {
		t.Errorf("a test file by itself: exit %d\n%s%s", code, out, errs)
	}

	// -v adds the rules' messages.
	code, out, errs = run(t, "", "test", "-v", kyvernoTests+"pass")
	if code != ExitOK || !hasRow(out, "13 allowed-envs env-label v1/Pod/prod/bad-pod Pass Ok env qa is not one of [\"dev\",\"prod\"]") {
		t.Errorf("-v: exit %d\n%s%s", code, out, errs)
	}

	// --run selects results by test/policy/rule.
	code, out, errs = run(t, "", "test", "--run", "platform-policies/no-latest/", kyvernoTests+"pass")
	if code != ExitOK || !strings.Contains(out, "3 passed, 0 failed") || strings.Contains(out, "require-team") {
		t.Errorf("--run: exit %d\n%s%s", code, out, errs)
	}
}

// A wrong expectation fails the run (exit 1) naming the test, policy,
// rule and resource; a broken test file fails it too while the good tests
// beside it still run.
func TestTestKyvernoFailures(t *testing.T) {
	dir := t.TempDir()
	policies, err := filepath.Abs(kyvernoTests + "policies")
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "good/kyverno-test.yaml", `apiVersion: cli.kyverno.io/v1alpha1
kind: Test
metadata: {name: good}
policies: [`+policies+`/require-team.yaml]
resources: [`+policies+`/resources.yaml]
results:
  - {policy: require-team, rule: check-team, kind: Pod, resources: [good-pod], result: pass}
`)
	write(t, dir, "wrong/kyverno-test.yaml", `apiVersion: cli.kyverno.io/v1alpha1
kind: Test
metadata: {name: wrong}
policies: [`+policies+`/require-team.yaml]
resources: [`+policies+`/resources.yaml]
results:
  - {policy: require-team, rule: check-team, kind: Pod, resources: [bad-pod], result: pass}
`)
	write(t, dir, "broken/kyverno-test.yaml", "apiVersion: cli.kyverno.io/v1alpha1\nkind: Test\nmetadata: {name: broken}\npolicies: [\n")

	code, out, errs := run(t, "", "test", dir)
	if code != ExitFindings {
		t.Fatalf("exit %d, want %d\n%s%s", code, ExitFindings, out, errs)
	}
	for _, want := range []string{
		"--- PASS: good",
		"wrong/kyverno-test.yaml:7: test wrong: policy require-team, rule check-team, resource v1/Pod/prod/bad-pod: want pass, got fail: validation error: label team is required",
		"broken/kyverno-test.yaml:4: invalid YAML",
		"FAIL\n1 passed, 2 failed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}

	// A directory without any test at all is still a usage error.
	code, _, errs = run(t, "", "test", t.TempDir())
	if code != ExitUsage || !strings.Contains(errs, "no _test.rego files") {
		t.Errorf("empty dir: exit %d; %s", code, errs)
	}
}

// hasRow tells whether a table of out has a row with these cells.
func hasRow(out, cells string) bool {
	for _, line := range strings.Split(out, "\n") {
		if strings.Join(strings.Fields(line), " ") == cells {
			return true
		}
	}
	return false
}
