package cli

import (
	"strings"
	"testing"
)

const kyvernoTierException = `apiVersion: kyverno.io/v2
kind: PolicyException
metadata:
  name: web-tier
  namespace: platform-exceptions
  annotations:
    tollgate.dev/reason: tier labels arrive with the next release
spec:
  exceptions:
    - policyName: require-tier
      ruleNames: [autogen-tier-label]
  match:
    any:
      - resources:
          kinds: [Deployment]
          names: [web]
`

// A Kyverno PolicyException among the inputs waives the finding when the
// config designates its namespace for exceptions: the finding is shown,
// naming the exception, and the check passes. Without the config, no
// namespace is designated: the exception is a warning and the finding
// fails the check.
func TestCheckKyvernoException(t *testing.T) {
	dir := t.TempDir()
	pol := write(t, dir, "kyverno.yaml", kyvernoTier)
	ex := write(t, dir, "exception.yaml", kyvernoTierException)
	cfg := write(t, dir, "tollgate.yaml", "exceptions:\n  namespaces: [platform-exceptions]\n")
	ns, web := demoManifests+"namespace.yaml", demoManifests+"web.yaml"

	code, out, errs := run(t, "", "check", "--config", cfg, "--policy", pol, ns, web, ex)
	if code != ExitOK {
		t.Fatalf("exit %d, want 0\n%s%s", code, out, errs)
	}
	for _, want := range []string{
		`ClusterPolicy/require-tier: autogen-tier-label: tier  is not one of ["frontend","backend"] (line 2) — waived by exception platform-exceptions/web-tier (tier labels arrive with the next release)`,
		"1 waived — PASSED",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	code, out, errs = run(t, "", "check", "--policy", pol, ns, web, ex)
	if code != ExitFindings {
		t.Fatalf("exit %d, want 1\n%s%s", code, out, errs)
	}
	want := "exception.yaml:1: policy PolicyException/platform-exceptions/web-tier: not honoured: namespace platform-exceptions is not one the config designates for exceptions (exceptions.namespaces: none designated)"
	if !strings.Contains(errs, want) {
		t.Errorf("stderr lacks %q:\n%s", want, errs)
	}
	if strings.Contains(out, "waived") {
		t.Errorf("waived without a designated namespace:\n%s", out)
	}
}
