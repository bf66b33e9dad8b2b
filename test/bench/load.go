package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// request sends request number seq and reports whether its answer was the
// expected one.
type request func(ctx context.Context, seq uint64) error

// load says how a phase offers requests: closed loop, where each of
// Concurrency workers sends its next request when the previous answer
// arrives, or, when Rate is set, open loop, where requests arrive at Rate
// per second whatever the answers do.
type load struct {
	Concurrency int
	Rate        float64
	Duration    time.Duration
	// Workers serve the arrivals of an open loop (default 128); an arrival
	// that finds them all busy waits, and that wait counts in its latency.
	Workers int
	// Drain bounds how long an open loop waits for the requests still
	// queued or in flight after the last arrival (default 30s); those
	// cancelled then are errors.
	Drain time.Duration
}

// String names the load the way the report prints it.
func (l load) String() string {
	if l.Rate > 0 {
		return fmt.Sprintf("%g/s open", l.Rate)
	}
	return fmt.Sprintf("c=%d closed", l.Concurrency)
}

// outcome is what a phase measured.
type outcome struct {
	// Requests counts the answered and failed requests.
	Requests int
	Errors   int
	// ErrorSamples holds the first few distinct errors.
	ErrorSamples []string
	// Elapsed runs from the first send to the last answer.
	Elapsed time.Duration
	// Latencies, sorted, of every request, failed ones included.
	Latencies []time.Duration
}

// Throughput is requests per second.
func (o *outcome) Throughput() float64 {
	if o.Elapsed <= 0 {
		return 0
	}
	return float64(o.Requests) / o.Elapsed.Seconds()
}

// Percentile returns the nearest-rank p-quantile (0 < p <= 1) of the
// latencies, or 0 when there are none.
func (o *outcome) Percentile(p float64) time.Duration {
	n := len(o.Latencies)
	if n == 0 {
		return 0
	}
	i := int(float64(n)*p+0.999999999) - 1
	return o.Latencies[min(max(i, 0), n-1)]
}

// maxErrorSamples is how many distinct errors an outcome quotes.
const maxErrorSamples = 3

// recorder collects one worker's measurements.
type recorder struct {
	latencies []time.Duration
	errors    int
	samples   []string
}

func (r *recorder) add(lat time.Duration, err error) {
	r.latencies = append(r.latencies, lat)
	if err == nil {
		return
	}
	r.errors++
	if msg := err.Error(); len(r.samples) < maxErrorSamples && !slices.Contains(r.samples, msg) {
		r.samples = append(r.samples, msg)
	}
}

// merge combines the workers' recorders.
func merge(recs []*recorder, elapsed time.Duration) outcome {
	o := outcome{Elapsed: elapsed}
	for _, r := range recs {
		o.Latencies = append(o.Latencies, r.latencies...)
		o.Errors += r.errors
		for _, s := range r.samples {
			if len(o.ErrorSamples) < maxErrorSamples && !slices.Contains(o.ErrorSamples, s) {
				o.ErrorSamples = append(o.ErrorSamples, s)
			}
		}
	}
	o.Requests = len(o.Latencies)
	slices.Sort(o.Latencies)
	return o
}

// generate offers l to do, numbering requests from seq, and returns what it
// measured. It returns early, with what it has, when ctx ends; requests
// that failed because ctx ended are not counted.
func generate(ctx context.Context, l load, seq *atomic.Uint64, do request) outcome {
	if l.Rate > 0 {
		return openLoop(ctx, l, seq, do)
	}
	return closedLoop(ctx, l, seq, do)
}

func closedLoop(ctx context.Context, l load, seq *atomic.Uint64, do request) outcome {
	start := time.Now()
	deadline := start.Add(l.Duration)
	recs := make([]*recorder, max(l.Concurrency, 1))
	var wg sync.WaitGroup
	for i := range recs {
		rec := &recorder{latencies: make([]time.Duration, 0, 4096)}
		recs[i] = rec
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				n := seq.Add(1)
				t0 := time.Now()
				err := do(ctx, n)
				if err != nil && ctx.Err() != nil {
					return // interrupted: not the server's failure
				}
				rec.add(time.Since(t0), err)
			}
		})
	}
	wg.Wait()
	return merge(recs, time.Since(start))
}

// openLoop sends requests at Poisson arrival times. A request's latency
// runs from its scheduled arrival, not from when a worker got to it, so a
// server that falls behind shows its queue in the latencies instead of
// silently receiving fewer requests (coordinated omission).
func openLoop(ctx context.Context, l load, seq *atomic.Uint64, do request) outcome {
	workers := l.Workers
	if workers <= 0 {
		workers = 128
	}
	drain := l.Drain
	if drain <= 0 {
		drain = 30 * time.Second
	}
	// The requests' context ends a drain period after the last arrival.
	reqCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	expected := int(l.Rate*l.Duration.Seconds()) + 1
	arrivals := make(chan time.Time, expected+expected/2+1024)
	recs := make([]*recorder, workers)
	var wg sync.WaitGroup
	for i := range recs {
		rec := &recorder{latencies: make([]time.Duration, 0, expected/workers+16)}
		recs[i] = rec
		wg.Go(func() {
			for at := range arrivals {
				err := do(reqCtx, seq.Add(1))
				if err != nil && ctx.Err() != nil {
					continue // interrupted: not the server's failure
				}
				rec.add(time.Since(at), err)
			}
		})
	}

	// A fixed seed: every run offers the same arrival pattern.
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Now()
	end := start.Add(l.Duration)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	next := start
dispatch:
	for {
		next = next.Add(time.Duration(rng.ExpFloat64() / l.Rate * float64(time.Second)))
		if next.After(end) {
			break
		}
		if wait := time.Until(next); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				break dispatch
			case <-timer.C:
			}
		}
		select {
		case arrivals <- next:
		case <-ctx.Done():
			break dispatch
		}
	}
	close(arrivals)

	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Until(end) + drain):
		cancel()
		<-done
	}
	return merge(recs, time.Since(start))
}
