package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate-dev/tollgate/policies/library"
)

// maxVersionBytes bounds what a server's /version answer may be.
const maxVersionBytes = 64 << 10

type versionFlags struct {
	server   string
	caFile   string
	insecure bool
	timeout  time.Duration
	output   string
}

func newVersionCmd(stdio IO) *cobra.Command {
	var f versionFlags
	c := &cobra.Command{
		Use:   "version",
		Short: "Print the version of tollgate and its policy library, and a running server's with the policy set it enforces",
		Long: `Print the version of this tollgate and its policy library. With --server,
also ask a running tollgate serve (its webhook port, e.g. reached with
kubectl port-forward) which version, library and policy set (the OCI
reference, digest and revision it pulled and verified) it runs now, so an
auditor can see which policy set judges a cluster's requests.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.output != "text" && f.output != "json" {
				return fmt.Errorf("--output %q: want text or json", f.output)
			}
			local := serverVersion{Version: Version(), Library: library.Version}
			if f.server == "" {
				if f.output == "json" {
					return json.NewEncoder(stdio.Out).Encode(map[string]any{"client": local})
				}
				fmt.Fprintf(stdio.Out, "tollgate %s\npolicy library %s\n", local.Version, local.Library)
				return nil
			}
			remote, err := f.ask(cmd.Context())
			if err != nil {
				return err
			}
			if f.output == "json" {
				return json.NewEncoder(stdio.Out).Encode(map[string]any{"client": local, "server": remote})
			}
			fmt.Fprintf(stdio.Out, "tollgate %s\npolicy library %s\n", local.Version, local.Library)
			fmt.Fprintf(stdio.Out, "server %s: tollgate %s, policy library %s\n", f.server, remote.Version, remote.Library)
			if p := remote.PolicySet; p != nil {
				fmt.Fprintf(stdio.Out, "policy set %s\n  digest %s\n  revision %s\n", p.Ref, p.Digest, p.Revision)
			} else {
				fmt.Fprintln(stdio.Out, "policy set: none (the server enforces its built-in library and the cluster's policy objects)")
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.server, "server", "", "base URL of a running tollgate serve, such as https://127.0.0.1:8443")
	fl.StringVar(&f.caFile, "ca-file", "", "PEM CA bundle the server's certificate is checked against (default: the system's)")
	fl.BoolVar(&f.insecure, "insecure-skip-tls-verify", false, "do not check the server's certificate (a port-forward to a self-signed server)")
	fl.DurationVar(&f.timeout, "timeout", 10*time.Second, "deadline of the request to --server")
	fl.StringVarP(&f.output, "output", "o", "text", "text or json")
	return c
}

// serverVersion is what a server's /version answers.
type serverVersion struct {
	Version   string `json:"version"`
	Library   string `json:"library"`
	PolicySet *struct {
		Ref      string `json:"ref"`
		Digest   string `json:"digest"`
		Revision string `json:"revision"`
	} `json:"policySet,omitempty"`
}

// ask gets the server's /version, bounded in time and size.
func (f *versionFlags) ask(ctx context.Context) (*serverVersion, error) {
	u, err := url.Parse(f.server)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("--server %q: want a URL such as https://127.0.0.1:8443", f.server)
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: f.insecure} //nolint:gosec // only when asked, for a port-forward
	if f.caFile != "" {
		pem, err := os.ReadFile(f.caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca-file %s: no PEM certificate in it", f.caFile)
		}
		tlsCfg.RootCAs = pool
	}
	hc := &http.Client{Timeout: f.timeout, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(u.String(), "/")+"/version", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("asking %s: %w", f.server, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxVersionBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s/version: %w", f.server, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s/version: HTTP %d: %s", f.server, resp.StatusCode, strings.TrimSpace(string(body[:min(len(body), 200)])))
	}
	if len(body) > maxVersionBytes {
		return nil, fmt.Errorf("%s/version: answer over %d bytes: not a tollgate server", f.server, maxVersionBytes)
	}
	var v serverVersion
	if err := json.Unmarshal(body, &v); err != nil || v.Version == "" {
		if err == nil {
			err = errors.New("no version in it")
		}
		return nil, fmt.Errorf("%s/version: not a tollgate server's answer: %w", f.server, err)
	}
	return &v, nil
}
