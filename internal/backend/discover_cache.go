package backend

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// A modern backend's client sends server/discover where a legacy one would
// initialize, and vmcp makes a client for each session in front of the
// backend and for each warm pool session. The spec makes discover
// cacheable (ttlMs, cacheScope), so one answer serves the clients made
// while it is fresh.
//
// The answer may depend on who asks only through what the backend sees of
// the caller: its bearer token. The configured headers are the same for
// every client of a connector, and clientInfo and clientCapabilities
// describe vmcp's session, not an authorization context. So a "public"
// answer serves every client, and a "private" one only the clients that
// send the same token, as the spec requires ("a different access token
// requires a different cache"). Tokens are keyed by their SHA-256, never
// kept.
//
// The cache belongs to one connector: a reload that changes the backend
// makes a new connector, which starts empty; a backend answering
// "unsupported protocol version" empties it, as it forgets the era.

// Bounds of the discover cache.
const (
	// maxDiscoverTTL caps the ttlMs a backend gives, so that a backend
	// redeployed with other capabilities is seen within this long.
	maxDiscoverTTL = time.Hour
	// maxPrivateDiscovers bounds the private answers kept (one per token).
	maxPrivateDiscovers = 1024
)

// authKey is the SHA-256 of a client's bearer token; that of "" without one.
type authKey [sha256.Size]byte

// discoverCache holds the fresh server/discover answers of one backend.
// The zero value is empty and ready. Safe for concurrent use.
type discoverCache struct {
	flights singleflight.Group // one discover under way per token
	now     func() time.Time   // nil: time.Now; tests may fake it

	mu      sync.Mutex
	public  *discovered
	private map[authKey]*discovered
}

// discovered is one cached answer.
type discovered struct {
	res     InitializeResult
	expires time.Time
}

func (d *discoverCache) clock() time.Time {
	if d.now != nil {
		return d.now()
	}
	return time.Now()
}

// discoverFunc sends server/discover and returns its answer and caching hint.
type discoverFunc func(ctx context.Context) (*InitializeResult, Cacheability, bool, error)

// get returns a fresh answer for a client that sends ts's token, or asks
// the backend with send. Clients with the same token that ask at once
// share one request. An error is never cached.
func (d *discoverCache) get(ctx context.Context, ts TokenSource, send discoverFunc) (*InitializeResult, error) {
	key, ok := authKeyOf(ctx, ts)
	if !ok {
		// No token now: the discover fails for the same reason, uncached.
		res, _, _, err := send(ctx)
		return res, err
	}
	fresh := freshDiscover(ctx)
	if res := d.lookup(key); res != nil && !fresh {
		return res, nil
	}
	flight := string(key[:])
	if fresh {
		flight = "fresh " + flight // never served by another's flight
	}
	leader := false
	v, err, _ := d.flights.Do(flight, func() (any, error) {
		leader = true
		if res := d.lookup(key); res != nil && !fresh {
			return res, nil // cached since this client looked
		}
		res, hint, ok, err := send(ctx)
		if err != nil {
			return nil, err
		}
		if ok {
			d.store(key, res, hint)
		}
		return res, nil
	})
	if err != nil && !leader {
		// Another client's discover failed (its context ended, say):
		// this one asks for itself.
		res, _, _, err := send(ctx)
		return res, err
	}
	if err != nil {
		return nil, err
	}
	res := *v.(*InitializeResult) // each client gets a copy
	return &res, nil
}

// authKeyOf hashes the token a client sends now. ok is false when the
// token cannot be had.
func authKeyOf(ctx context.Context, ts TokenSource) (authKey, bool) {
	if ts == nil {
		return sha256.Sum256(nil), true
	}
	tok, err := ts.Token(ctx)
	if err != nil {
		return authKey{}, false
	}
	return sha256.Sum256([]byte(tok)), true
}

// lookup returns a copy of a fresh answer for key: a public one, or the
// private one of key.
func (d *discoverCache) lookup(key authKey) *InitializeResult {
	now := d.clock()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range []*discovered{d.public, d.private[key]} {
		if e != nil && now.Before(e.expires) {
			res := e.res
			return &res
		}
	}
	return nil
}

// store keeps an answer for its ttl (capped at maxDiscoverTTL): for every
// client if it is public, for key's if it is private. A ttl of 0 is
// "immediately stale": nothing is kept.
func (d *discoverCache) store(key authKey, res *InitializeResult, hint Cacheability) {
	ttl := min(hint.TTL, maxDiscoverTTL)
	if ttl <= 0 {
		return
	}
	now := d.clock()
	e := &discovered{res: *res, expires: now.Add(ttl)}
	d.mu.Lock()
	defer d.mu.Unlock()
	if hint.Scope != "private" {
		d.public = e
		return
	}
	if d.private == nil {
		d.private = make(map[authKey]*discovered)
	}
	if _, ok := d.private[key]; !ok && len(d.private) >= maxPrivateDiscovers {
		d.evictLocked(now)
	}
	d.private[key] = e
}

// evictLocked makes room for one private answer: it drops the stale ones,
// or else the one that would go stale first.
func (d *discoverCache) evictLocked(now time.Time) {
	var first authKey
	var soonest time.Time
	dropped := false
	for k, e := range d.private {
		if !now.Before(e.expires) {
			delete(d.private, k)
			dropped = true
		} else if soonest.IsZero() || e.expires.Before(soonest) {
			first, soonest = k, e.expires
		}
	}
	if !dropped && !soonest.IsZero() {
		delete(d.private, first)
	}
}

// forget empties the cache: the backend may have been replaced.
func (d *discoverCache) forget() {
	d.mu.Lock()
	d.public, d.private = nil, nil
	d.mu.Unlock()
}

type freshDiscoverKey struct{}

// withFreshDiscover makes a connect in ctx ask the backend server/discover
// whatever the cache holds (a probe must reach the backend).
func withFreshDiscover(ctx context.Context) context.Context {
	return context.WithValue(ctx, freshDiscoverKey{}, true)
}

func freshDiscover(ctx context.Context) bool {
	v, _ := ctx.Value(freshDiscoverKey{}).(bool)
	return v
}
