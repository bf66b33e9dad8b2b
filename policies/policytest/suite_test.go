package policytest_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/policies/policytest"
)

// scanPolicy flags every image whose scan is not "scanned", so a suite
// shows what input.imageScans held.
const scanPolicy = `# METADATA
# custom:
#   id: scan-status
#   scope: pod
package test.scanstatus

violation contains {"msg": sprintf("%s is %s", [c.image, input.imageScans[c.image].status]), "path": ["spec", "containers", i, "image"]} if {
	some i, c in input.pod.spec.containers
	input.imageScans[c.image].status != "scanned"
}
`

const scanPod = `apiVersion: v1
kind: Pod
metadata: {name: p, namespace: shop}
spec:
  containers:
    - {name: a, image: "app:1"}
    - {name: b, image: "app:2"}
`

// writeSuite lays out a suite with the policy, one denied Pod and the
// given scans.yaml.
func writeSuite(t *testing.T, scans string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"policy.rego":           scanPolicy,
		"suite/suite.yaml":      "policies: [scan-status]\nimageScans: scans.yaml\npodControllers: true\ncases:\n  - fixture: denied/pod.yaml\n    expect:\n      - {path: \"spec.containers[1].image\", message: app:2 is pending}\n",
		"suite/denied/pod.yaml": scanPod,
		"suite/scans.yaml":      scans,
	}
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestSuiteImageScans checks a suite's scans reach input.imageScans, an
// image the file does not list being pending, and that a malformed scans
// file is an error naming the file and what is wrong.
func TestSuiteImageScans(t *testing.T) {
	run := func(dir string) (policytest.Summary, string, error) {
		var out strings.Builder
		sum, err := policytest.Run(context.Background(), policytest.Options{Paths: []string{dir}}, &out)
		return sum, out.String(), err
	}
	sum, out, err := run(writeSuite(t, "app:1: {status: scanned, counts: {CRITICAL: 0}}\n"))
	if err != nil || sum.Failed != 0 || sum.Passed != 9 {
		t.Errorf("a good suite: %+v, %v\n%s", sum, err, out)
	}
	sum, out, err = run(writeSuite(t, "app:1: {status: failed, error: gone}\n"))
	if err != nil || sum.Failed != 9 || !strings.Contains(out, "app:1 is failed") {
		t.Errorf("a failed scan must show in the findings: %+v, %v\n%s", sum, err, out)
	}
	for _, tc := range []struct{ name, scans, want string }{
		{"not a map", "- app:1\n", "scans.yaml: error unmarshaling JSON"},
		{"unknown field", "app:1: {status: scanned, critical: 3}\n", `unknown field "critical"`},
		{"unknown status", "app:1: {status: clean}\n", `scans.yaml: "app:1": status "clean" is not one of scanned, pending, failed, stale`},
		{"empty summary", "app:1:\n", `scans.yaml: "app:1": empty summary`},
		{"bad time", "app:1: {status: scanned, scannedAt: yesterday}\n", "scans.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, out, err := run(writeSuite(t, tc.scans))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "imageScans") {
				t.Errorf("error %v, want one naming imageScans and %q\n%s", err, tc.want, out)
			}
		})
	}
}
