package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// options are the benchmark's flags.
type options struct {
	duration time.Duration
	tollgate string
	out      string
	rate     float64
	apiRate  float64
	// profileDir receives a CPU profile of tollgate serve for each phase.
	profileDir string
	// serveArgs are extra flags for tollgate serve.
	serveArgs []string
	// flood runs the memory flood instead of the load phases.
	flood bool
	// peers runs the comparison with Kyverno and Gatekeeper instead.
	peers bool
	// repeat is how many times the peers comparison runs its c=16 phases.
	repeat int
	// peersBin holds the kyverno and gatekeeper binaries.
	peersBin string
	// engines are the engines the peers comparison runs, in run order.
	engines []string
}

// validate names the flag that cannot work.
func (o options) validate() error {
	switch {
	case o.duration < time.Second:
		return fmt.Errorf("-duration %s: want at least 1s", o.duration)
	case o.tollgate == "":
		return errors.New("-tollgate: want the path of the tollgate binary")
	case o.rate <= 0:
		return fmt.Errorf("-rate %g: want requests per second above 0", o.rate)
	case o.apiRate <= 0:
		return fmt.Errorf("-api-rate %g: want pods per second above 0", o.apiRate)
	case o.repeat < 1 || o.repeat > 20:
		return fmt.Errorf("-repeat %d: want 1 to 20 repetitions", o.repeat)
	case o.peers && o.flood:
		return errors.New("-peers and -flood: choose one")
	case o.peers && o.peersBin == "":
		return errors.New("-peers-bin: want the directory holding the kyverno and gatekeeper binaries")
	}
	return nil
}

// run parses args, runs the benchmark and prints its report to stdout and
// its progress to stderr. It returns the exit status: 0, or 1 when the
// setup failed or a request failed, 2 for bad flags, 130 when interrupted.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var opts options
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: go run ./test/bench [flags]\n\nTollgate's admission load benchmark: see the package documentation.\n\n")
		fs.PrintDefaults()
	}
	fs.DurationVar(&opts.duration, "duration", 10*time.Second, "how long each measured phase runs")
	fs.StringVar(&opts.tollgate, "tollgate", "bin/tollgate", "the tollgate binary; a relative path is taken from the repository root")
	fs.StringVar(&opts.out, "out", "", "also write the results as JSON to this file")
	fs.Float64Var(&opts.rate, "rate", 500, "arrival rate of the direct open-loop phase, requests per second")
	fs.Float64Var(&opts.apiRate, "api-rate", 200, "arrival rate of the fixed-rate API server phases, pods per second")
	fs.StringVar(&opts.profileDir, "profile", "", "write a CPU profile of tollgate serve for each phase into this directory (go tool pprof bin/tollgate FILE)")
	fs.BoolVar(&opts.flood, "flood", false, "instead of the load phases, flood /validate with 200 concurrent 3 MiB reviews and report the server's peak memory, unbounded, with the default in-flight bounds, and with a client CA required")
	fs.BoolVar(&opts.peers, "peers", false, "instead of the load phases, compare Tollgate with Kyverno and Gatekeeper, each with its PSS checks (test/bench/peers), side by side (make bench-peers)")
	fs.IntVar(&opts.repeat, "repeat", 1, "with -peers, run each c=16 phase this many times and show each")
	fs.StringVar(&opts.peersBin, "peers-bin", "bin/peers", "with -peers, the directory holding the kyverno and gatekeeper binaries; a relative path is taken from the repository root")
	opts.engines = allEngines
	fs.Func("engines", "with -peers, a comma-separated subset of "+strings.Join(allEngines, ",")+" to run (default all)", func(v string) error {
		e, err := parseEngines(v)
		if err != nil {
			return err
		}
		opts.engines = e
		return nil
	})
	fs.Func("serve-arg", "an extra flag for tollgate serve, e.g. -serve-arg=--gc-percent=200 (repeatable)", func(v string) error {
		if !strings.HasPrefix(v, "--") {
			return fmt.Errorf("%q: want a flag of tollgate serve, starting with --", v)
		}
		opts.serveArgs = append(opts.serveArgs, v)
		return nil
	})
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if err := opts.validate(); err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 2
	}

	log := slog.New(slog.NewTextHandler(stderr, nil))
	if opts.peers {
		return runPeers(ctx, opts, log, stdout, stderr)
	}
	if opts.flood {
		if err := flood(ctx, opts, log, stdout); err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			if ctx.Err() != nil {
				return 130
			}
			return 1
		}
		return 0
	}
	res, err := benchmark(ctx, opts, log)
	res.summarise()
	if len(res.Phases) > 0 {
		res.print(stdout)
	}
	if opts.out != "" && len(res.Phases) > 0 {
		if werr := writeJSON(opts.out, res); werr != nil {
			fmt.Fprintf(stderr, "bench: %v\n", werr)
			return 1
		}
	}
	switch {
	case err != nil && ctx.Err() != nil:
		fmt.Fprintln(stderr, "bench: interrupted")
		return 130
	case err != nil:
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	case res.errors() > 0:
		fmt.Fprintf(stderr, "bench: %d requests failed\n", res.errors())
		return 1
	}
	return 0
}

// runPeers runs the peers comparison and prints it; it returns the exit
// status as run does, 1 also when an engine could not be measured.
func runPeers(ctx context.Context, opts options, log *slog.Logger, stdout, stderr io.Writer) int {
	res, err := peersBenchmark(ctx, opts, log)
	res.compare()
	if len(res.Engines) > 0 {
		res.print(stdout)
		if opts.out != "" {
			if werr := writeJSON(opts.out, res); werr != nil {
				fmt.Fprintf(stderr, "bench: %v\n", werr)
				return 1
			}
		}
	}
	switch {
	case err != nil && ctx.Err() != nil:
		fmt.Fprintln(stderr, "bench: interrupted")
		return 130
	case err != nil:
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	case len(res.skipped()) > 0:
		fmt.Fprintf(stderr, "bench: not measured: %s\n", strings.Join(res.skipped(), ", "))
		return 1
	case res.errors() > 0:
		fmt.Fprintf(stderr, "bench: %d requests failed\n", res.errors())
		return 1
	}
	return 0
}
