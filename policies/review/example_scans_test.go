package review_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/library"
	"github.com/tollgate-dev/tollgate/policies/review"
	"github.com/tollgate-dev/tollgate/policies/vuln"
)

// exampleScans is a scan store with one result: the image's scan, as the
// cluster's scan store would give it. Other images are pending.
type exampleScans map[string]*vuln.Report

func (s exampleScans) Summaries(_ context.Context, _ string, _ map[string]any, images []string) map[string]*vuln.Summary {
	out := map[string]*vuln.Summary{}
	for _, img := range images {
		if r := s[img]; r != nil {
			out[img] = vuln.Summarize(r, false)
		}
	}
	return out
}

// The review core gives the library's scan policies input.imageScans: a
// Deployment in a production namespace running an image with a fixable
// CRITICAL vulnerability is warned about, its sidecar without a result is
// queued, and the audit records the scan.
func ExampleReviewer_Review_imageScans() {
	mods, _ := policies.ReadFS(library.FS(), "library", false)
	e, _ := policies.New(context.Background(), policies.Options{Modules: mods})
	set := review.NewSet(e, nil, 1)
	scans := exampleScans{"registry.corp.example/payments/api:1.4.2": {
		Digest: "sha256:1111111111111111111111111111111111111111111111111111111111111111", OS: "debian 12.5",
		Vulnerabilities: []vuln.Vulnerability{
			{ID: "CVE-2024-5535", Package: "libssl3", Installed: "3.0.11-1~deb12u2", Fixed: "3.0.15-1~deb12u1", Severity: vuln.Critical},
			{ID: "CVE-2023-45853", Package: "zlib1g", Installed: "1:1.2.13.dfsg-1", Severity: vuln.High},
		}}}
	deployment := map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "payments-api", "namespace": "payments"},
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{"containers": []any{
			map[string]any{"name": "api", "image": "registry.corp.example/payments/api:1.4.2"},
			map[string]any{"name": "proxy", "image": "registry.corp.example/platform/proxy:2.0"},
		}}}}}
	namespace := map[string]any{"metadata": map[string]any{"name": "payments", "labels": map[string]any{"tier": "production"}}}

	r := review.New(review.Options{Scans: scans})
	v := r.Review(context.Background(), set, policies.ObjectInput(policies.SourceAdmission, deployment, namespace))
	for _, f := range v.Findings {
		if strings.HasPrefix(f.Policy, "images-") {
			fmt.Printf("%s (%s)\n  %s\n  %s\n", f.Policy, f.Action, f.Path, f.Message)
		}
	}
	// Unordered output:
	// images-vulnerabilities (warn)
	//   spec.template.spec.containers[0].image
	//   container "api" image "registry.corp.example/payments/api:1.4.2" has 1 fixable CRITICAL vulnerability: CVE-2024-5535 in libssl3 3.0.11-1~deb12u2 (fixed in 3.0.15-1~deb12u1)
	// images-unscanned (warn)
	//   spec.template.spec.containers[1].image
	//   container "proxy" image "registry.corp.example/platform/proxy:2.0" has no scan result yet; it is queued for scanning
	// images-vulnerability-report (audit)
	//   spec.template.spec.containers[0].image
	//   image "registry.corp.example/payments/api:1.4.2" (sha256:1111111111111111111111111111111111111111111111111111111111111111): 2 vulnerabilities (1 CRITICAL, 1 HIGH, 0 MEDIUM, 0 LOW, 0 UNKNOWN; 1 fixable): CVE-2024-5535 in libssl3 3.0.11-1~deb12u2 (fixed in 3.0.15-1~deb12u1), CVE-2023-45853 in zlib1g 1:1.2.13.dfsg-1 (no fix yet)
}
