package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate-dev/tollgate/test/proc"
)

// serverOptions say how to run `tollgate serve`.
type serverOptions struct {
	// Binary is the tollgate executable.
	Binary string
	// Kubeconfig points at the cluster.
	Kubeconfig string
	// Port the server listens on, on 127.0.0.1; the webhook URL uses it.
	Port int
	// CertDir receives the serving certificate and ca.crt.
	CertDir string
	// ManageWebhooks registers the webhook configurations.
	ManageWebhooks bool
	// Log receives the server's output.
	Log io.Writer
	// PprofPort, when not 0, serves /debug/pprof on 127.0.0.1.
	PprofPort int
	// Args are extra flags.
	Args []string
}

// Timeouts of the server's start and stop.
const (
	serverStartTimeout = 2 * time.Minute
	serverStopGrace    = 15 * time.Second
)

// server is a running `tollgate serve` child process.
type server struct {
	*proc.Process
}

// startServer starts `tollgate serve` in a process group of its own and
// waits until /readyz answers 200 over TLS verified with the CA it wrote.
// On failure the process is stopped.
func startServer(ctx context.Context, opts serverOptions) (_ *server, err error) {
	args := []string{
		"serve",
		"--kubeconfig", opts.Kubeconfig,
		"--host", "127.0.0.1",
		"--port", strconv.Itoa(opts.Port),
		"--cert-dir", opts.CertDir,
		"--namespace", "tollgate-system",
		"--webhook-url", "https://127.0.0.1:" + strconv.Itoa(opts.Port),
		"--manage-webhook-configurations=" + strconv.FormatBool(opts.ManageWebhooks),
		"--decision-log", "",
		"--log-level", "warn",
		"--metrics-auth", "none", // the benchmark reads the counters itself
	}
	if opts.PprofPort != 0 {
		args = append(args, "--pprof-address", "127.0.0.1:"+strconv.Itoa(opts.PprofPort))
	}
	args = append(args, opts.Args...)
	p, err := proc.Start(opts.Binary, args, nil, opts.Log)
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", opts.Binary, err)
	}
	s := &server{p}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.stop())
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, serverStartTimeout)
	defer cancel()
	if err := s.waitReady(ctx, opts); err != nil {
		return nil, err
	}
	return s, nil
}

// waitReady polls /readyz until it answers 200, the server exits or ctx
// ends.
func (s *server) waitReady(ctx context.Context, opts serverOptions) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	url := fmt.Sprintf("https://127.0.0.1:%d/readyz", opts.Port)
	last := errors.New("not polled yet")
	for {
		select {
		case <-s.Done():
			return fmt.Errorf("tollgate serve exited before it was ready: %w", s.ExitErr())
		case <-ctx.Done():
			return fmt.Errorf("waiting for tollgate serve to be ready: %w (last: %w)", ctx.Err(), last)
		case <-tick.C:
		}
		client, err := httpsClient(opts.CertDir, 1, nil)
		if err != nil {
			last = err // the CA is not written yet
			continue
		}
		last = probe(ctx, client, url)
		client.CloseIdleConnections()
		if last == nil {
			return nil
		}
	}
}

// probe GETs url and wants 200.
func probe(ctx context.Context, client *http.Client, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d: %s", url, resp.StatusCode, body)
	}
	return nil
}

// stop ends the server: SIGTERM to its process group, SIGKILL after
// serverStopGrace. Only the first call acts.
func (s *server) stop() error { return s.Stop(serverStopGrace) }

// httpsClient is an HTTP/1.1 client with keep-alive that trusts only the
// CA bundle the server wrote to certDir/ca.crt, keeping up to conns idle
// connections. dials, when not nil, counts the TCP connections opened.
func httpsClient(certDir string, conns int, dials *atomic.Int64) (*http.Client, error) {
	pem, err := os.ReadFile(filepath.Join(certDir, "ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("reading the server's CA: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", filepath.Join(certDir, "ca.crt"))
	}
	return rootsClient(roots, conns, dials), nil
}

// rootsClient is httpsClient trusting roots.
func rootsClient(roots *x509.CertPool, conns int, dials *atomic.Int64) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				if dials != nil {
					dials.Add(1)
				}
				return dialer.DialContext(ctx, network, addr)
			},
			TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			ForceAttemptHTTP2:   false,
			TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{}, // no HTTP/2
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			// No more connections than workers, even while dials race
			// with connections coming back to the pool.
			MaxConnsPerHost:     conns,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 5 * time.Second,
			DisableCompression:  true,
		},
	}
}

// tailBuffer keeps the last max bytes written to it, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

// Write implements io.Writer; it never fails.
func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// String returns what is kept.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
