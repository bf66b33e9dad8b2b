package serve

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/library"
	"github.com/tollgate-dev/tollgate/policies/review"
)

// TestVerdictCacheMetricsSurviveReloads: the cache counters count hits
// and misses of the engine in force, and a reload (a new engine, an empty
// cache) never makes them go down.
func TestVerdictCacheMetricsSurviveReloads(t *testing.T) {
	mods, err := policies.ReadFS(library.FS(), "library", false)
	if err != nil {
		t.Fatal(err)
	}
	engine := func() *policies.Engine {
		e, err := policies.New(context.Background(), policies.Options{Modules: mods, VerdictCache: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	pod := map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "p", "namespace": "shop"},
		"spec": map[string]any{"containers": []any{map[string]any{"name": "app", "image": "nginx:1.27"}}}}
	in := policies.ObjectInput(policies.SourceAdmission, pod, nil)

	state := &review.Holder{}
	c := newVerdictCacheCollector(state)
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	value := func(name string) float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name {
				m := mf.GetMetric()[0]
				if m.GetCounter() != nil {
					return m.GetCounter().GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
		t.Fatalf("no %s", name)
		return 0
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 6 {
		t.Fatalf("with no engine yet: %d series, %v; want all 6 at zero", n, err)
	}

	first := engine()
	state.Store(review.NewSet(first, nil, 1))
	first.Evaluate(context.Background(), in)
	first.Evaluate(context.Background(), in)
	hits, misses := value("tollgate_verdict_cache_hits_total"), value("tollgate_verdict_cache_misses_total")
	if hits == 0 || misses == 0 || value("tollgate_verdict_cache_entries") == 0 {
		t.Fatalf("after the same Pod twice: %v hits, %v misses, %v entries; want some of each", hits, misses, value("tollgate_verdict_cache_entries"))
	}

	second := engine() // a reload
	state.Store(review.NewSet(second, nil, 2))
	if h, m := value("tollgate_verdict_cache_hits_total"), value("tollgate_verdict_cache_misses_total"); h != hits || m != misses {
		t.Fatalf("right after a reload: %v hits, %v misses; want the earlier engine's %v and %v kept", h, m, hits, misses)
	}
	if e := value("tollgate_verdict_cache_entries"); e != 0 {
		t.Fatalf("a new engine's cache holds %v entries; want an empty cache", e)
	}
	second.Evaluate(context.Background(), in)
	if m := value("tollgate_verdict_cache_misses_total"); m <= misses {
		t.Fatalf("the new engine's misses are not added: %v, was %v", m, misses)
	}
}
