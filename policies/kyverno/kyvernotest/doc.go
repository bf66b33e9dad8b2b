// Package kyvernotest runs Kyverno CLI test files (kyverno-test.yaml,
// cli.kyverno.io/v1alpha1 Test, the files `kyverno test` reads) through
// Tollgate's Kyverno evaluator, so that a team's existing Kyverno test
// suites run unchanged in `tollgate test` and judge with the engine
// Tollgate's admission uses.
//
// A test names its policies, resources, values (a Values file or inline:
// global values, per-policy resource values, per-rule values standing for
// context entries, namespace labels), PolicyExceptions, and the expected
// result of each policy, rule and resource: pass, fail, warn, error or
// skip, with the patched resource a mutation must produce. The test file
// and values are Kyverno's own types (kyverno's
// cmd/cli/kubectl-kyverno/apis/v1alpha1), decoded strictly as `kyverno
// test` decodes them; each rule's result is Kyverno's own
// (cmd/cli/kubectl-kyverno/report.ComputePolicyReportResult) over the
// engine responses of policies/kyverno; matching a result with the rules
// and resources it names follows `kyverno test`.
//
// Where Tollgate differs, it says so rather than pass silently: a result
// naming a policy, rule or resource the test does not have fails with a
// message naming it (`kyverno test` passes a misspelt rule as excluded and
// skips a resource it cannot find); results of generate rules are
// reported as not checked, and tests using parts
// Tollgate does not run (payloads, target resources, cluster resources,
// API call mocks, user info) fail naming the field.
package kyvernotest
