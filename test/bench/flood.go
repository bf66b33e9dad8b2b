package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tollgate-dev/tollgate/test/cluster"
	"github.com/tollgate-dev/tollgate/test/proc"
)

// Flood parameters: what a forger who reaches the port could send.
const (
	floodWorkers  = 200
	floodBodySize = 3 << 20
)

// floodCase is one configuration of the server under the flood.
type floodCase struct {
	name string
	args []string
	// cert presents the API server's client certificate (the forger has
	// none).
	cert bool
}

// flood measures the worst-case memory of tollgate serve under a flood of
// large forged reviews: 200 workers each POSTing 3 MiB AdmissionReviews to
// /validate back to back, against the server with no in-flight bounds,
// with the default bounds, and with a client CA required (the forger has
// no certificate). It reports the peak RSS and the answers by HTTP status.
// Figures are reported, never asserted.
func flood(ctx context.Context, opts options, log *slog.Logger, out io.Writer) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	binary := opts.tollgate
	if !filepath.IsAbs(binary) {
		binary = filepath.Join(root, binary)
	}
	log.Info("starting the control plane")
	c, err := cluster.Start(ctx, cluster.Options{
		CRDDirs: []string{filepath.Join(root, "charts", "tollgate", "crds")}, WebhookClientCert: true,
	})
	if err != nil {
		return fmt.Errorf("starting the control plane: %w", err)
	}
	defer func() {
		if err := c.Stop(); err != nil {
			log.Warn("stopping the control plane failed", "error", err)
		}
	}()
	body := floodBody()
	cases := []floodCase{
		{name: "unbounded (--max-in-flight=-1 --max-in-flight-bytes=0)", args: []string{"--max-in-flight=-1", "--max-in-flight-bytes=0"}, cert: true},
		{name: "default bounds (100 requests, 32Mi per endpoint)", cert: true},
		{name: "client CA required, forger without a certificate", args: []string{"--client-ca-file", c.WebhookClientCAFile(), "--client-name", cluster.WebhookClientName}},
	}
	fmt.Fprintf(out, "Flood: %d workers POSTing %d MiB AdmissionReviews to /validate for %s each, on %d CPUs\n\n",
		floodWorkers, floodBodySize>>20, opts.duration, hostCPUs())
	fmt.Fprintf(out, "%-55s %10s %10s %10s  %s\n", "server", "idle RSS", "peak RSS", "answers/s", "answers by HTTP status")
	for _, fc := range cases {
		line, err := floodOne(ctx, opts, log, c, binary, fc, body)
		if err != nil {
			return fmt.Errorf("%s: %w", fc.name, err)
		}
		fmt.Fprintln(out, line)
	}
	return nil
}

func floodOne(ctx context.Context, opts options, log *slog.Logger, c *cluster.Cluster, binary string, fc floodCase, body []byte) (string, error) {
	certDir, err := os.MkdirTemp("", "tollgate-flood-certs-")
	if err != nil {
		return "", err
	}
	defer func() { _ = os.RemoveAll(certDir) }()
	port, err := proc.FreePort()
	if err != nil {
		return "", err
	}
	serverLog := &tailBuffer{max: 16 << 10}
	log.Info("starting tollgate serve", "case", fc.name)
	srv, err := startServer(ctx, serverOptions{Binary: binary, Kubeconfig: c.KubeconfigPath(), Port: port, CertDir: certDir, Log: serverLog,
		Args: append(append([]string{}, opts.serveArgs...), fc.args...)})
	if err != nil {
		return "", err
	}
	defer func() {
		if err := srv.stop(); err != nil {
			log.Warn("stopping tollgate serve failed", "error", err)
		}
	}()
	idle, err := readMemory(srv.Pid())
	if err != nil {
		return "", err
	}
	if err := resetPeak(srv.Pid()); err != nil {
		log.Warn("the peak includes the start", "error", err)
	}
	var cert []tls.Certificate
	if fc.cert {
		cc, err := c.WebhookClientCA().TLSCertificate(cluster.WebhookClientName)
		if err != nil {
			return "", err
		}
		cert = []tls.Certificate{cc}
	}
	client, err := httpsClient(certDir, floodWorkers, nil)
	if err != nil {
		return "", err
	}
	client.Transport.(*http.Transport).TLSClientConfig.Certificates = cert
	defer client.CloseIdleConnections()

	fctx, cancel := context.WithTimeout(ctx, opts.duration)
	defer cancel()
	var mu sync.Mutex
	statuses := map[string]int{}
	var wg sync.WaitGroup
	url := fmt.Sprintf("https://127.0.0.1:%d/validate", port)
	for range floodWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for fctx.Err() == nil {
				key := floodPost(fctx, client, url, body)
				if fctx.Err() != nil {
					return
				}
				mu.Lock()
				statuses[key]++
				mu.Unlock()
			}
		}()
	}
	// The peak: VmHWM, and sampled RSS in case clear_refs is not allowed.
	peak := int64(0)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	began := time.Now()
sample:
	for {
		select {
		case <-fctx.Done():
			break sample
		case <-tick.C:
			if m, err := readMemory(srv.Pid()); err == nil {
				peak = max(peak, m.RSS, m.HWM)
			}
		}
	}
	wg.Wait()
	elapsed := time.Since(began)
	if m, err := readMemory(srv.Pid()); err == nil {
		peak = max(peak, m.HWM)
	}
	keys := make([]string, 0, len(statuses))
	total := 0
	for k, n := range statuses {
		keys = append(keys, fmt.Sprintf("%s: %d", k, n))
		total += n
	}
	sort.Strings(keys)
	return fmt.Sprintf("%-55s %7d MiB %7d MiB %10.0f  %s", fc.name, idle.RSS>>20, peak>>20, float64(total)/elapsed.Seconds(), strings.Join(keys, ", ")), nil
}

// floodPost sends one review and names the outcome: the HTTP status, or
// the error's kind.
func floodPost(ctx context.Context, client *http.Client, url string, body []byte) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return "request error"
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "connection error"
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return fmt.Sprint(resp.StatusCode)
}

// floodBody is a 3 MiB AdmissionReview of a ConfigMap with one large
// value: the largest object the API server would store, which a forger
// can send without it.
func floodBody() []byte {
	obj := map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "big", "namespace": "default"},
		"data":     map[string]any{"blob": strings.Repeat("x", floodBodySize-2048)}}
	b, _ := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": map[string]any{
		"uid": "flood", "kind": map[string]any{"version": "v1", "kind": "ConfigMap"}, "resource": map[string]any{"version": "v1", "resource": "configmaps"},
		"namespace": "default", "name": "big", "operation": "CREATE", "userInfo": map[string]any{"username": "mallory"}, "object": obj,
	}})
	return b
}
