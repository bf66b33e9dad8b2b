package review

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/vuln"
)

// DefaultScansWait bounds how long a review waits for Options.Scans when
// the request's context sets no earlier deadline. A Source answers from
// memory and never waits for a scan; the bound only keeps a broken one
// from holding admission.
const DefaultScansWait = 2 * time.Second

// maxScanError bounds the error text of a summary policies see: a scanner's
// error can quote a whole registry response.
const maxScanError = 1024

// withScans returns the input with input.imageScans filled from
// Options.Scans, for an input whose object carries a pod or a pod
// template: one entry per distinct image, keyed by the reference as
// written. The caller's input is never changed: a copy carries the scans.
// Without a Source, or without images, the input is returned as it is
// (a caller that set ImageScans itself keeps them). The summaries are
// returned too, for the audit's Reports.
func (r *Reviewer) withScans(ctx context.Context, s *Set, in *policies.Input) (*policies.Input, map[string]*vuln.Summary) {
	if r.opts.Scans == nil || s.Engine == nil {
		return in, nil
	}
	var images []string
	seen := map[string]bool{}
	for _, c := range s.Engine.Images(in) {
		if !seen[c.Image] {
			seen[c.Image] = true
			images = append(images, c.Image)
		}
	}
	if len(images) == 0 {
		return in, nil
	}
	if in.DryRun {
		ctx = vuln.WithoutQueueing(ctx)
	}
	got, err := r.summaries(ctx, in.ObjectNamespace(), podSpec(s, in), images)
	scans := make(map[string]*vuln.Summary, len(images))
	values := make(map[string]any, len(images))
	for _, img := range images {
		sum := bounded(got[img], err)
		scans[img] = sum
		values[img] = sum.Value()
	}
	next := *in
	next.ImageScans = values
	return &next, scans
}

// summaries asks the Source, containing a panic and giving up when the
// context ends or the wait bound passes: the review goes on with every
// image marked failed, so a broken scan store warns (by the unscanned
// rule) instead of hanging or crashing admission.
func (r *Reviewer) summaries(ctx context.Context, namespace string, podSpec map[string]any, images []string) (map[string]*vuln.Summary, error) {
	wait := r.opts.ScansWait
	if wait <= 0 {
		wait = DefaultScansWait
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	type answer struct {
		sums map[string]*vuln.Summary
		err  error
	}
	done := make(chan answer, 1) // buffered: a late answer never blocks the Source
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- answer{err: fmt.Errorf("the scan results could not be read: the scan store panicked: %v", p)}
			}
		}()
		done <- answer{sums: r.opts.Scans.Summaries(ctx, namespace, podSpec, images)}
	}()
	select {
	case a := <-done:
		return a.sums, a.err
	case <-ctx.Done():
		return nil, fmt.Errorf("the scan results could not be read: the scan store did not answer: %w", ctx.Err())
	}
}

// bounded is the summary policies see of one image: the Source's, copied
// and held to what a summary may hold (at most vuln.MaxListed
// vulnerabilities, a known status, a short error); pending when the Source
// has none; failed, saying why, when the Source could not be asked.
func bounded(s *vuln.Summary, err error) *vuln.Summary {
	switch {
	case err != nil:
		return &vuln.Summary{Status: vuln.StatusFailed, Error: clip(err.Error())}
	case s == nil:
		return &vuln.Summary{Status: vuln.StatusPending}
	}
	out := *s
	switch out.Status {
	case vuln.StatusScanned, vuln.StatusPending, vuln.StatusFailed, vuln.StatusStale:
	default:
		// A status policies do not know would pass every rule that
		// matches on the known ones: judge it as a failed scan.
		out = vuln.Summary{Status: vuln.StatusFailed, Error: clip(fmt.Sprintf("the scan store gave the unknown status %q", s.Status))}
	}
	out.Error = clip(out.Error)
	if len(out.Vulns) > vuln.MaxListed {
		out.Vulns, out.Truncated = out.Vulns[:vuln.MaxListed], true
	}
	return &out
}

// clip cuts s to maxScanError bytes, on a character boundary.
func clip(s string) string {
	if len(s) <= maxScanError {
		return s
	}
	i := maxScanError - 3
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "..."
}
