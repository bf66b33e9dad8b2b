// Package prometheus runs a real Prometheus for tests: Debian's
// prometheus on a loopback port, its TSDB backfilled beforehand with
// `promtool tsdb create-blocks-from openmetrics` from the history a test
// writes, so queries over the last hours answer as they would in a
// cluster that has been scraped all along.
package prometheus

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tollgate-dev/tollgate/test/proc"
)

// Default binaries, from Debian's prometheus package.
const (
	DefaultBinary   = "/usr/bin/prometheus"
	DefaultPromtool = "/usr/bin/promtool"
)

// Options configures Start.
type Options struct {
	// History is OpenMetrics text (ending in "# EOF") backfilled into the
	// TSDB before the server starts; empty for none.
	History string
	// Binary and Promtool default to Debian's.
	Binary, Promtool string
	// Scrape are the endpoints scraped (none by default), every
	// ScrapeInterval (default 1s).
	Scrape         []Target
	ScrapeInterval time.Duration
	// Port to listen on (default a free one): a test that gives its URL to
	// the servers Prometheus scrapes picks it first.
	Port int
}

// Target is one scraped endpoint: a URL such as
// https://127.0.0.1:PORT/metrics (a self-signed certificate is accepted).
// Its series keep the labels they carry (honor_labels), as a federating
// Prometheus keeps each cluster's.
type Target struct {
	Job, URL string
}

// Server is a running Prometheus.
type Server struct {
	url     string
	dir     string
	process *proc.Process
	out     *proc.Buffer

	stopOnce sync.Once
	stopErr  error
}

// Start backfills the history and runs Prometheus until Stop.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Binary == "" {
		opts.Binary = DefaultBinary
	}
	if opts.Promtool == "" {
		opts.Promtool = DefaultPromtool
	}
	for _, b := range []string{opts.Binary, opts.Promtool} {
		if _, err := os.Stat(b); err != nil {
			return nil, fmt.Errorf("prometheus: %s not found (apt-get install prometheus): %w", b, err)
		}
	}
	dir, err := os.MkdirTemp("", "tollgate-prometheus-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, out: &proc.Buffer{}}
	ok := false
	defer func() {
		if !ok {
			_ = s.Stop()
		}
	}()
	data := filepath.Join(dir, "data")
	if opts.History != "" {
		history := filepath.Join(dir, "history.om")
		if err := os.WriteFile(history, []byte(opts.History), 0o600); err != nil {
			return nil, err
		}
		out, err := exec.CommandContext(ctx, opts.Promtool, "tsdb", "create-blocks-from", "openmetrics", history, data).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("prometheus: backfilling: %w\n%s", err, out)
		}
	}
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(config(opts)), 0o600); err != nil {
		return nil, err
	}
	port := opts.Port
	if port == 0 {
		if port, err = proc.FreePort(); err != nil {
			return nil, err
		}
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	s.url = "http://" + addr
	s.process, err = proc.Start(opts.Binary, []string{
		"--config.file=" + cfg, "--storage.tsdb.path=" + data, "--web.listen-address=" + addr,
		"--storage.tsdb.retention.time=30d", "--log.level=warn"}, nil, s.out)
	if err != nil {
		return nil, fmt.Errorf("prometheus: %w", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	hc := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-s.process.Done():
			return nil, fmt.Errorf("prometheus exited:\n%s", s.out.String())
		default:
		}
		if resp, err := hc.Get(s.url + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				ok = true
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, errors.New("prometheus not ready after 30s:\n" + s.out.String())
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// config is prometheus.yml: no scrapes but the targets asked for.
func config(opts Options) string {
	if len(opts.Scrape) == 0 {
		return "global:\n  scrape_interval: 1h\nscrape_configs: []\n"
	}
	every := opts.ScrapeInterval
	if every <= 0 {
		every = time.Second
	}
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  scrape_timeout: %s\nscrape_configs:\n", every, every)
	for _, t := range opts.Scrape {
		u, err := url.Parse(t.URL)
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "  - job_name: %q\n    honor_labels: true\n    scheme: %s\n    metrics_path: %q\n    tls_config: {insecure_skip_verify: true}\n    static_configs: [{targets: [%q]}]\n",
			t.Job, u.Scheme, u.Path, u.Host)
	}
	return b.String()
}

// URL is the server's base URL (http://127.0.0.1:PORT).
func (s *Server) URL() string { return s.url }

// Stop kills Prometheus and removes its data. It is idempotent.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		if s.process != nil {
			_ = s.process.Stop(0)
		}
		s.stopErr = os.RemoveAll(s.dir)
	})
	return s.stopErr
}

// Series builds OpenMetrics history: samples of one series every step
// from start to end, with a value per timestamp.
type Series struct {
	b strings.Builder
	// types records the declared metric families.
	types map[string]bool
}

// Gauge adds samples of a gauge family.
func (h *Series) Gauge(name, labels string, start, end time.Time, step time.Duration, value func(t time.Time) float64) {
	h.add(name, "gauge", labels, start, end, step, value)
}

// Counter adds samples of a counter family: name_total, as PromQL sees
// it (OpenMetrics declares the family without the suffix).
func (h *Series) Counter(name, labels string, start, end time.Time, step time.Duration, value func(t time.Time) float64) {
	h.add(strings.TrimSuffix(name, "_total"), "counter", labels, start, end, step, value)
}

func (h *Series) add(name, typ, labels string, start, end time.Time, step time.Duration, value func(t time.Time) float64) {
	if h.types == nil {
		h.types = map[string]bool{}
	}
	if !h.types[name] {
		fmt.Fprintf(&h.b, "# TYPE %s %s\n", name, typ)
		h.types[name] = true
	}
	sample := name
	if typ == "counter" {
		sample += "_total"
	}
	for t := start; !t.After(end); t = t.Add(step) {
		fmt.Fprintf(&h.b, "%s{%s} %g %d\n", sample, labels, value(t), t.Unix())
	}
}

// String is the OpenMetrics text. All samples of one family must be
// added together (OpenMetrics groups them).
func (h *Series) String() string { return h.b.String() + "# EOF\n" }
