package serve

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/review"
)

// verdictCacheCollector exports the policy engine's verdict cache. Every
// reload builds a new engine with an empty cache, so the counters carry
// what earlier engines counted (as of the last scrape that saw them) and
// stay monotonic across reloads.
type verdictCacheCollector struct {
	state *review.Holder

	mu     sync.Mutex
	engine *policies.Engine
	seen   policies.CacheStats // the current engine's, at the last scrape
	past   policies.CacheStats // every earlier engine's, summed

	hits, misses, uncacheable, evictions, entries, bytes *prometheus.Desc
}

// RegisterVerdictCacheMetrics registers the verdict cache's series for
// the policies state holds, as the server does when it starts; the
// generated metrics reference calls it too, so the page lists them.
func RegisterVerdictCacheMetrics(reg prometheus.Registerer, state *review.Holder) error {
	return reg.Register(newVerdictCacheCollector(state))
}

func newVerdictCacheCollector(state *review.Holder) *verdictCacheCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("tollgate_verdict_cache_"+name, help, nil, nil)
	}
	return &verdictCacheCollector{
		state:       state,
		hits:        d("hits_total", "Policy verdicts served from the cache: the input values the policy reads were judged before."),
		misses:      d("misses_total", "Cacheable policy verdicts that had to be evaluated."),
		uncacheable: d("uncacheable_total", "Evaluations of policies that are never cached (they read the input whole or call a non-deterministic built-in)."),
		evictions:   d("evictions_total", "Verdicts dropped to stay within --verdict-cache."),
		entries:     d("entries", "Verdicts the current engine's cache holds."),
		bytes:       d("bytes", "Bytes the current engine's cache holds, of the --verdict-cache budget."),
	}
}

// Describe implements prometheus.Collector.
func (c *verdictCacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.hits, c.misses, c.uncacheable, c.evictions, c.entries, c.bytes} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *verdictCacheCollector) Collect(ch chan<- prometheus.Metric) {
	var now policies.CacheStats
	var e *policies.Engine
	if st := c.state.Load(); st != nil {
		e = st.Engine
	}
	if e != nil {
		now = e.CacheStats()
	}
	c.mu.Lock()
	if e != c.engine {
		c.past.Hits += c.seen.Hits
		c.past.Misses += c.seen.Misses
		c.past.Uncacheable += c.seen.Uncacheable
		c.past.Evictions += c.seen.Evictions
		c.engine = e
	}
	c.seen = now
	total := c.past
	c.mu.Unlock()
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	counter(c.hits, total.Hits+now.Hits)
	counter(c.misses, total.Misses+now.Misses)
	counter(c.uncacheable, total.Uncacheable+now.Uncacheable)
	counter(c.evictions, total.Evictions+now.Evictions)
	ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(now.Entries))
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(now.Bytes))
}
