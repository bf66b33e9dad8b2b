package serve

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"

	"github.com/tollgate-dev/tollgate/webhook"
)

// anonymousProbePath is what the audit asks for without credentials: a
// listing no anonymous client should get.
const anonymousProbePath = "/api/v1/namespaces?limit=1"

// clusterFacts measures what the audit judges of the cluster itself, as
// the ClusterFacts object the library's cluster-* policies read: the API
// server's version, the TLS it serves and whether its certificate
// verifies against the cluster CA, what an unauthenticated request gets,
// and whether Tollgate's decision log is on. Each is measured, never
// assumed: a probe that fails says why, and the policies report it.
func clusterFacts(cfg *rest.Config, cluster string, dlog *webhook.DecisionLog) func(ctx context.Context) (map[string]any, error) {
	return func(ctx context.Context) (map[string]any, error) {
		host, err := url.Parse(cfg.Host)
		if err != nil || host.Host == "" {
			return nil, fmt.Errorf("the API server address %q is not a URL", cfg.Host)
		}
		api := map[string]any{"url": host.Scheme + "://" + host.Host}
		dc, err := discovery.NewDiscoveryClientForConfig(cfg)
		if err != nil {
			return nil, fmt.Errorf("discovery: %w", err)
		}
		v, err := dc.ServerVersion()
		if err != nil {
			return nil, fmt.Errorf("reading the API server's version: %w", err)
		}
		api["version"] = v.GitVersion
		if host.Scheme == "https" {
			api["tls"] = probeTLS(ctx, cfg, host)
		}
		api["anonymous"] = probeAnonymous(ctx, cfg)
		name := cluster
		if name == "" {
			name = "cluster"
		}
		return map[string]any{
			"metadata":  map[string]any{"name": name},
			"apiServer": api,
			"tollgate":  map[string]any{"decisionLog": dlog.Facts()},
		}, nil
	}
}

// probeTLS connects to the API server with the cluster CA the client
// trusts: the version negotiated, and whether the chain verified.
func probeTLS(ctx context.Context, cfg *rest.Config, host *url.URL) map[string]any {
	tcfg, err := rest.TLSConfigFor(cfg)
	if err != nil || tcfg == nil {
		tcfg = &tls.Config{MinVersion: tls.VersionTLS10}
	}
	tcfg = tcfg.Clone()
	// Find what the server offers, oldest included; whether it verifies
	// is the question asked, so an unverified chain is a finding, not an
	// error of the probe.
	tcfg.MinVersion = tls.VersionTLS10
	verified := !cfg.Insecure
	addr := host.Host
	if host.Port() == "" {
		addr = net.JoinHostPort(host.Hostname(), "443")
	}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: tcfg}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil && verified {
		// Verification may be what failed: try again without it.
		tcfg.InsecureSkipVerify = true
		verified = false
		d.Config = tcfg
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	defer func() { _ = conn.Close() }()
	state := conn.(*tls.Conn).ConnectionState()
	return map[string]any{"version": strings.TrimPrefix(tls.VersionName(state.Version), "TLS "), "verified": verified}
}

// probeAnonymous asks the API server for a listing without credentials:
// 401 (anonymous authentication off) and 403 (on, but nothing granted)
// are what a hardened cluster answers.
func probeAnonymous(ctx context.Context, cfg *rest.Config) map[string]any {
	out := map[string]any{"path": anonymousProbePath, "status": 0}
	anon := rest.AnonymousClientConfig(cfg)
	client, err := rest.HTTPClientFor(anon)
	if err != nil {
		out["error"] = err.Error()
		return out
	}
	client.Timeout = 10 * time.Second
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(anon.Host, "/")+anonymousProbePath, nil)
	if err != nil {
		out["error"] = err.Error()
		return out
	}
	resp, err := client.Do(req)
	if err != nil {
		out["error"] = err.Error()
		return out
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	out["status"] = resp.StatusCode
	return out
}
