package main

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// peerResults is a whole comparison, as -peers prints it and -out writes
// it.
type peerResults struct {
	Started       time.Time `json:"started"`
	CPUs          int       `json:"cpus"`
	Platform      string    `json:"platform"`
	GoVersion     string    `json:"goVersion"`
	PhaseDuration string    `json:"phaseDuration"`
	// Repeat is how many times each c=16 phase ran.
	Repeat int `json:"repeat"`
	// Versions of the peer engines, by module.
	Versions map[string]string `json:"versions,omitempty"`
	Engines  []engineResult    `json:"engines"`
	// Ratios compare each Tollgate row with each peer row.
	Ratios []ratio `json:"ratios,omitempty"`
}

func newPeerResults(opts options) *peerResults {
	return &peerResults{
		Started: time.Now().UTC(), CPUs: hostCPUs(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH, GoVersion: runtime.Version(),
		PhaseDuration: opts.duration.String(), Repeat: opts.repeat,
	}
}

// engineResult is what one engine measured.
type engineResult struct {
	// Key is the engine's -engines name; Name its row title.
	Key  string `json:"key"`
	Name string `json:"name"`
	// Policies counts the PSS checks (for Tollgate's full library, every
	// policy) it enforced.
	Policies int `json:"policies,omitempty"`
	// Skipped says why the engine was not (fully) measured.
	Skipped string        `json:"skipped,omitempty"`
	Phases  []phaseResult `json:"phases"`
	Summary engineSummary `json:"summary"`
}

// engineSummary condenses the phases: one value per repetition of each
// c=16 phase, and the medians the table and the ratios use.
type engineSummary struct {
	// DirectPerSecond is AdmissionReviews/s posted straight to the
	// engine at c=16.
	DirectPerSecond []float64 `json:"directPerSecond,omitempty"`
	// DirectLatencyMs holds, per concurrency, the median over repetitions
	// of p50 and p99.
	DirectLatencyMs map[string]latencyMs `json:"directLatencyMs,omitempty"`
	// PodsPerSecond is Pod creates/s through the API server at c=16.
	PodsPerSecond []float64 `json:"podsPerSecond,omitempty"`
	// EngineCPUMsPerPod and APIServerCPUMsPerPod are CPU milliseconds
	// per created Pod during those phases.
	EngineCPUMsPerPod    []float64 `json:"engineCPUMsPerPod,omitempty"`
	APIServerCPUMsPerPod []float64 `json:"apiServerCPUMsPerPod,omitempty"`
	// PeakRSSBytes is the engine's largest VmHWM over the phases (each
	// phase resets it), i.e. its peak resident memory under load.
	PeakRSSBytes int64 `json:"peakRSSBytes,omitempty"`
	// AnonBytes is the engine's largest anonymous resident memory at the
	// end of a phase: its heap and stacks, without the pages of its
	// executable that VmHWM also counts.
	AnonBytes int64 `json:"anonBytes,omitempty"`
	// OtherCores is the median over the phases of the CPU every other
	// process on the machine used meanwhile: load that competed with
	// this engine's figures and not, or not as much, with others'.
	OtherCores float64 `json:"otherCores"`
}

// summarise fills Summary from Phases.
func (e *engineResult) summarise() {
	s := engineSummary{}
	p50s, p99s := map[int][]float64{}, map[int][]float64{}
	var other []float64
	for _, ph := range e.Phases {
		s.PeakRSSBytes = max(s.PeakRSSBytes, ph.ServerHWMBytes)
		s.AnonBytes = max(s.AnonBytes, ph.ServerAnonBytes)
		if c, ok := ph.CPUCores["other"]; ok {
			other = append(other, c)
		}
		switch ph.Target {
		case "direct":
			p50s[ph.Concurrency] = append(p50s[ph.Concurrency], ph.LatencyMs.P50)
			p99s[ph.Concurrency] = append(p99s[ph.Concurrency], ph.LatencyMs.P99)
			if ph.Concurrency == peerConcurrency {
				s.DirectPerSecond = append(s.DirectPerSecond, ph.PerSecond)
			}
		case "apiserver":
			if ph.Concurrency != peerConcurrency {
				continue
			}
			s.PodsPerSecond = append(s.PodsPerSecond, ph.PerSecond)
			if ph.Requests == 0 {
				continue
			}
			perPod := func(proc string) (float64, bool) {
				c, ok := ph.CPUCores[proc]
				return c * ph.ElapsedSeconds / float64(ph.Requests) * 1000, ok
			}
			if v, ok := perPod(engineCPUKey); ok {
				s.EngineCPUMsPerPod = append(s.EngineCPUMsPerPod, v)
			}
			if v, ok := perPod("kube-apiserver"); ok {
				s.APIServerCPUMsPerPod = append(s.APIServerCPUMsPerPod, v)
			}
		}
	}
	s.OtherCores = median(other)
	if len(p50s) > 0 {
		s.DirectLatencyMs = map[string]latencyMs{}
		for c := range p50s {
			s.DirectLatencyMs[strconv.Itoa(c)] = latencyMs{P50: median(p50s[c]), P99: median(p99s[c])}
		}
	}
	e.Summary = s
}

// ratio is one Tollgate row divided by one peer row, column by column
// (medians); 0 where either side has no figure.
type ratio struct {
	Tollgate string `json:"tollgate"`
	Peer     string `json:"peer"`
	// Higher favours Tollgate.
	DirectPerSecond float64 `json:"directPerSecond"`
	PodsPerSecond   float64 `json:"podsPerSecond"`
	// Lower favours Tollgate.
	EngineCPUMsPerPod    float64            `json:"engineCPUMsPerPod"`
	APIServerCPUMsPerPod float64            `json:"apiServerCPUMsPerPod"`
	PeakRSS              float64            `json:"peakRSS"`
	Anon                 float64            `json:"anon"`
	P99                  map[string]float64 `json:"p99,omitempty"`
}

// compare computes the ratios of every measured Tollgate row to every
// measured peer row.
func (r *peerResults) compare() {
	r.Ratios = nil
	div := func(a, b float64) float64 {
		if a == 0 || b == 0 {
			return 0
		}
		return a / b
	}
	for _, t := range r.Engines {
		if (t.Key != engineTollgate && t.Key != engineTollgatePSS) || t.Skipped != "" {
			continue
		}
		for _, p := range r.Engines {
			if (p.Key != engineKyverno && p.Key != engineGatekeeper) || p.Skipped != "" {
				continue
			}
			ts, ps := t.Summary, p.Summary
			q := ratio{
				Tollgate: t.Key, Peer: p.Key,
				DirectPerSecond:      div(median(ts.DirectPerSecond), median(ps.DirectPerSecond)),
				PodsPerSecond:        div(median(ts.PodsPerSecond), median(ps.PodsPerSecond)),
				EngineCPUMsPerPod:    div(median(ts.EngineCPUMsPerPod), median(ps.EngineCPUMsPerPod)),
				APIServerCPUMsPerPod: div(median(ts.APIServerCPUMsPerPod), median(ps.APIServerCPUMsPerPod)),
				PeakRSS:              div(float64(ts.PeakRSSBytes), float64(ps.PeakRSSBytes)),
				Anon:                 div(float64(ts.AnonBytes), float64(ps.AnonBytes)),
				P99:                  map[string]float64{},
			}
			for c, l := range ts.DirectLatencyMs {
				q.P99[c] = div(l.P99, ps.DirectLatencyMs[c].P99)
			}
			r.Ratios = append(r.Ratios, q)
		}
	}
}

// errors counts the failed requests of every phase.
func (r *peerResults) errors() int {
	n := 0
	for _, e := range r.Engines {
		for _, p := range e.Phases {
			n += p.Errors
		}
	}
	return n
}

// skipped lists the engines not measured.
func (r *peerResults) skipped() []string {
	var out []string
	for _, e := range r.Engines {
		if e.Skipped != "" {
			out = append(out, e.Key)
		}
	}
	return out
}

// print writes the comparison as Markdown tables.
func (r *peerResults) print(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	var versions []string
	for _, m := range []string{kyvernoModule, gatekeeperModule} {
		if v := r.Versions[m]; v != "" {
			versions = append(versions, m[strings.LastIndex(strings.TrimSuffix(m, "/v3"), "/")+1:]+" "+v)
		}
	}
	p("Admission engines side by side, %s: %s per phase, the c=16 phases %d× each; %d CPUs shared by the load generator,\n",
		r.Started.Format("2006-01-02"), r.PhaseDuration, r.Repeat, r.CPUs)
	p("the engine, kube-apiserver and etcd (%s, %s; %s)\n\n", r.Platform, r.GoVersion, strings.Join(versions, ", "))

	var none float64
	for _, e := range r.Engines {
		if e.Key == engineNone {
			none = median(e.Summary.PodsPerSecond)
		}
	}
	p("| engine | checks | AdmissionReviews/s direct, c=16 | Pod creates/s through the API server, c=16 | engine CPU per created Pod | API server CPU per Pod | engine peak RSS | engine anonymous RSS | rest of the machine |\n")
	p("|---|---|---|---|---|---|---|---|---|\n")
	for _, e := range r.Engines {
		if e.Skipped != "" {
			p("| %s | not measured (see below) | | | | | | | |\n", e.Name)
			continue
		}
		s := e.Summary
		pods := joinFloats(s.PodsPerSecond, "%.0f")
		if none > 0 && e.Key != engineNone && len(s.PodsPerSecond) > 0 {
			pods += fmt.Sprintf(" (%.0f %%)", 100*median(s.PodsPerSecond)/none)
		}
		checks := "–"
		if e.Policies > 0 {
			checks = strconv.Itoa(e.Policies)
		}
		p("| %s | %s | %s | %s | %s | %s | %s | %s | %.2f cores |\n", e.Name, checks, dash(joinFloats(s.DirectPerSecond, "%.0f")), dash(pods),
			dash(joinFloats(s.EngineCPUMsPerPod, "%.2f ms")), dash(joinFloats(s.APIServerCPUMsPerPod, "%.2f ms")), dash(mib(s.PeakRSSBytes)), dash(mib(s.AnonBytes)), s.OtherCores)
	}
	for _, q := range r.Ratios {
		p("| *%s ÷ %s* | | %s | %s | %s | %s | %s | %s | |\n", engineShort(q.Tollgate), engineShort(q.Peer),
			times(q.DirectPerSecond), times(q.PodsPerSecond), times(q.EngineCPUMsPerPod), times(q.APIServerCPUMsPerPod), times(q.PeakRSS), times(q.Anon))
	}
	p("\nValues separated by / are the repetitions; ratios and percentages use their medians. For /s a ratio above 1\n")
	p("favours Tollgate, for CPU and memory one below 1 does. Rest of the machine: CPU used meanwhile by every process\n")
	p("outside the benchmark (median over the engine's phases), which competed for the same %d CPUs. Peak RSS is the\n", r.CPUs)
	p("high-water mark (VmHWM), which counts the pages of the engine's executable it has touched; anonymous RSS\n")
	p("(RssAnon, largest at a phase's end) is the memory the engine alone holds: heap and stacks.\n\n")

	p("Direct AdmissionReviews, latency p50 / p99 (median over repetitions)\n\n")
	p("| engine |")
	for _, c := range directConcurrencies {
		p(" c=%d |", c)
	}
	p("\n|---|%s\n", strings.Repeat("---|", len(directConcurrencies)))
	for _, e := range r.Engines {
		if e.Skipped != "" || e.Summary.DirectLatencyMs == nil {
			continue
		}
		p("| %s |", e.Name)
		for _, c := range directConcurrencies {
			l, ok := e.Summary.DirectLatencyMs[strconv.Itoa(c)]
			if !ok {
				p(" – |")
				continue
			}
			p(" %s / %s |", fmtMs(l.P50), fmtMs(l.P99))
		}
		p("\n")
	}
	for _, q := range r.Ratios {
		p("| *p99 %s ÷ %s* |", engineShort(q.Tollgate), engineShort(q.Peer))
		for _, c := range directConcurrencies {
			p(" %s |", times(q.P99[strconv.Itoa(c)]))
		}
		p("\n")
	}

	for _, e := range r.Engines {
		if e.Skipped != "" {
			p("\n%s was not measured: %s\n", e.Name, e.Skipped)
		}
	}
	if n := r.errors(); n > 0 {
		p("\n%d requests failed:\n", n)
		for _, e := range r.Engines {
			for _, ph := range e.Phases {
				for _, s := range ph.ErrorSamples {
					p("  %s %s %s: %s\n", e.Key, ph.Target, ph.Load, s)
				}
			}
		}
	}
}

// engineShort names an engine in a ratio row.
func engineShort(key string) string {
	switch key {
	case engineTollgate:
		return "Tollgate full"
	case engineTollgatePSS:
		return "Tollgate PSS"
	case engineKyverno:
		return "Kyverno"
	case engineGatekeeper:
		return "Gatekeeper"
	}
	return key
}

// median of vs; 0 for none.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// joinFloats formats each value and joins them with " / ".
func joinFloats(vs []float64, format string) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmt.Sprintf(format, v)
	}
	return strings.Join(parts, " / ")
}

// times formats a ratio, or – when there is none.
func times(v float64) string {
	if v == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", v)
}

func dash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

func mib(b int64) string {
	if b == 0 {
		return ""
	}
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}
