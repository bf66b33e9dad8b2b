package serve

import (
	"context"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// TestLeadershipWithoutElection: with leader election off this replica
// leads from the start, runs every piece of work, and Start returns once
// they have all stopped.
func TestLeadershipWithoutElection(t *testing.T) {
	l, err := newLeadership(Options{Name: "tollgate", Namespace: "tollgate-system"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var started, stopped atomic.Int32
	for range 2 {
		l.add(func(ctx context.Context) error {
			started.Add(1)
			<-ctx.Done()
			stopped.Add(1)
			return nil
		})
	}
	if !l.isLeader() {
		t.Error("a replica without leader election does not lead")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Start(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for started.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if started.Load() != 2 {
		t.Fatalf("%d of 2 pieces of work started", started.Load())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if stopped.Load() != 2 {
		t.Errorf("Start returned with %d of 2 pieces of work still running", 2-stopped.Load())
	}
}

// TestLeadershipWithoutAPIServer: a replica that cannot reach the API
// server never leads, runs none of the leader's work, keeps campaigning,
// and stops when asked.
func TestLeadershipWithoutAPIServer(t *testing.T) {
	// A loopback port nothing listens on any more.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	opts := Options{Name: "tollgate", Namespace: "tollgate-system", LeaderElection: true,
		REST:          &rest.Config{Host: "https://" + addr},
		LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 100 * time.Millisecond}
	l, err := newLeadership(opts, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var ran atomic.Bool
	l.add(func(context.Context) error { ran.Store(true); return nil })
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := l.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if ran.Load() || l.isLeader() {
		t.Error("a replica that never held the lease ran the leader's work")
	}
}
