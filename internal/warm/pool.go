// Package warm keeps per-identity pools of initialized sessions for
// stateless requests.
//
// A 2026-07-28 ("modern") request carries no session, yet most backends are
// legacy and stateful: they want an initialize, and they keep state (a
// counter, a browser tab) in the backend session it starts. A Pool holds
// sessions that were initialized once, without a client's initialize, and
// hands one to each modern request, so that a request costs no initialize
// at the backend and a caller's backend state carries over between its
// requests.
//
// A pool belongs to one identity: a session built for one caller is only
// ever handed to that caller, so one caller's backend state never serves
// another's request. The pool is bounded per identity and in total, and a
// session idle for longer than IdleTimeout is closed by a goroutine the
// Pool owns.
package warm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vmcp/vmcp/internal/identity"
	"github.com/vmcp/vmcp/internal/jsonrpc"
	"github.com/vmcp/vmcp/internal/recovery"
	"github.com/vmcp/vmcp/internal/session"
	"github.com/vmcp/vmcp/internal/store"
)

// Anonymous is the identity of a caller that incoming authentication did
// not name. Acquire treats "" as Anonymous.
const Anonymous = "anonymous"

// Errors Acquire returns.
var (
	// ErrExhausted: every pooled session is in use by other identities
	// and the pool is at its bound. The front end answers 503 with
	// Retry-After; the error reveals no counts.
	ErrExhausted = errors.New("no warm backend session available")
	// ErrClosed: the pool is closed (the gateway is shutting down).
	ErrClosed = errors.New("warm session pool closed")
	// ErrIdentityMismatch: the identity asked for is not the caller's in
	// ctx. It is a programming error in the front end, refused so that a
	// mistake there cannot hand one caller's session to another.
	ErrIdentityMismatch = errors.New("warm session pool: identity does not match the caller")
)

// Factory builds a complete session from its metadata; *session.Factory is
// one, and applies the configured decorators (policy, rate limits) to
// every session it builds.
type Factory interface {
	New(ctx context.Context, meta *store.Metadata) (*session.Session, error)
}

// DefaultClientCapabilities are what a pooled session declares to its
// backends: a backend may then ask for elicitation, sampling or roots in
// the middle of a call, and the front end turns that into an MRTR
// InputRequiredResult for the modern client (see session.Peer).
var DefaultClientCapabilities = json.RawMessage(`{"elicitation":{},"roots":{},"sampling":{}}`)

// Options configure a Pool. Factory is required.
type Options struct {
	Factory Factory
	// MaxPerIdentity bounds the sessions of one identity; default 4.
	MaxPerIdentity int
	// MaxSessions bounds the sessions of all identities; default 256.
	MaxSessions int
	// IdleTimeout closes a session no request has used for this long;
	// default 5m.
	IdleTimeout time.Duration
	// MaxAge, if set, retires a session this old: it is not handed out
	// again and closes once idle (its caller's credentials were resolved
	// when it was built). 0: no limit.
	MaxAge time.Duration
	// SweepInterval is how often idle sessions are looked for; default 1s.
	SweepInterval time.Duration
	// ClientCapabilities are declared to backends; default
	// DefaultClientCapabilities.
	ClientCapabilities json.RawMessage
	// Peer, if set, returns the session-level Peer of a session built for
	// identity: it receives what a backend sends outside any call
	// (resources/updated, say). By default that is dropped, so that a
	// later request's stream never carries an earlier one's messages.
	Peer func(identity string) session.Peer
	// Now is the clock; default time.Now. Tests may fake it.
	Now    func() time.Time
	Logger *slog.Logger
}

// Pool holds warm sessions per identity. Acquire, Listen, Stats and Close
// are safe for concurrent use. The Pool owns its sessions: Close closes each
// exactly once.
type Pool struct {
	opts Options
	log  *slog.Logger
	life context.Context // cancelled by Close: ends builds under way
	stop context.CancelFunc

	mu       sync.Mutex
	ids      map[string]*identityPool
	total    int // sessions held plus sessions being built, all identities
	closed   bool
	changed  chan struct{} // closed and replaced when a waiter may proceed
	counts   counters
	bg       sync.WaitGroup // builds and closes of evicted or reaped sessions
	reaped   chan struct{}  // closed when the reaper has returned
	closeErr error
	done     chan struct{} // closed when Close has finished
}

