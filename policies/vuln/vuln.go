// Package vuln holds what a vulnerability scan of a container image says, in
// the shapes every path shares: the Report a scanner produces, the Summary
// policies see in input.imageScans, and the Source the review core asks for
// them. The scanner (scanners/trivy, which runs Trivy), the cluster's scan
// store (scanners/imagescan) and `tollgate check --scan-images` produce
// them; the review core, the audit's Reports and the compliance report read
// them. Nothing here runs a scan or talks to a cluster.
package vuln

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
)

// Severities as Trivy reports them, most severe first. Policies see these
// strings; UNKNOWN is a vulnerability without a rating.
const (
	Critical = "CRITICAL"
	High     = "HIGH"
	Medium   = "MEDIUM"
	Low      = "LOW"
	Unknown  = "UNKNOWN"
)

// Severities lists the severities in order, most severe first.
var Severities = []string{Critical, High, Medium, Low, Unknown}

// SeverityRank orders severities: CRITICAL is 4, UNKNOWN 0, anything else -1.
func SeverityRank(s string) int {
	i := slices.Index(Severities, strings.ToUpper(s))
	if i < 0 {
		return -1
	}
	return len(Severities) - 1 - i
}

// Vulnerability is one advisory that applies to one installed package.
type Vulnerability struct {
	// ID is the advisory id (CVE-2024-1234, GHSA-..., DLA-...).
	ID string `json:"id"`
	// Package is the affected package's name, Installed its version in the
	// image and Fixed the versions that fix it ("" when no fix exists).
	Package   string `json:"package"`
	Installed string `json:"installed"`
	Fixed     string `json:"fixed,omitempty"`
	// Severity is one of Severities.
	Severity string `json:"severity"`
	// Title is the advisory's one-line summary, when it has one.
	Title string `json:"title,omitempty"`
	// Target is where the package was found: the OS ("debian 12.5") or the
	// file (usr/local/bin/app, app/package-lock.json).
	Target string `json:"target,omitempty"`
	// Class is "os-pkgs" or "lang-pkgs"; Type the package ecosystem
	// (debian, alpine, gobinary, node-pkg, ...).
	Class string `json:"class,omitempty"`
	Type  string `json:"type,omitempty"`
	// URL is the advisory's page (Trivy's primary URL), for reports that
	// link to it; "" when the database gives none.
	URL string `json:"url,omitempty"`
}

// Fixable reports whether a fixed version exists.
func (v *Vulnerability) Fixable() bool { return v.Fixed != "" }

// DBInfo describes the vulnerability database a scan used.
type DBInfo struct {
	// UpdatedAt is when the database was built; NextUpdate when its
	// publisher plans the next one; DownloadedAt when this copy was
	// fetched. Zero when unknown.
	UpdatedAt    time.Time `json:"updatedAt,omitzero"`
	NextUpdate   time.Time `json:"nextUpdate,omitzero"`
	DownloadedAt time.Time `json:"downloadedAt,omitzero"`
	// Repository is where it was fetched from (an OCI reference), or the
	// server that holds it in client/server mode.
	Repository string `json:"repository,omitempty"`
}

// Age is how old the database is at now: since it was built.
func (d DBInfo) Age(now time.Time) time.Duration {
	if d.UpdatedAt.IsZero() {
		return 0
	}
	return now.Sub(d.UpdatedAt)
}

// Report is the result of scanning one image.
type Report struct {
	// Image is the reference scanned; Digest the image's repository
	// digest (sha256:...), which results are keyed by.
	Image  string `json:"image"`
	Digest string `json:"digest"`
	// OS is the image's operating system ("debian 12.5"), "" when none
	// was detected.
	OS string `json:"os,omitempty"`
	// Packages counts the packages found (OS and language).
	Packages int `json:"packages"`
	// Vulnerabilities are every advisory that applies, most severe first.
	Vulnerabilities []Vulnerability `json:"vulnerabilities"`
	// DB is the database the scan used.
	DB DBInfo `json:"db"`
	// ScannedAt is when the scan finished.
	ScannedAt time.Time `json:"scannedAt"`
	// SBOM is the image's CycloneDX document (JSON), when one was asked
	// for and produced.
	SBOM []byte `json:"-"`
}

// Counts returns the number of vulnerabilities by severity, and of those
// with a fix.
func (r *Report) Counts() (all, fixable map[string]int) {
	all, fixable = map[string]int{}, map[string]int{}
	for _, s := range Severities {
		all[s], fixable[s] = 0, 0
	}
	for i := range r.Vulnerabilities {
		v := &r.Vulnerabilities[i]
		s := strings.ToUpper(v.Severity)
		if SeverityRank(s) < 0 {
			s = Unknown
		}
		all[s]++
		if v.Fixable() {
			fixable[s]++
		}
	}
	return all, fixable
}

// Sort orders the vulnerabilities most severe first, then by id and
// package, so reports and stored results are stable.
func (r *Report) Sort() {
	slices.SortStableFunc(r.Vulnerabilities, func(a, b Vulnerability) int {
		if d := SeverityRank(b.Severity) - SeverityRank(a.Severity); d != 0 {
			return d
		}
		if c := strings.Compare(a.ID, b.ID); c != 0 {
			return c
		}
		return strings.Compare(a.Package, b.Package)
	})
}

