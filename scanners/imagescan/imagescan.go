// Package imagescan keeps the cluster's image vulnerability scans. The
// Store runs on every replica: it answers the review core from the
// ImageScan objects (an informer's view), and queues the images it has no
// result for, without ever waiting for a scan. The Scanner runs on the
// elected leader: it finds every image the cluster's pods run, resolves
// each to a digest, scans every digest once with a vuln.Scanner (Trivy),
// and writes the results to the ImageScans, so a restart or a new leader
// loses nothing.
package imagescan

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/policies/vuln"
)

// namePrefix starts every ImageScan's name.
const namePrefix = "img-"

// Normalize returns the reference's canonical form (registry, repository
// and tag or digest spelled out: nginx:1.27 is
// index.docker.io/library/nginx:1.27), so two spellings of one reference
// share one ImageScan.
func Normalize(image string) (string, error) {
	if strings.TrimSpace(image) != image || image == "" {
		return "", fmt.Errorf("image reference %q: empty or surrounded by spaces", image)
	}
	ref, err := name.ParseReference(image)
	if err != nil {
		return "", fmt.Errorf("image reference %q: %w", image, err)
	}
	return ref.Name(), nil
}

// ObjectName is the name of the ImageScan of a normalized reference:
// img- and 40 hex digits of its SHA-256, stable across replicas and
// restarts.
func ObjectName(normalized string) string {
	sum := sha256.Sum256([]byte(normalized))
	return namePrefix + hex.EncodeToString(sum[:20])
}

// summaryOf is what policies see of an ImageScan, stale or not.
func summaryOf(s *v1alpha1.ImageScan) *vuln.Summary {
	st := &s.Status
	out := &vuln.Summary{Digest: st.Digest, OS: st.OS, Error: st.Error, Truncated: st.Truncated}
	if st.ScannedAt != nil {
		out.ScannedAt = st.ScannedAt.Time
	}
	if st.DBUpdatedAt != nil {
		out.DBUpdatedAt = st.DBUpdatedAt.Time
	}
	switch st.Phase {
	case v1alpha1.ImageScanScanned:
		out.Status = vuln.StatusScanned
	case v1alpha1.ImageScanFailed:
		out.Status = vuln.StatusFailed
		return out
	default:
		out.Status = vuln.StatusPending
		return out
	}
	out.Counts, out.Fixable = map[string]int{}, map[string]int{}
	for _, sev := range vuln.Severities {
		out.Counts[sev], out.Fixable[sev] = int(st.Counts[sev]), int(st.Fixable[sev])
	}
	out.Vulns = make([]vuln.Vulnerability, len(st.Vulnerabilities))
	for i, v := range st.Vulnerabilities {
		out.Vulns[i] = vuln.Vulnerability{ID: v.ID, Package: v.Package, Installed: v.Installed, Fixed: v.Fixed,
			Severity: v.Severity, Title: v.Title, Target: v.Target, Class: v.Class, Type: v.Type}
	}
	return out
}

// resultOf is the status a scan report gives every ImageScan of its digest.
func resultOf(r *vuln.Report, digest string) v1alpha1.ImageScanStatus {
	sum := vuln.Summarize(r, false)
	st := v1alpha1.ImageScanStatus{
		Phase: v1alpha1.ImageScanScanned, Digest: digest, OS: r.OS, Packages: int32(min(r.Packages, 1<<30)), //nolint:gosec // bounded
		Counts: map[string]int32{}, Fixable: map[string]int32{}, Truncated: sum.Truncated,
		ScannedAt: timePtr(r.ScannedAt), DBUpdatedAt: timePtr(r.DB.UpdatedAt),
	}
	for _, sev := range vuln.Severities {
		st.Counts[sev], st.Fixable[sev] = int32(min(sum.Counts[sev], 1<<30)), int32(min(sum.Fixable[sev], 1<<30)) //nolint:gosec // bounded
	}
	st.Vulnerabilities = make([]v1alpha1.ImageVulnerability, len(sum.Vulns))
	for i, v := range sum.Vulns {
		st.Vulnerabilities[i] = v1alpha1.ImageVulnerability{ID: v.ID, Package: v.Package, Installed: v.Installed, Fixed: v.Fixed,
			Severity: v.Severity, Title: truncate(v.Title, 256), Target: v.Target, Class: v.Class, Type: v.Type}
	}
	return st
}

func timePtr(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	mt := metav1.NewTime(t.UTC().Truncate(time.Second)) // as stored
	return &mt
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