// identityPool is one identity's sessions.
type identityPool struct {
	entries  []*entry
	building int
}

// entry is one pooled session. Its fields are guarded by Pool.mu.
type entry struct {
	s        *session.Session
	identity string
	created  time.Time
	lastUsed time.Time // when a request last took or released it
	busy     int       // requests using it now
	// listeners are the subscriptions/listen streams holding it (Listen).
	// They keep it from being reaped, evicted or closed, but it stays
	// idle for requests: a caller's calls and its subscriptions must
	// share one backend session.
	listeners int
	gone      bool // removed from the pool; its closer is whoever removed it
	retired   bool // RetireAll: never handed out again
}

// New returns a Pool and starts its reaper, stopped by Close.
func New(opts Options) *Pool {
	if opts.MaxPerIdentity <= 0 {
		opts.MaxPerIdentity = 4
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = 256
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 5 * time.Minute
	}
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = time.Second
	}
	if opts.ClientCapabilities == nil {
		opts.ClientCapabilities = DefaultClientCapabilities
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	life, stop := context.WithCancel(context.Background())
	p := &Pool{
		opts: opts, log: opts.Logger, life: life, stop: stop,
		ids:     make(map[string]*identityPool),
		changed: make(chan struct{}),
		reaped:  make(chan struct{}),
		done:    make(chan struct{}),
	}
	go p.reap()
	return p
}

// Acquire returns an initialized session bound to identity
// (identity.Key() of the caller in ctx, or Anonymous) and the func to call,
// once, when the request ends. Call the session through
// s.Operations(), as for any session, so that its decorators apply.
//
// It hands out an idle session of identity if there is one (first one a
// listen stream holds: see Listen); else it builds one, if identity is
// under MaxPerIdentity and the pool under MaxSessions (or, at
// MaxSessions, after evicting the least recently used idle session of
// another identity); else it shares identity's least busy session. A
// session is only ever handed to the identity it was built for. When
// nothing can be had it returns ErrExhausted; a build that cannot start a
// stdio backend's process fails with an error wrapping
// backend.ErrProcessLimit; one that reaches no backend, with one wrapping
// session.ErrNoBackends (all three: 503). A build that ctx abandons goes
// on, and the session joins the pool.
//
// A backend's request in the middle of a call (elicitation, sampling,
// roots) goes to the call's session.Peer (session.WithPeer). A backend on
// a shared connection (stdio, SSE) cannot say which call it asks for: its
// request goes to the most recent call in flight on that connection, which
// is exact while the session serves one request at a time, as it does
// below MaxPerIdentity. Release a session when its backend call has
// ended, MRTR rounds included, not when a first response is written.
func (p *Pool) Acquire(ctx context.Context, id string) (s *session.Session, release func(), err error) {
	return p.acquire(ctx, id, false)
}

func (p *Pool) acquire(ctx context.Context, id string, listen bool) (s *session.Session, release func(), err error) {
	if id == "" {
		id = Anonymous
	}
	if err := checkCaller(ctx, id); err != nil {
		return nil, nil, err
	}
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, nil, ErrClosed
		}
		now := p.opts.Now()
		if ip := p.ids[id]; ip != nil {
			p.retireLocked(ip, now)
		}
		ip := p.identityLocked(id)
		if listen {
			if e := p.listenedLocked(ip, now); e != nil {
				return p.handOutLocked(ctx, e, now, listen, &p.counts.hits)
			}
		}
		if e := p.idleLocked(ip, now); e != nil {
			return p.handOutLocked(ctx, e, now, listen, &p.counts.hits)
		}
		// Retired sessions still serving a request count towards the
		// pool's total but not towards the identity's bound.
		if p.usableLocked(ip, now)+ip.building < p.opts.MaxPerIdentity {
			victim, ok := p.roomLocked(id)
			if ok {
				return p.build(ctx, id, victim, listen)
			}
		}
		if e := p.leastBusyLocked(ip, now); e != nil {
			return p.handOutLocked(ctx, e, now, listen, &p.counts.shared)
		}
		if ip.building == 0 {
			p.counts.refused++
			p.dropIfEmptyLocked(id, ip)
			p.mu.Unlock()
			return nil, nil, ErrExhausted
		}
		// A session of this identity is being built: wait for it, or for
		// any release, rather than refuse a burst of first requests.
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("waiting for a warm backend session: %w", ctx.Err())
		}
	}
}

