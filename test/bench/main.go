// Command bench is Tollgate's admission load benchmark, the one `make bench`
// runs. It starts a local control plane (test/cluster) and `tollgate serve`
// as a child process, then measures:
//
//   - the webhook server on its own: realistic Pod and Deployment CREATE
//     AdmissionReviews posted straight to /validate and /mutate over HTTPS
//     with keep-alive, closed loop at several concurrencies and open loop at
//     a fixed arrival rate;
//   - what the webhooks cost the API server: Pods created through
//     kube-apiserver with client-go, at a fixed rate and closed loop, first
//     with no webhook configuration registered and then with Tollgate's.
//
// With -peers it instead compares Tollgate with Kyverno and Gatekeeper,
// each with Pod Security Standards checks in its own format
// (test/bench/peers), one after another against the same API server, load
// and Pod, and prints them side by side with the ratios (make bench-peers;
// docs/performance.md).
//
// Each phase reports throughput, latency percentiles, errors, the server's
// memory and the CPU used by every process involved. Timings are reported,
// never asserted: the exit status is non-zero only when the setup fails or
// a request fails.
//
//	go build -o bin/tollgate ./cmd/tollgate && go run ./test/bench -duration 10s -out bin/bench.json
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
