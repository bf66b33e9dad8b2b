package usage_test

import (
	"context"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/finops/usage"
	"github.com/tollgate-dev/tollgate/test/prometheus"
)

const mib = 1 << 20

// history is two hours of a cluster scraped every 30 s: a web container
// using a quarter core and 512 MiB, a batch container at 1.5 cores, their
// kube-state-metrics requests, and OpenCost's node prices.
func history(now time.Time) string {
	var h prometheus.Series
	start, end, step := now.Add(-2*time.Hour), now.Add(-30*time.Second), 30*time.Second
	since := func(t time.Time) float64 { return t.Sub(start).Seconds() }
	h.Counter("container_cpu_usage_seconds_total", `namespace="shop",pod="web-1",container="web",id="/a"`, start, end, step,
		func(t time.Time) float64 { return 0.25 * since(t) })
	h.Counter("container_cpu_usage_seconds_total", `namespace="batch",pod="etl-1",container="etl",id="/b"`, start, end, step,
		func(t time.Time) float64 { return 1.5 * since(t) })
	// cAdvisor's pod-level series: excluded.
	h.Counter("container_cpu_usage_seconds_total", `namespace="shop",pod="web-1",container="",id="/"`, start, end, step,
		func(t time.Time) float64 { return 9 * since(t) })
	h.Gauge("container_memory_working_set_bytes", `namespace="shop",pod="web-1",container="web"`, start, end, step,
		func(time.Time) float64 { return 512 * mib })
	h.Gauge("kube_pod_container_resource_requests", `namespace="shop",pod="web-1",container="web",resource="cpu",unit="core"`, start, end, step,
		func(time.Time) float64 { return 0.5 })
	h.Gauge("kube_pod_container_resource_requests", `namespace="shop",pod="web-1",container="web",resource="memory",unit="byte"`, start, end, step,
		func(time.Time) float64 { return 256 * mib })
	h.Gauge("node_cpu_hourly_cost", `node="node-a",instance_type="m5.xlarge"`, start, end, step, func(time.Time) float64 { return 0.048 })
	h.Gauge("node_ram_hourly_cost", `node="node-a",instance_type="m5.xlarge"`, start, end, step, func(time.Time) float64 { return 0.006 })
	return h.String()
}

func TestSnapshotFromARealPrometheus(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	srv, err := prometheus.Start(context.Background(), prometheus.Options{History: history(now)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	src, err := usage.New(srv.URL(), usage.Options{Window: 30 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := src.Snapshot(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	web := usage.Container{Namespace: "shop", Pod: "web-1", Container: "web"}
	etl := usage.Container{Namespace: "batch", Pod: "etl-1", Container: "etl"}
	near := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > want*0.02 {
			t.Errorf("%s = %g, want %g", name, got, want)
		}
	}
	near("web cpu", snap.CPU[web], 0.25)
	near("etl cpu", snap.CPU[etl], 1.5)
	near("web memory", snap.Memory[web], 512*mib)
	near("web cpu request", snap.Requests[web]["cpu"], 0.5)
	near("web memory request", snap.Requests[web]["memory"], 256*mib)
	near("node-a cpu price", snap.NodeCPUHourly["node-a"], 0.048)
	near("node-a ram price", snap.NodeRAMHourly["node-a"], 0.006)
	if len(snap.CPU) != 2 {
		t.Errorf("cpu series %v: the pod-level (container=\"\") series must be left out", snap.CPU)
	}
}

func TestPrometheusDownSlowOrBroken(t *testing.T) {
	// Down: a port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String()
	l.Close()
	// Slow: accepts and never answers.
	hole, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	go func() {
		for {
			c, err := hole.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	// Broken: answers, but not Prometheus' API.
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"matrix","result":[]}}`))
	}))
	defer broken.Close()
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("<html>", 1000)))
	}))
	defer garbage.Close()

	for name, tc := range map[string]struct{ url, want string }{
		"down":           {down, "connection refused"},
		"slow":           {"http://" + hole.Addr().String(), "did not answer within"},
		"wrong type":     {broken.URL, "want a vector, got matrix"},
		"not prometheus": {garbage.URL, "querying cpu"},
	} {
		t.Run(name, func(t *testing.T) {
			src, err := usage.New(tc.url, usage.Options{Timeout: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			snap, err := src.Snapshot(context.Background(), time.Now())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("snapshot %+v, error %v: want %q", snap, err, tc.want)
			}
		})
	}
	if _, err := usage.New("::not a url", usage.Options{}); err == nil {
		t.Error("a malformed URL was accepted")
	}
}
