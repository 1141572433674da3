package optimizer

import (
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/vmcp/vmcp/internal/toolsearch"
	"github.com/vmcp/vmcp/internal/toolsearch/toolsearchtest"
)

// countingBM25 is BM25 that counts its builds.
func countingBM25(n *atomic.Int32) Builder {
	return func(docs []toolsearch.Doc) Ranker {
		n.Add(1)
		return BM25(docs)
	}
}

// TestCacheSharesIndex: sessions with equal catalogs (equal bytes, other
// slices) share one index, built once even when they ask at once; a
// changed catalog gets its own; past the bound the least recently used
// goes.
func TestCacheSharesIndex(t *testing.T) {
	t.Parallel()
	var builds atomic.Int32
	c := newCache(countingBM25(&builds), 2, nil)
	tools := toolsearchtest.Catalog(200)
	copyOf := func(ts []json.RawMessage) []json.RawMessage {
		out := make([]json.RawMessage, len(ts))
		for i, t := range ts {
			out[i] = slices.Clone(t)
		}
		return out
	}

	var wg sync.WaitGroup
	got := make([]*index, 8)
	for i := range got {
		wg.Go(func() { got[i] = c.get(copyOf(tools)) })
	}
	wg.Wait()
	for _, idx := range got {
		if idx != got[0] {
			t.Fatal("sessions with equal catalogs got different indexes")
		}
	}
	if n := builds.Load(); n != 1 {
		t.Errorf("%d builds for one catalog, want 1", n)
	}

	changed := append(copyOf(tools), toolsearchtest.Catalog(201)[200]) // the first postgres tool
	if c.get(changed) == got[0] {
		t.Error("a changed catalog got the old index")
	}
	if hits := c.get(changed).ranker.Search("postgres", 5, nil); len(hits) != 1 || hits[0].Doc != 200 {
		t.Error("the new catalog's index does not find its new tool")
	}
	third := toolsearchtest.Catalog(50)
	c.get(third) // evicts the first catalog, the least recently used
	before := builds.Load()
	c.get(copyOf(tools))
	if builds.Load() != before+1 {
		t.Error("an evicted catalog's index was not rebuilt")
	}
	c.get(copyOf(third))
	if builds.Load() != before+1 {
		t.Error("a cached catalog's index was rebuilt")
	}
}

// TestCacheBuilderPanics: a ranker that panics on a backend's tools gives
// an index that finds nothing, not a hung or crashed request.
func TestCacheBuilderPanics(t *testing.T) {
	t.Parallel()
	c := newCache(func([]toolsearch.Doc) Ranker { panic("bad tools") }, 2, nil)
	idx := c.get(toolsearchtest.Catalog(3))
	if hits := idx.ranker.Search("list", 5, nil); hits != nil {
		t.Errorf("found %v", hits)
	}
}

func TestSummary(t *testing.T) {
	t.Parallel()
	idx := buildIndex([]json.RawMessage{
		json.RawMessage(`{"name":"a","title":"A","description":"does a","inputSchema":{"type":"object"},"annotations":{"readOnlyHint":true}}`),
		json.RawMessage(`{"name":"b","inputSchema":{"type":"object"}}`),
	}, BM25)
	for i, want := range []string{
		`{"name":"a","description":"does a","inputSchema":{"type":"object"}}`,
		`{"name":"b","inputSchema":{"type":"object"}}`,
	} {
		if got := string(idx.summary(i)); got != want {
			t.Errorf("summary(%d) = %s, want %s", i, got, want)
		}
	}
}
