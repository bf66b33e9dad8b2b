// Package fault runs Tollgate through the failures a production cluster
// sees while changes flow: two `tollgate serve` replicas (the real binary)
// behind haproxy on loopback, as a Service spreads the API server's calls,
// with pods created throughout by a load generator; a replica killed, the
// leader killed mid-audit and mid-budget-scan, kube-apiserver and etcd
// restarted, and the decision log's disk filling up. Each run checks that
// no object was admitted unjudged and that no alert, spend or report was
// lost or doubled, and logs what a user saw: failed creates and the time
// to recover. docs/faults.md quotes the figures.
//
// The runs restart and kill parts of the control plane, so they use a
// cluster of their own (test/cluster) rather than test/e2e's shared one.
// They need bin/tollgate (`make build`) and Debian's haproxy (`make debs`);
// the disk-full run needs root to mount a small tmpfs, and is skipped
// without it.
package fault
