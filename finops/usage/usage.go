// Package usage reads what containers actually use, and what nodes cost,
// from Prometheus through client_golang's API client: CPU from cAdvisor's
// container_cpu_usage_seconds_total, memory from
// container_memory_working_set_bytes, requests from kube-state-metrics'
// kube_pod_container_resource_requests where it runs, and node prices from
// OpenCost's node_cpu_hourly_cost and node_ram_hourly_cost where it runs.
// A Prometheus that is down or slow yields an error the caller turns into
// "stale": spend is then counted from requests, and no alert fires on the
// missing data.
package usage

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// Options configure a Source.
type Options struct {
	// Window is what usage is averaged over (default 1h): long enough to
	// smooth spikes, short enough to follow a scale-down.
	Window time.Duration
	// Timeout bounds one Snapshot, all queries together (default 10s).
	Timeout time.Duration
	// RoundTripper for the HTTP client (default http.DefaultTransport).
	RoundTripper http.RoundTripper
	// MaxSeries bounds the series one query may return (default 500,000):
	// a Prometheus cannot make the scanner hold unbounded data.
	MaxSeries int
}

// Source queries one Prometheus.
type Source struct {
	api  promv1.API
	opts Options
}

// New checks the URL and builds a Source.
func New(url string, opts Options) (*Source, error) {
	if opts.Window <= 0 {
		opts.Window = time.Hour
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.MaxSeries <= 0 {
		opts.MaxSeries = 500_000
	}
	c, err := api.NewClient(api.Config{Address: url, RoundTripper: opts.RoundTripper})
	if err != nil {
		return nil, fmt.Errorf("prometheus %q: %w", url, err)
	}
	return &Source{api: promv1.NewAPI(c), opts: opts}, nil
}

// Container names one container of one pod.
type Container struct {
	Namespace, Pod, Container string
}

// Snapshot is what Prometheus said at one time.
type Snapshot struct {
	At time.Time
	// CPU is cores used and Memory bytes of working set, averaged over
	// the window, per container.
	CPU    map[Container]float64
	Memory map[Container]float64
	// Requests are kube-state-metrics' requests per container (resource
	// name → amount in base units), empty where it does not run.
	Requests map[Container]map[string]float64
	// NodeCPUHourly (per core) and NodeRAMHourly (per GiB) are OpenCost's
	// node prices by node name, empty where it does not run.
	NodeCPUHourly map[string]float64
	NodeRAMHourly map[string]float64
	// Warnings are what Prometheus warned about.
	Warnings []string
}

// Queries, by what they feed. Each aggregates to the labels it keeps so
// a Prometheus with many label sets returns one series per container.
func (s *Source) queries() map[string]string {
	w := model.Duration(s.opts.Window).String()
	return map[string]string{
		"cpu":      `sum by (namespace, pod, container) (rate(container_cpu_usage_seconds_total{container!="",container!="POD"}[` + w + `]))`,
		"memory":   `sum by (namespace, pod, container) (avg_over_time(container_memory_working_set_bytes{container!="",container!="POD"}[` + w + `]))`,
		"requests": `sum by (namespace, pod, container, resource) (kube_pod_container_resource_requests)`,
		"nodeCPU":  `avg by (node) (node_cpu_hourly_cost)`,
		"nodeRAM":  `avg by (node) (node_ram_hourly_cost)`,
	}
}

// Snapshot runs the queries at time at. An error means usage is not known
// (Prometheus down, slow, or answering garbage); node prices and requests
// are optional and their absence is not an error.
func (s *Source) Snapshot(ctx context.Context, at time.Time) (*Snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	snap := &Snapshot{
		At: at, CPU: map[Container]float64{}, Memory: map[Container]float64{},
		Requests: map[Container]map[string]float64{}, NodeCPUHourly: map[string]float64{}, NodeRAMHourly: map[string]float64{},
	}
	q := s.queries()
	for _, key := range []string{"cpu", "memory", "requests", "nodeCPU", "nodeRAM"} {
		vec, err := s.query(ctx, q[key], at, snap)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("prometheus did not answer within %s: %w", s.opts.Timeout, err)
			}
			return nil, fmt.Errorf("querying %s: %w", key, err)
		}
		for _, sample := range vec {
			v := float64(sample.Value)
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				continue // a counter reset or a broken exporter: not a cost
			}
			m := sample.Metric
			c := Container{string(m["namespace"]), string(m["pod"]), string(m["container"])}
			switch key {
			case "cpu":
				snap.CPU[c] = v
			case "memory":
				snap.Memory[c] = v
			case "requests":
				if snap.Requests[c] == nil {
					snap.Requests[c] = map[string]float64{}
				}
				snap.Requests[c][string(m["resource"])] = v
			case "nodeCPU":
				snap.NodeCPUHourly[string(m["node"])] = v
			case "nodeRAM":
				snap.NodeRAMHourly[string(m["node"])] = v
			}
		}
	}
	if len(snap.CPU) == 0 && len(snap.Memory) == 0 {
		snap.Warnings = append(snap.Warnings, "no container usage series (is cAdvisor scraped?): spend is counted from requests")
	}
	return snap, nil
}

func (s *Source) query(ctx context.Context, query string, at time.Time, snap *Snapshot) (model.Vector, error) {
	val, warnings, _, err := s.api.Query(ctx, query, at, promv1.WithTimeout(s.opts.Timeout))
	if err != nil {
		return nil, err
	}
	snap.Warnings = append(snap.Warnings, warnings...)
	vec, ok := val.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("want a vector, got %s", val.Type())
	}
	if len(vec) > s.opts.MaxSeries {
		return nil, fmt.Errorf("%d series, over the %d read", len(vec), s.opts.MaxSeries)
	}
	return vec, nil
}

// ErrNoPrometheus is returned by a nil Source: usage is simply not
// configured, which is not stale.
var ErrNoPrometheus = errors.New("no Prometheus configured")
