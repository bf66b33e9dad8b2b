package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"
)

// results is a whole run, as the report prints it and -out writes it.
type results struct {
	Started       time.Time     `json:"started"`
	CPUs          int           `json:"cpus"`
	Platform      string        `json:"platform"`
	GoVersion     string        `json:"goVersion"`
	PhaseDuration string        `json:"phaseDuration"`
	Phases        []phaseResult `json:"phases"`
	// Overhead compares the API server phases with and without the
	// webhooks, load by load.
	Overhead []overhead `json:"webhookOverhead,omitempty"`
}

func newResults(opts options) *results {
	return &results{
		Started: time.Now().UTC(), CPUs: hostCPUs(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH, GoVersion: runtime.Version(),
		PhaseDuration: opts.duration.String(),
	}
}

// phaseResult is what one phase measured.
type phaseResult struct {
	// Name is the endpoint (validate, mutate) of a direct phase, or
	// whether the webhooks were registered for an API server phase.
	Name string `json:"name"`
	// Target is "direct" (reviews posted to the server) or "apiserver"
	// (pods created through kube-apiserver).
	Target string `json:"target"`
	// Webhooks says, for an API server phase, whether Tollgate's webhook
	// configurations were registered.
	Webhooks    bool    `json:"webhooks"`
	Load        string  `json:"load"`
	Concurrency int     `json:"concurrency,omitempty"`
	Rate        float64 `json:"rate,omitempty"`

	Requests       int       `json:"requests"`
	Errors         int       `json:"errors"`
	ErrorSamples   []string  `json:"errorSamples,omitempty"`
	ElapsedSeconds float64   `json:"elapsedSeconds"`
	PerSecond      float64   `json:"perSecond"`
	LatencyMs      latencyMs `json:"latencyMs"`
	// Connections counts the TCP connections the load generator opened to
	// the server (direct phases): with keep-alive, about one per worker.
	Connections int64 `json:"connections,omitempty"`
	// Reviews counts the admission requests tollgate serve answered during
	// the phase, by webhook (mutate, validate): for an API server phase,
	// how many calls each pod cost.
	Reviews map[string]float64 `json:"reviews,omitempty"`

	// ServerRSSBytes and ServerHWMBytes are VmRSS and VmHWM of tollgate
	// serve at the end of the phase; the peak covers the phase only when
	// PeakSincePhaseStart, else the process's life.
	ServerRSSBytes int64 `json:"serverRSSBytes"`
	ServerHWMBytes int64 `json:"serverHWMBytes"`
	// ServerAnonBytes is the anonymous part of the resident set at the end
	// of the phase (RssAnon): the heap and stacks, not the executable's
	// pages.
	ServerAnonBytes     int64 `json:"serverAnonBytes,omitempty"`
	PeakSincePhaseStart bool  `json:"peakSincePhaseStart"`
	// CPUCores is the CPU time each process used during the phase divided
	// by its wall time: tollgate, kube-apiserver, etcd, bench (the load
	// generator) and other (the rest of the machine, which competed for
	// the same CPUs).
	CPUCores map[string]float64 `json:"cpuCores"`
}

// latencyMs are latency percentiles in milliseconds.
type latencyMs struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// overhead is what registering the webhooks did to pod creation under one
// load.
type overhead struct {
	Load            string  `json:"load"`
	P50WithoutMs    float64 `json:"p50WithoutMs"`
	P50WithMs       float64 `json:"p50WithMs"`
	AddedP50Ms      float64 `json:"addedP50Ms"`
	P99WithoutMs    float64 `json:"p99WithoutMs"`
	P99WithMs       float64 `json:"p99WithMs"`
	AddedP99Ms      float64 `json:"addedP99Ms"`
	ThroughputRatio float64 `json:"throughputRatio"`
}

// summarise pairs the API server phases without and with the webhooks.
func (r *results) summarise() {
	r.Overhead = nil
	for _, without := range r.Phases {
		if without.Target != "apiserver" || without.Webhooks {
			continue
		}
		for _, with := range r.Phases {
			if with.Target != "apiserver" || !with.Webhooks || with.Load != without.Load {
				continue
			}
			o := overhead{
				Load:         with.Load,
				P50WithoutMs: without.LatencyMs.P50, P50WithMs: with.LatencyMs.P50,
				AddedP50Ms:   with.LatencyMs.P50 - without.LatencyMs.P50,
				P99WithoutMs: without.LatencyMs.P99, P99WithMs: with.LatencyMs.P99,
				AddedP99Ms: with.LatencyMs.P99 - without.LatencyMs.P99,
			}
			if without.PerSecond > 0 {
				o.ThroughputRatio = with.PerSecond / without.PerSecond
			}
			r.Overhead = append(r.Overhead, o)
		}
	}
}

// errors counts the failed requests of every phase.
func (r *results) errors() int {
	n := 0
	for _, p := range r.Phases {
		n += p.Errors
	}
	return n
}

// writeJSON writes results (either benchmark's) to path as indented JSON.
func writeJSON(path string, results any) error {
	data, err := json.MarshalIndent(results, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the results: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing the results: %w", err)
	}
	return nil
}

// print writes the report's tables.
func (r *results) print(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("Tollgate admission benchmark: %s per phase; %d CPUs shared by the load generator, tollgate serve, kube-apiserver and etcd (%s, %s)\n",
		r.PhaseDuration, r.CPUs, r.Platform, r.GoVersion)

	p("\ntollgate serve, direct: AdmissionReviews (Pod and Deployment CREATE, alternating) over HTTPS, HTTP/1.1 keep-alive;\n")
	p("conns: TCP connections the phase opened\n")
	p("%-9s %-13s %9s %7s %9s %9s %9s %9s %9s %6s\n", "endpoint", "load", "requests", "errors", "req/s", "p50", "p95", "p99", "max", "conns")
	for _, ph := range r.Phases {
		if ph.Target != "direct" {
			continue
		}
		p("%-9s %-13s %9d %7d %9.1f %9s %9s %9s %9s %6d\n", ph.Name, ph.Load, ph.Requests, ph.Errors, ph.PerSecond,
			fmtMs(ph.LatencyMs.P50), fmtMs(ph.LatencyMs.P95), fmtMs(ph.LatencyMs.P99), fmtMs(ph.LatencyMs.Max), ph.Connections)
	}

	p("\nPod creates through kube-apiserver (client-go, compliant pods); calls: /mutate and /validate calls per pod\n")
	p("%-9s %-13s %9s %7s %9s %9s %9s %9s %9s %9s\n", "webhooks", "load", "pods", "errors", "pods/s", "p50", "p95", "p99", "max", "calls")
	for _, ph := range r.Phases {
		if ph.Target != "apiserver" {
			continue
		}
		hooks := "none"
		if ph.Webhooks {
			hooks = "tollgate"
		}
		calls := "-"
		if ph.Reviews != nil && ph.Requests > 0 {
			calls = fmt.Sprintf("%.1f+%.1f", ph.Reviews["mutate"]/float64(ph.Requests), ph.Reviews["validate"]/float64(ph.Requests))
		}
		p("%-9s %-13s %9d %7d %9.1f %9s %9s %9s %9s %9s\n", hooks, ph.Load, ph.Requests, ph.Errors, ph.PerSecond,
			fmtMs(ph.LatencyMs.P50), fmtMs(ph.LatencyMs.P95), fmtMs(ph.LatencyMs.P99), fmtMs(ph.LatencyMs.Max), calls)
	}

	if len(r.Overhead) > 0 {
		p("\nWhat the webhooks add to a pod create (with minus without)\n")
		p("%-13s %9s %9s %9s   %9s %9s %9s   %s\n", "load", "p50 w/o", "p50 with", "added", "p99 w/o", "p99 with", "added", "pods/s with ÷ without")
		for _, o := range r.Overhead {
			p("%-13s %9s %9s %9s   %9s %9s %9s   %.2f\n", o.Load,
				fmtMs(o.P50WithoutMs), fmtMs(o.P50WithMs), fmtSignedMs(o.AddedP50Ms),
				fmtMs(o.P99WithoutMs), fmtMs(o.P99WithMs), fmtSignedMs(o.AddedP99Ms), o.ThroughputRatio)
		}
	}

	p("\nResources per phase: CPU in cores (CPU seconds per wall second; other: every other process on the machine),\n")
	p("tollgate serve memory at the end of the phase\n")
	p("%-9s %-9s %-13s %8s %8s %8s %8s %8s %9s %9s\n", "target", "phase", "load", "tollgate", "apisrv", "etcd", "bench", "other", "RSS MiB", "peak MiB")
	perProcessPeak := true
	for _, ph := range r.Phases {
		name := ph.Name
		if ph.Target == "apiserver" {
			name = "none"
			if ph.Webhooks {
				name = "tollgate"
			}
		}
		perProcessPeak = perProcessPeak && ph.PeakSincePhaseStart
		p("%-9s %-9s %-13s %8s %8s %8s %8s %8s %9s %9s\n", ph.Target, name, ph.Load,
			fmtCores(ph.CPUCores, "tollgate"), fmtCores(ph.CPUCores, "kube-apiserver"), fmtCores(ph.CPUCores, "etcd"),
			fmtCores(ph.CPUCores, "bench"), fmtCores(ph.CPUCores, "other"),
			fmtMiB(ph.ServerRSSBytes), fmtMiB(ph.ServerHWMBytes))
	}
	if perProcessPeak {
		p("(peak: VmHWM reset at the start of each phase; tollgate serve restarts, with its webhooks registered, before the \"tollgate\" API server phases)\n")
	} else {
		p("(peak: VmHWM since tollgate serve started; it restarts, with its webhooks registered, before the \"tollgate\" API server phases)\n")
	}

	if n := r.errors(); n > 0 {
		p("\n%d requests failed:\n", n)
		for _, ph := range r.Phases {
			for _, s := range ph.ErrorSamples {
				p("  %s %s %s: %s\n", ph.Target, ph.Name, ph.Load, s)
			}
		}
	}
}

// fmtMs formats milliseconds with about three significant digits.
func fmtMs(v float64) string {
	switch a := abs(v); {
	case a >= 10000:
		return fmt.Sprintf("%.1fs", v/1000)
	case a >= 100:
		return fmt.Sprintf("%.0fms", v)
	case a >= 10:
		return fmt.Sprintf("%.1fms", v)
	default:
		return fmt.Sprintf("%.2fms", v)
	}
}

// fmtSignedMs is fmtMs with a sign.
func fmtSignedMs(v float64) string {
	if v < 0 {
		return fmtMs(v)
	}
	return "+" + fmtMs(v)
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

func fmtCores(c map[string]float64, name string) string {
	v, ok := c[name]
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.2f", v)
}

func fmtMiB(b int64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", float64(b)/(1<<20))
}