// checkCaller refuses an identity that is not the caller's: a "sub:" key
// must be the key of the verified identity in ctx; an anonymous caller may
// be given any key that is not a subject's ("anonymous", "ip:…").
func checkCaller(ctx context.Context, id string) error {
	key := identity.FromContext(ctx).Key()
	if key == "" && !strings.HasPrefix(id, "sub:") || key == id {
		return nil
	}
	return ErrIdentityMismatch
}

// usable reports whether e may be handed out: it is open, not retired,
// and on the factory's current lineup (a session built while a reload
// ran joins the pool after RetireAll, on the old backends), or held by a
// listen stream, which brings it there.
func (p *Pool) usable(e *entry, now time.Time) bool {
	if e.retired {
		return false
	}
	if p.opts.MaxAge > 0 && now.Sub(e.created) >= p.opts.MaxAge {
		return false
	}
	select {
	case <-e.s.Done():
		return false
	case <-e.s.Outdated():
		return e.listeners > 0
	default:
		return true
	}
}

// retireLocked closes, in the background, ip's idle sessions that may not
// be handed out again (past MaxAge, or closed under the pool), so that
// they do not hold places.
func (p *Pool) retireLocked(ip *identityPool, now time.Time) {
	for _, e := range slices.Clone(ip.entries) {
		if !e.held() && !p.usable(e, now) {
			p.removeLocked(e)
			p.goLocked(func() { p.closeSession(e, "retired") })
		}
	}
}

// RetireAll stops handing out every session the pool holds now: idle ones
// close at once, busy ones when their last request releases them. New
// requests get sessions built afresh. A config reload calls it, so that
// pooled sessions, which the session manager does not hold, are rebuilt
// on the new backends rather than kept on the old ones. A session a
// listen stream holds is not retired: it is brought to the new lineup
// (see Listen), and keeps its backend state.
func (p *Pool) RetireAll() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.opts.Now()
	for _, ip := range p.ids {
		for _, e := range ip.entries {
			if e.listeners == 0 {
				e.retired = true
			}
		}
		p.retireLocked(ip, now)
	}
	p.signalLocked()
}

// usableLocked counts ip's sessions that may be handed out.
func (p *Pool) usableLocked(ip *identityPool, now time.Time) int {
	n := 0
	for _, e := range ip.entries {
		if p.usable(e, now) {
			n++
		}
	}
	return n
}

// idleLocked returns ip's idle session a listen stream holds, if any,
// where the caller's subscriptions are; else its most recently used idle
// one: the others stay idle longer and are reaped first.
func (p *Pool) idleLocked(ip *identityPool, now time.Time) *entry {
	var best *entry
	for _, e := range ip.entries {
		if e.busy > 0 || !p.usable(e, now) {
			continue
		}
		switch {
		case best == nil, e.listeners > 0 && best.listeners == 0:
			best = e
		case (e.listeners > 0) == (best.listeners > 0) && e.lastUsed.After(best.lastUsed):
			best = e
		}
	}
	return best
}

// leastBusyLocked returns ip's usable session with the fewest requests.
func (p *Pool) leastBusyLocked(ip *identityPool, now time.Time) *entry {
	var best *entry
	for _, e := range ip.entries {
		if p.usable(e, now) && (best == nil || e.busy < best.busy) {
			best = e
		}
	}
	return best
}