// Scanner scans images. scanners/trivy runs Trivy; tests may scan with a
// stand-in only where Trivy is not what they test.
type Scanner interface {
	// Scan scans image (a reference, with a tag or a digest) with the
	// registry credentials of keychain (nil: anonymous).
	Scan(ctx context.Context, image string, keychain authn.Keychain) (*Report, error)
	// Database describes the vulnerability database scans use now.
	Database(ctx context.Context) (DBInfo, error)
}

// The statuses of an image's scan, as policies see them.
const (
	// StatusScanned: a result from a database that is not stale.
	StatusScanned = "scanned"
	// StatusPending: no result yet; the image is queued.
	StatusPending = "pending"
	// StatusFailed: the last scan failed (Error says why).
	StatusFailed = "failed"
	// StatusStale: a result exists, but the database it came from is
	// older than the configured maximum age; it is shown, and an
	// unscanned rule judges the image as if it had no result.
	StatusStale = "stale"
)

// Summary is what policies see of an image's scan, in
// input.imageScans[image] (keyed by the image reference as written in the
// object). Vulnerabilities lists at most MaxListed, most severe first;
// Counts and Fixable always count them all.
type Summary struct {
	Status      string          `json:"status"`
	Digest      string          `json:"digest,omitempty"`
	OS          string          `json:"os,omitempty"`
	ScannedAt   time.Time       `json:"scannedAt,omitzero"`
	DBUpdatedAt time.Time       `json:"dbUpdatedAt,omitzero"`
	Error       string          `json:"error,omitempty"`
	Counts      map[string]int  `json:"counts,omitempty"`
	Fixable     map[string]int  `json:"fixable,omitempty"`
	Truncated   bool            `json:"truncated,omitempty"`
	Vulns       []Vulnerability `json:"vulnerabilities,omitempty"`
}

// MaxListed bounds the vulnerabilities a Summary lists (the most severe
// first): an old image can carry thousands, and every policy evaluation
// and stored result pays for each.
const MaxListed = 200

// Summarize builds the Summary of a report; stale marks one from a
// database older than the configured maximum age.
func Summarize(r *Report, stale bool) *Summary {
	all, fixable := r.Counts()
	s := &Summary{
		Status: StatusScanned, Digest: r.Digest, OS: r.OS, ScannedAt: r.ScannedAt, DBUpdatedAt: r.DB.UpdatedAt,
		Counts: all, Fixable: fixable,
	}
	if stale {
		s.Status = StatusStale
	}
	vs := slices.Clone(r.Vulnerabilities)
	sorted := Report{Vulnerabilities: vs}
	sorted.Sort()
	if len(vs) > MaxListed {
		vs, s.Truncated = vs[:MaxListed], true
	}
	s.Vulns = sorted.Vulnerabilities[:len(vs)]
	return s
}

// Value is the summary as policies see it: JSON-shaped (map[string]any,
// []any, string, float64-free ints as int64), ready for policies.Input.
func (s *Summary) Value() map[string]any {
	out := map[string]any{"status": s.Status}
	set := func(k, v string) {
		if v != "" {
			out[k] = v
		}
	}
	set("digest", s.Digest)
	set("os", s.OS)
	set("error", s.Error)
	if !s.ScannedAt.IsZero() {
		out["scannedAt"] = s.ScannedAt.UTC().Format(time.RFC3339)
	}
	if !s.DBUpdatedAt.IsZero() {
		out["dbUpdatedAt"] = s.DBUpdatedAt.UTC().Format(time.RFC3339)
	}
	counts := func(m map[string]int) map[string]any {
		c := make(map[string]any, len(Severities))
		for _, sev := range Severities {
			c[sev] = int64(m[sev])
		}
		return c
	}
	if s.Counts != nil {
		out["counts"], out["fixable"] = counts(s.Counts), counts(s.Fixable)
	}
	out["truncated"] = s.Truncated
	list := make([]any, len(s.Vulns))
	for i := range s.Vulns {
		v := &s.Vulns[i]
		list[i] = map[string]any{
			"id": v.ID, "package": v.Package, "installed": v.Installed, "fixed": v.Fixed,
			"severity": v.Severity, "title": v.Title, "target": v.Target, "class": v.Class, "type": v.Type,
		}
	}
	out["vulnerabilities"] = list
	return out
}

// Source gives the scan summaries of images to the review core.
type Source interface {
	// Summaries returns the summary of each image of images (references
	// as written in a pod, or a pod template, of namespace), never
	// waiting for a scan: an image without a result is queued for
	// scanning and reported as pending. podSpec is the pod's spec, whose
	// imagePullSecrets and service account give the registry credentials
	// of the scan it may queue (nil: anonymous).
	Summaries(ctx context.Context, namespace string, podSpec map[string]any, images []string) map[string]*Summary
}

type noQueueKey struct{}

// WithoutQueueing marks a context whose lookups must not queue scans: a
// dry-run request has no side effects (the webhooks declare
// NoneOnDryRun), so an image it names is judged as it stands and queued by
// the next real request or the scanner's own pod listing.
func WithoutQueueing(ctx context.Context) context.Context {
	return context.WithValue(ctx, noQueueKey{}, true)
}

// Queueing reports whether a Source may queue the scans a lookup misses.
func Queueing(ctx context.Context) bool {
	no, _ := ctx.Value(noQueueKey{}).(bool)
	return !no
}
