package ratelimit

import (
	"context"
	"sync"
	"time"
)

// Memory keeps buckets in process, for one replica. Its zero value is not
// usable; call NewMemory. Safe for concurrent use; it holds no goroutine,
// so it needs no closing.
type Memory struct {
	now func() time.Time

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastPrune time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
	limit  Limit
}

// pruneAt is the bucket count past which full buckets are forgotten.
const pruneAt = 10_000

// NewMemory returns an in-process Limiter; now is its clock (nil:
// time.Now).
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{now: now, buckets: make(map[string]*bucket)}
}

// Take implements Limiter.
func (m *Memory) Take(_ context.Context, bs []Bucket) (bool, time.Duration, error) {
	if len(bs) == 0 {
		return true, 0, nil
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	var wait time.Duration
	level := make([]float64, len(bs))
	for i, b := range bs {
		level[i] = float64(b.Limit.Burst)
		if st := m.buckets[b.Key]; st != nil {
			level[i] = refill(b.Limit, st.tokens, now.Sub(st.at))
		}
		if level[i] < 1 {
			wait = max(wait, waitFor(b.Limit, level[i]))
		}
	}
	if wait > 0 {
		return false, wait, nil
	}
	for i, b := range bs {
		st := m.buckets[b.Key]
		if st == nil {
			st = &bucket{}
			m.buckets[b.Key] = st
		}
		st.tokens, st.at, st.limit = level[i]-1, now, b.Limit
	}
	if len(m.buckets) > pruneAt && now.Sub(m.lastPrune) > time.Second {
		m.lastPrune = now
		for k, st := range m.buckets {
			if now.Sub(st.at) >= fullAfter(st.limit) {
				delete(m.buckets, k)
			}
		}
	}
	return true, 0, nil
}