// roomLocked reports whether one more session fits in the pool; at
// MaxSessions it frees a place by evicting the least recently used idle
// session of another identity (or a retired one of any), returned as
// victim for the caller to close outside the lock.
func (p *Pool) roomLocked(id string) (victim *entry, ok bool) {
	if p.total < p.opts.MaxSessions {
		return nil, true
	}
	now := p.opts.Now()
	for other, ip := range p.ids {
		for _, e := range ip.entries {
			if e.held() || other == id && p.usable(e, now) {
				continue
			}
			if victim == nil || e.lastUsed.Before(victim.lastUsed) {
				victim = e
			}
		}
	}
	if victim == nil {
		return nil, false
	}
	p.removeLocked(victim)
	return victim, true
}

// handOutLocked gives e to one more request, or listen stream, and
// unlocks p.mu. A session a listen stream kept across a reload is brought
// to the new lineup first, if its stream has not yet done it.
func (p *Pool) handOutLocked(ctx context.Context, e *entry, now time.Time, listen bool, count *uint64) (*session.Session, func(), error) {
	e.hold(listen, 1)
	e.lastUsed = now
	*count++
	p.mu.Unlock()
	e.s.Touch(now)
	select {
	case <-e.s.Outdated():
		e.s.Reconcile(ctx)
	default:
	}
	return e.s, p.releaser(e, listen), nil
}

// releaser returns the func that ends one request's, or listen stream's,
// use of e; calls after the first do nothing.
func (p *Pool) releaser(e *entry, listen bool) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			now := p.opts.Now()
			p.mu.Lock()
			e.hold(listen, -1)
			e.lastUsed = now
			if !e.held() && !e.gone && !p.closed && !p.usable(e, now) {
				p.removeLocked(e)
				p.goLocked(func() { p.closeSession(e, "retired") })
			}
			p.signalLocked()
			p.mu.Unlock()
			e.s.Touch(now)
		})
	}
}

// removeLocked takes e out of the pool; whoever calls it closes e.s.
func (p *Pool) removeLocked(e *entry) {
	ip := p.ids[e.identity]
	if e.gone || ip == nil {
		return
	}
	e.gone = true
	for i, x := range ip.entries {
		if x == e {
			ip.entries = append(ip.entries[:i], ip.entries[i+1:]...)
			break
		}
	}
	p.total--
	p.dropIfEmptyLocked(e.identity, ip)
	p.signalLocked()
}

// identityLocked returns id's pool, made if need be.
func (p *Pool) identityLocked(id string) *identityPool {
	ip := p.ids[id]
	if ip == nil {
		ip = &identityPool{}
		p.ids[id] = ip
	}
	return ip
}

// dropIfEmptyLocked forgets an identity with no sessions, so that the map
// does not grow with every caller ever seen.
func (p *Pool) dropIfEmptyLocked(id string, ip *identityPool) {
	if len(ip.entries) == 0 && ip.building == 0 {
		delete(p.ids, id)
	}
}

// signalLocked wakes every Acquire waiting for a change.
func (p *Pool) signalLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// goLocked runs f on a goroutine Close waits for. p.mu must be held and
// the pool open.
func (p *Pool) goLocked(f func()) {
	p.bg.Add(1)
	go func() {
		defer p.bg.Done()
		defer recovery.Recover(p.log, nil, "during", "warm session pool")
		f()
	}()
}

// closeSession closes a session taken out of the pool.
func (p *Pool) closeSession(e *entry, why string) error {
	err := e.s.Close()
	if err != nil {
		p.log.Debug("closing warm session", "reason", why, "err", err)
	}
	return err
}

// quiet is the session-level Peer of a pooled session by default: what a
// backend sends outside any call has no client to go to.
type quiet struct{}

func (quiet) Notify(context.Context, string, json.RawMessage) {}

func (quiet) Request(_ context.Context, method string, _ json.RawMessage) (json.RawMessage, error) {
	return nil, jsonrpc.Errorf(jsonrpc.CodeInternalError, "%s outside a call: a warm session has no client to ask", method)
}
