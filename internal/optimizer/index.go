package optimizer

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"log/slog"
	"sync"

	"github.com/vmcp/vmcp/internal/jsonrpc"
	"github.com/vmcp/vmcp/internal/recovery"
	"github.com/vmcp/vmcp/internal/toolsearch"
)

// index is the search index of one catalog's tools. Immutable once built.
type index struct {
	tools  []json.RawMessage // the catalog's tools, as it lists them
	byName map[string]int
	ranker Ranker
}

func buildIndex(tools []json.RawMessage, build Builder) *index {
	docs := make([]toolsearch.Doc, len(tools))
	byName := make(map[string]int, len(tools))
	for i, raw := range tools {
		// The aggregator has checked every tool's name; a tool whose
		// JSON will not parse as a tool is simply never found.
		if d, err := toolsearch.ParseTool(raw); err == nil {
			docs[i] = d
			byName[d.Name] = i
		}
	}
	return &index{tools: tools, byName: byName, ranker: build(docs)}
}

// allowed says which of the index's tools are in visible, a caller's
// tools/list, by name.
func (ix *index) allowed(visible []json.RawMessage) bitset {
	allow := make(bitset, (len(ix.tools)+63)/64)
	for _, raw := range visible {
		if name, ok := stringMember(raw, "name"); ok {
			if i, ok := ix.byName[name]; ok {
				allow[i/64] |= 1 << (i % 64)
			}
		}
	}
	return allow
}

// bitset is a set of tool positions: a session keeps one per caller view,
// so a bit each rather than a byte.
type bitset []uint64

func (b bitset) has(i int) bool { return b[i/64]&(1<<(i%64)) != 0 }

// summary is what find_tool tells of tool i: its name, description and
// input schema, as the catalog has them.
func (ix *index) summary(i int) json.RawMessage {
	raw := ix.tools[i]
	out := []byte(`{`)
	for _, key := range []string{"name", "description", "inputSchema"} {
		if v, _ := jsonrpc.Member(raw, key); v != nil {
			if len(out) > 1 {
				out = append(out, ',')
			}
			out = append(jsonrpc.AppendString(out, key), ':')
			out = append(out, v...)
		}
	}
	return append(out, '}')
}

// cache holds the indexes of the catalogs seen, by a hash of their tools,
// the least recently used dropped first past max. An index is built once:
// sessions asking for it meanwhile wait for that build. Safe for
// concurrent use.
type cache struct {
	build Builder
	max   int
	log   *slog.Logger

	mu      sync.Mutex
	entries map[[sha256.Size]byte]*entry
	lru     [][sha256.Size]byte // oldest first
	// last is the catalog last looked up, by identity: sessions built from
	// the same interned catalog skip the hash.
	last     []json.RawMessage
	lastIdx  *index
	lastSeen bool
}

type entry struct {
	ready chan struct{} // closed once idx is set
	idx   *index
}

func newCache(build Builder, max int, log *slog.Logger) *cache {
	return &cache{build: build, max: max, log: log, entries: make(map[[sha256.Size]byte]*entry)}
}

// get returns the index of tools, building it if no session has.
func (c *cache) get(tools []json.RawMessage) *index {
	c.mu.Lock()
	if c.lastSeen && sameSlice(c.last, tools) {
		idx := c.lastIdx
		c.mu.Unlock()
		return idx
	}
	c.mu.Unlock()

	key := catalogHash(tools)
	c.mu.Lock()
	e, ok := c.entries[key]
	if ok {
		c.touchLocked(key)
	} else {
		e = &entry{ready: make(chan struct{})}
		c.entries[key] = e
		c.lru = append(c.lru, key)
		if len(c.lru) > c.max {
			delete(c.entries, c.lru[0])
			c.lru = c.lru[1:]
		}
	}
	c.mu.Unlock()
	if !ok {
		c.fill(e, tools)
	}
	<-e.ready
	c.mu.Lock()
	c.last, c.lastIdx, c.lastSeen = tools, e.idx, true
	c.mu.Unlock()
	// Another session's equal catalog (same hash) built it: its tools are
	// byte for byte these.
	return e.idx
}

// fill builds e's index. A Builder that panics on a backend's tools leaves
// an index that finds nothing, and says so in the log, rather than a
// request that never ends or a process that does.
func (c *cache) fill(e *entry, tools []json.RawMessage) {
	defer close(e.ready)
	defer recovery.Recover(c.log, func(error) {
		e.idx = &index{tools: tools, byName: map[string]int{}, ranker: noRanker{}}
	}, "during", "building the optimizer's index")
	e.idx = buildIndex(tools, c.build)
}

// noRanker finds nothing.
type noRanker struct{}

func (noRanker) Search(string, int, func(int) bool) []toolsearch.Hit { return nil }

func (c *cache) touchLocked(key [sha256.Size]byte) {
	for i, k := range c.lru {
		if k == key {
			copy(c.lru[i:], c.lru[i+1:])
			c.lru[len(c.lru)-1] = key
			return
		}
	}
}

// catalogHash identifies a catalog's tools: their bytes, each length
// prefixed, in order.
func catalogHash(tools []json.RawMessage) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	for _, t := range tools {
		binary.BigEndian.PutUint64(n[:], uint64(len(t)))
		h.Write(n[:])
		h.Write(t)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}
