// Command demo starts a local control plane (etcd, kube-apiserver,
// kube-controller-manager) with `tollgate serve` enforcing on it, and then
// either narrates a tour with real kubectl commands and their real output
// (`make demo`, exit 0 only if every step behaved as narrated) or keeps
// everything running for development (`make dev`, until SIGINT/SIGTERM).
// Either way it stops every process it started.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
