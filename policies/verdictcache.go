package policies

import (
	"container/list"
	"sync"
	"sync/atomic"
)

// CacheStats counts what the verdict cache did since the engine was built.
// The webhook exports them as metrics: a low hit rate on repeated templates
// means a policy reads something that changes on every object.
type CacheStats struct {
	// Hits and Misses count lookups of cacheable policies' verdicts.
	Hits   uint64
	Misses uint64
	// Uncacheable counts evaluations of policies that are never cached
	// (unbounded reads or non-deterministic builtins).
	Uncacheable uint64
	// Evictions counts entries dropped to stay within the byte budget.
	Evictions uint64
	// Entries and Bytes are what the cache holds now.
	Entries int
	Bytes   int64
}

// verdictShards spreads the cache's lock over this many shards.
const verdictShards = 16

// entryOverhead is what an entry costs besides its result: key, list
// element, map slot.
const entryOverhead = 160

// verdictCache holds policies' raw verdicts by verdictKey, least recently
// used first out, within a byte budget: an object never seen before costs a
// bounded amount, whoever sends them.
type verdictCache struct {
	shards                        [verdictShards]verdictShard
	hits, misses, uncacheable, ev atomic.Uint64
}

type verdictShard struct {
	mu     sync.Mutex
	budget int64
	bytes  int64
	lru    list.List
	byKey  map[[32]byte]*list.Element
}

type verdictEntry struct {
	key    [32]byte
	result any
	size   int64
}

// newVerdictCache returns a cache of at most budget bytes, nil (no cache)
// for a budget of 0.
func newVerdictCache(budget int64) *verdictCache {
	if budget <= 0 {
		return nil
	}
	c := &verdictCache{}
	for i := range c.shards {
		c.shards[i].budget = budget / verdictShards
		c.shards[i].byKey = map[[32]byte]*list.Element{}
	}
	return c
}

func (c *verdictCache) shard(key [32]byte) *verdictShard {
	return &c.shards[key[0]%verdictShards]
}

// get returns the cached result for key. Results are shared: callers only
// read them.
func (c *verdictCache) get(key [32]byte) (any, bool) {
	s := c.shard(key)
	s.mu.Lock()
	el, ok := s.byKey[key]
	var result any
	if ok {
		s.lru.MoveToFront(el)
		// put may replace the entry's result: read it under the lock.
		result = el.Value.(*verdictEntry).result
	}
	s.mu.Unlock()
	if !ok {
		c.misses.Add(1)
		return nil, false
	}
	c.hits.Add(1)
	return result, true
}

// put stores result under key, evicting the least recently used entries
// past the budget. A result larger than a shard's budget is not kept.
func (c *verdictCache) put(key [32]byte, result any) {
	size := jsonSize(result) + entryOverhead
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if size > s.budget {
		return
	}
	if el, ok := s.byKey[key]; ok {
		old := el.Value.(*verdictEntry)
		s.bytes += size - old.size
		old.result, old.size = result, size
		s.lru.MoveToFront(el)
	} else {
		s.byKey[key] = s.lru.PushFront(&verdictEntry{key: key, result: result, size: size})
		s.bytes += size
	}
	for s.bytes > s.budget {
		last := s.lru.Back()
		e := last.Value.(*verdictEntry)
		s.lru.Remove(last)
		delete(s.byKey, e.key)
		s.bytes -= e.size
		c.ev.Add(1)
	}
}

func (c *verdictCache) stats() CacheStats {
	st := CacheStats{
		Hits:        c.hits.Load(),
		Misses:      c.misses.Load(),
		Uncacheable: c.uncacheable.Load(),
		Evictions:   c.ev.Load(),
	}
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		st.Entries += len(s.byKey)
		st.Bytes += s.bytes
		s.mu.Unlock()
	}
	return st
}
