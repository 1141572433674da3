package credentials

import (
	"fmt"
	"testing"
	"time"
)

// The cache stays within MaxEntries however many callers there are,
// dropping tokens due for refresh first.
func TestCacheBound(t *testing.T) {
	t.Parallel()
	now := time.Now()
	p := &Provider{opts: Options{MaxEntries: 3, Now: func() time.Time { return now }}, cache: map[string]*cached{}}
	p.cache["stale"] = &cached{token: "a", refreshAt: now.Add(-time.Second)}
	p.cache["fresh1"] = &cached{token: "b", refreshAt: now.Add(time.Hour)}
	p.cache["fresh2"] = &cached{token: "c"} // no expiry
	p.evictLocked()
	if _, ok := p.cache["stale"]; ok || len(p.cache) != 2 {
		t.Fatalf("after evicting: %v; want the stale entry gone and the fresh ones kept", p.cache)
	}
	for i := range 10 {
		if len(p.cache) >= p.opts.MaxEntries {
			p.evictLocked()
		}
		p.cache[fmt.Sprint("caller", i)] = &cached{token: "t", refreshAt: now.Add(time.Hour)}
		if len(p.cache) > p.opts.MaxEntries {
			t.Fatalf("cache holds %d entries, bound %d", len(p.cache), p.opts.MaxEntries)
		}
	}
}
