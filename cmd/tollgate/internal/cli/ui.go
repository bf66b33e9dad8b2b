package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tollgate-dev/tollgate/console"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/library"
)

type uiFlags struct {
	kubeconfig, prometheus, configName string
	port                               int
}

func newUICmd(stdio IO) *cobra.Command {
	var f uiFlags
	c := &cobra.Command{
		Use:   "ui [--kubeconfig FILE] [--port N] [--prometheus URL]",
		Short: "Serve a read-only console of the cluster's budgets, reports, exceptions and images on 127.0.0.1",
		Long: `ui serves a web console on 127.0.0.1, like kubectl proxy: it reads the cluster
with your kubeconfig and your permissions, so what you may not read it does not
show, and it opens nothing to the network. Pages: an overview (policies and
their actions, violations by namespace, team and policy, denials over time
with --prometheus), Budgets (spend and forecast against budget, alerts sent),
Reports (filter by namespace, policy, severity, control; remediation),
Exceptions (who approved what, what expires this week) and Images (scan
counts, signature verdicts). Every table exports to CSV. Stop it with Ctrl-C.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.port < 0 || f.port > 65535 {
				return fmt.Errorf("--port %d is not a port", f.port)
			}
			rules := clientcmd.NewDefaultClientConfigLoadingRules()
			rules.ExplicitPath = f.kubeconfig
			loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil)
			rest, err := loader.ClientConfig()
			if err != nil {
				return fmt.Errorf("--kubeconfig: %w", err)
			}
			ns, _, _ := loader.Namespace()
			lib, err := policies.ReadFS(library.FS(), "library", false)
			if err != nil {
				return err
			}
			srv, err := console.New(console.Options{REST: rest, Namespace: ns, ConfigName: f.configName, Modules: lib,
				PrometheusURL: f.prometheus, Logger: slog.New(slog.NewTextHandler(stdio.Err, &slog.HandlerOptions{Level: slog.LevelWarn}))})
			if err != nil {
				return err
			}
			// Loopback only, whatever the port: the console reads with the
			// caller's credentials and must not lend them to the network.
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(f.port)))
			if err != nil {
				return fmt.Errorf("--port %d: %w", f.port, err)
			}
			addr := ln.Addr().String()
			hs := &http.Server{Handler: srv.Handler(addr), ReadHeaderTimeout: 10 * time.Second, WriteTimeout: time.Minute}
			fmt.Fprintf(stdio.Out, "Tollgate console on http://%s/ (reading %s as your kubeconfig allows; Ctrl-C to stop)\n", addr, rest.Host)
			errc := make(chan error, 1)
			go func() { errc <- hs.Serve(ln) }()
			select {
			case <-cmd.Context().Done():
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				return hs.Shutdown(ctx)
			case err := <-errc:
				if errors.Is(err, http.ErrServerClosed) {
					return nil
				}
				return err
			}
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
	fl.IntVar(&f.port, "port", 8087, "port on 127.0.0.1 (0: any free port)")
	fl.StringVar(&f.prometheus, "prometheus", "", "Prometheus URL holding Tollgate's metrics, for the denials over time")
	fl.StringVar(&f.configName, "config-name", "tollgate", "the TollgateConfig whose overrides give the policies' actions")
	return c
}
