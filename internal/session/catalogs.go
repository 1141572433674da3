package session

import (
	"bytes"
	"encoding/json"
	"sync"

	"github.com/vmcp/vmcp/internal/aggregate"
)

// catalogs lets sessions share what their backends list. Sessions over
// the same backends nearly always get the same tools, resources and
// prompts, and a private copy of each listing and of the merged catalog
// cost about 100 KB per session at 10 backends (most of vmcp's memory with
// many sessions open). A listing equal, byte for byte, to the last one seen
// from that backend is replaced by that one, and a set of listings that
// are all the ones the last catalog was built from gets that catalog.
// Listings and catalogs are never modified once built, so sharing them is
// safe; a session whose backend lists something else simply gets its own.
// Safe for concurrent use.
type catalogs struct {
	opts aggregate.Options

	mu       sync.Mutex
	listings map[string]aggregate.Backend // by backend name: the last listing seen
	from     []aggregate.Backend          // what cat was built from
	cat      *aggregate.Catalog
}

func newCatalogs(opts aggregate.Options) *catalogs {
	return &catalogs{opts: opts, listings: make(map[string]aggregate.Backend)}
}

// intern returns the shared copy of l when there is one equal to it, and
// otherwise makes l the shared copy.
func (c *catalogs) intern(l aggregate.Backend) aggregate.Backend {
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.listings[l.Name]; ok && equalListing(prev, l) {
		return prev
	}
	c.listings[l.Name] = l
	return l
}

// catalog returns the catalog of listings, which should be interned. fresh
// reports whether it was built by this call (its warnings are then new).
func (c *catalogs) catalog(listings []aggregate.Backend) (cat *aggregate.Catalog, fresh bool, err error) {
	c.mu.Lock()
	if c.cat != nil && sameListings(c.from, listings) {
		cat = c.cat
	}
	c.mu.Unlock()
	if cat != nil {
		return cat, false, nil
	}
	cat, err = aggregate.Aggregate(listings, c.opts)
	if err != nil {
		return nil, false, err
	}
	c.mu.Lock()
	c.from, c.cat = append([]aggregate.Backend(nil), listings...), cat
	c.mu.Unlock()
	return cat, true, nil
}

func equalListing(a, b aggregate.Backend) bool {
	return a.Name == b.Name && equalItems(a.Tools, b.Tools) && equalItems(a.Resources, b.Resources) &&
		equalItems(a.ResourceTemplates, b.ResourceTemplates) && equalItems(a.Prompts, b.Prompts)
}

func equalItems(a, b []json.RawMessage) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// sameListings reports whether a and b are the same interned listings in
// the same order: the same backends, each with the very same slices.
func sameListings(a, b []aggregate.Backend) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || !sameSlice(a[i].Tools, b[i].Tools) || !sameSlice(a[i].Resources, b[i].Resources) ||
			!sameSlice(a[i].ResourceTemplates, b[i].ResourceTemplates) || !sameSlice(a[i].Prompts, b[i].Prompts) {
			return false
		}
	}
	return true
}

func sameSlice(a, b []json.RawMessage) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
