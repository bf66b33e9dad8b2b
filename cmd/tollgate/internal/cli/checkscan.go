package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/tollgate-dev/tollgate/cmd/tollgate/internal/output"
	"github.com/tollgate-dev/tollgate/policies/vuln"
	"github.com/tollgate-dev/tollgate/scanners/trivy"
)

// checkScans is the vuln.Source of `tollgate check --scan-images`: it
// scans each distinct image of the inputs once, before the reviews that
// read the results, so a review only looks them up.
type checkScans struct {
	runner   *trivy.Runner
	keychain authn.Keychain
	// maxAge is the age past which a database is stale.
	maxAge time.Duration
	// parallel bounds the scans running at once.
	parallel int
	now      func() time.Time

	mu      sync.Mutex
	results map[string]*vuln.Summary
	// failed are the images whose scan failed, in the order they failed,
	// for the report's problems.
	failed []scanFailure
}

type scanFailure struct {
	image string
	err   error
}

var _ vuln.Source = (*checkScans)(nil)

func newCheckScans(r *trivy.Runner, maxAge time.Duration) *checkScans {
	return &checkScans{runner: r, keychain: authn.DefaultKeychain, maxAge: maxAge, parallel: 2, now: time.Now, results: map[string]*vuln.Summary{}}
}

// scan scans the images not scanned yet, at most parallel at once, and
// says on progress which one it scans.
func (c *checkScans) scan(ctx context.Context, images []string, progress io.Writer) {
	var todo []string
	c.mu.Lock()
	for _, img := range images {
		if _, done := c.results[img]; !done && !slices.Contains(todo, img) {
			todo = append(todo, img)
			c.results[img] = nil // claimed
		}
	}
	c.mu.Unlock()
	sem := make(chan struct{}, c.parallel)
	var wg sync.WaitGroup
	for _, img := range todo {
		wg.Add(1)
		sem <- struct{}{}
		// Said here, not in the scan's goroutine: progress is not safe
		// for concurrent writes.
		fmt.Fprintf(progress, "tollgate: scanning %s\n", img)
		go func() {
			defer func() { <-sem; wg.Done() }()
			sum := c.scanOne(ctx, img)
			c.mu.Lock()
			c.results[img] = sum
			c.mu.Unlock()
		}()
	}
	wg.Wait()
}

func (c *checkScans) scanOne(ctx context.Context, img string) *vuln.Summary {
	rep, err := c.runner.Scan(ctx, img, c.keychain)
	if err != nil {
		c.mu.Lock()
		c.failed = append(c.failed, scanFailure{image: img, err: err})
		c.mu.Unlock()
		return &vuln.Summary{Status: vuln.StatusFailed, Error: err.Error()}
	}
	stale := c.maxAge > 0 && rep.DB.Age(c.now()) > c.maxAge
	return vuln.Summarize(rep, stale)
}

// Summaries returns the scans of images; an image not scanned before is
// scanned now (check waits for its scans; admission never does).
func (c *checkScans) Summaries(ctx context.Context, _ string, _ map[string]any, images []string) map[string]*vuln.Summary {
	c.scan(ctx, images, io.Discard)
	out := make(map[string]*vuln.Summary, len(images))
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, img := range images {
		if s := c.results[img]; s != nil {
			out[img] = s
		}
	}
	return out
}

// problems are the failed scans, as the report's problems at the first
// input that runs the image: something went unchecked.
func (c *checkScans) problems(where map[string]output.Problem) []output.Problem {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []output.Problem
	for _, f := range c.failed {
		p := where[f.image]
		p.Message = f.err.Error()
		out = append(out, p)
	}
	return out
}
