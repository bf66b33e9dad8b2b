package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// errStopped is returned by a restart of a cluster that Stop has stopped.
var errStopped = errors.New("the cluster is stopped")

// RestartAPIServer stops kube-apiserver (SIGTERM, SIGKILL after the stop
// timeout of 15 seconds, which a busy API server can take) and starts it again on the same port, with the same serving
// certificate, client CA and etcd, so that every client configuration and
// kubeconfig handed out keeps working. It returns once the new process
// answers /healthz. Fault tests call it while clients, informers and
// webhooks are busy, to see how they ride out an API server that goes away
// and comes back.
//
// ctx's deadline, if earlier than a minute away, bounds the start; envtest
// cannot otherwise interrupt it. Restarts and Stop are serialised.
func (c *Cluster) RestartAPIServer(ctx context.Context) error {
	return c.restart(ctx, apiServerBinary, func(timeout time.Duration) error {
		s := c.env.ControlPlane.APIServer
		// A stop that times out ends in SIGKILL: the restart goes on
		// once the old process has let go of its port.
		stopErr := s.Stop()
		if err := waitPortFree(ctx, s.Address, s.Port); err != nil {
			return fmt.Errorf("stopping kube-apiserver: %w", errors.Join(stopErr, err))
		}
		s.StartTimeout = timeout
		if err := s.Start(); err != nil {
			return annotate(s.Out, fmt.Errorf("starting kube-apiserver again: %w", err))
		}
		return nil
	})
}

// RestartEtcd stops etcd (SIGTERM, SIGKILL after the stop timeout) and
// starts it again on the same client URL and data directory: everything
// stored survives, and kube-apiserver, which keeps running, reconnects by
// itself. It returns once etcd answers its health check; the API server
// may take a moment longer to notice.
//
// ctx's deadline, if earlier than a minute away, bounds the start. Restarts
// and Stop are serialised.
func (c *Cluster) RestartEtcd(ctx context.Context) error {
	return c.restart(ctx, etcdBinary, func(timeout time.Duration) error {
		e := c.env.ControlPlane.Etcd
		stopErr := e.Stop()
		if err := waitPortFree(ctx, e.URL.Hostname(), e.URL.Port()); err != nil {
			return fmt.Errorf("stopping etcd: %w", errors.Join(stopErr, err))
		}
		e.StartTimeout = timeout
		if err := e.Start(); err != nil {
			return annotate(e.Out, fmt.Errorf("starting etcd again: %w", err))
		}
		return nil
	})
}

// restart runs do under the restart lock, unless the cluster is stopped or
// ctx is done.
func (c *Cluster) restart(ctx context.Context, what string, do func(timeout time.Duration) error) error {
	c.restartMu.Lock()
	defer c.restartMu.Unlock()
	if c.stopped || c.env == nil {
		return fmt.Errorf("restarting %s: %w", what, errStopped)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("restarting %s: %w", what, err)
	}
	return do(startTimeout(ctx))
}

// annotate adds a process's last lines to err when w is its output.
func annotate(w io.Writer, err error) error {
	if o, ok := w.(*output); ok {
		return o.annotate(err)
	}
	return err
}

// waitPortFree waits until nothing accepts connections on host:port any
// more: the stopped process is gone, and a new one can listen there.
func waitPortFree(ctx context.Context, host, port string) error {
	addr := net.JoinHostPort(host, port)
	deadline := time.Now().Add(stopTimeout)
	for {
		conn, dialErr := net.DialTimeout("tcp", addr, time.Second)
		if dialErr != nil {
			return nil //nolint:nilerr // refused: nothing listens any more, which is what we wait for
		}
		_ = conn.Close()
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still accepts connections %s after the stop", addr, stopTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
