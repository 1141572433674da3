package authn

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/vmcp/vmcp/internal/identity"
)

// tokenCache keeps verified identities by the SHA-256 of their token, until
// each one's deadline, up to a bound. It never holds a token: entries carry
// no Token, and the caller sets the presented one on its copy. Safe for
// concurrent use.
type tokenCache struct {
	max int
	now func() time.Time

	mu sync.Mutex
	m  map[[sha256.Size]byte]cached
}

type cached struct {
	id    *identity.Identity // Token empty
	until time.Time
}

func newTokenCache(max int, now func() time.Time) *tokenCache {
	return &tokenCache{max: max, now: now, m: make(map[[sha256.Size]byte]cached)}
}

// get returns a copy of the identity cached for the token with hash k,
// with Token set to tok.
func (c *tokenCache) get(k [sha256.Size]byte, tok string) (*identity.Identity, bool) {
	c.mu.Lock()
	e, ok := c.m[k]
	if ok && !c.now().Before(e.until) {
		delete(c.m, k)
		ok = false
	}
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	id := *e.id
	id.Token = tok
	return &id, true
}

// put caches id (whose Token it drops) until until. When full it first
// drops expired entries, then arbitrary ones: a dropped entry only costs a
// verification.
func (c *tokenCache) put(k [sha256.Size]byte, id *identity.Identity, until time.Time) {
	stored := *id
	stored.Token = ""
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		now := c.now()
		for k, e := range c.m {
			if !now.Before(e.until) {
				delete(c.m, k)
			}
		}
		for k := range c.m {
			if len(c.m) < c.max {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[k] = cached{id: &stored, until: until}
}

func (c *tokenCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
