package session

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vmcp/vmcp/internal/recovery"
	"github.com/vmcp/vmcp/internal/store"
)

// Admission errors. Both are answered with 503 and Retry-After; neither
// reveals counts.
var (
	ErrAtCapacity         = errors.New("maximum concurrent sessions exceeded")
	ErrIdentityAtCapacity = errors.New("maximum concurrent sessions for this identity exceeded")
)

// ErrRateLimited is wrapped by Create's error for a caller that starts
// sessions faster than its initialize rate allows; the error is a
// *RateLimitedError that says when to retry. Answered with 429.
var ErrRateLimited = errors.New("initialize rate limit exceeded")

// RateLimitedError is Create's error over the initialize rate.
type RateLimitedError struct{ RetryAfter time.Duration }

func (e *RateLimitedError) Error() string { return ErrRateLimited.Error() }

// Unwrap makes errors.Is(err, ErrRateLimited) hold.
func (e *RateLimitedError) Unwrap() error { return ErrRateLimited }

// InitializeLimiter decides whether a caller may start another session
// now; if not, it says how long to wait. Safe for concurrent use.
type InitializeLimiter interface {
	AllowInitialize(ctx context.Context, identity string) (retryAfter time.Duration, ok bool)
}

// ErrNotFound is returned for a session ID that is unknown, deleted or
// expired, or that belongs to another identity.
var ErrNotFound = store.ErrNotFound

// ManagerOptions configure a Manager. Store and Factory are required.
type ManagerOptions struct {
	Store          store.Store
	Factory        *Factory
	TTL            time.Duration // 0: no absolute limit
	IdleTimeout    time.Duration // 0: no idle limit
	MaxSessions    int           // 0: unlimited
	MaxPerIdentity int           // 0: unlimited
	SweepInterval  time.Duration // default 1s
	Now            func() time.Time
	Logger         *slog.Logger
	// Shared says that other replicas use the same Store (store.type
	// redis). The Manager then lets go of a session for its own reasons
	// (shutdown, idle eviction while the session is used elsewhere) by
	// releasing its runtime rather than ending the session: the backend
	// sessions and the metadata stay for the replica that serves the client
	// next. Sessions this replica does not hold are taken over whether or
	// not Shared is set.
	Shared bool
	// InitLimiter, if set, limits each identity's initialize requests
	// before admission: a refused one costs no session slot.
	InitLimiter InitializeLimiter
}

// Manager creates, finds, expires and terminates sessions. Metadata lives
// in the Store; the live runtime lives here, in process. A session whose
// runtime this replica does not hold is taken over from its metadata on
// first use (takeover.go). Safe for concurrent use.
type Manager struct {
	opts   ManagerOptions
	log    *slog.Logger
	health storeHealth

	mu          sync.Mutex
	limits      Limits // from opts; a reload may change them (reconfigure.go)
	live        map[string]*Session
	reserved    int                  // admitted sessions, live or being created
	perIdentity map[string]int       // admitted sessions per identity (a live one's is Session.Identity)
	building    map[string]*building // takeovers under way, by session ID
	deleting    map[string]int       // deletions this replica is making, by session ID
	dirty       map[string]bool      // sessions whose metadata write failed; retried on use
	closing     bool
	bgClosed    bool           // no more background work may start
	bg          sync.WaitGroup // background closes and metadata writes

	persistMu sync.Mutex // serialises metadata writes (storecheck.go)
}

// NewManager returns a Manager. Call Run to expire sessions in the
// background and Shutdown to close them all.
func NewManager(opts ManagerOptions) *Manager {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{
		opts: opts,
		limits: Limits{TTL: opts.TTL, IdleTimeout: opts.IdleTimeout, MaxSessions: opts.MaxSessions,
			MaxPerIdentity: opts.MaxPerIdentity, InitLimiter: opts.InitLimiter},
		log:         opts.Logger,
		health:      storeHealth{log: opts.Logger},
		live:        make(map[string]*Session),
		perIdentity: make(map[string]int),
		building:    make(map[string]*building),
		deleting:    make(map[string]int),
		dirty:       make(map[string]bool),
	}
}

// CreateRequest is what a client's initialize tells the manager.
type CreateRequest struct {
	Identity           string
	ProtocolVersion    string
	ClientInfo         json.RawMessage
	ClientCapabilities json.RawMessage
}

// Create admits, builds and stores a new session. Admission is checked, and
// the session ID claimed in the Store, before any backend is contacted: if
// the Store is down, Create fails at once with an error wrapping
// store.ErrUnavailable.
func (m *Manager) Create(ctx context.Context, req CreateRequest) (*Session, error) {
	f := m.opts.Factory
	ctx, span := f.tracer.Start(ctx, "initialize")
	s, err := m.create(ctx, req)
	endSpan(span, err)
	if err != nil {
		f.hooks.rejected(ctx, req.Identity, err)
	}
	return s, err
}

func (m *Manager) create(ctx context.Context, req CreateRequest) (*Session, error) {
	if l := m.limitsNow().InitLimiter; l != nil {
		if wait, ok := l.AllowInitialize(ctx, req.Identity); !ok {
			return nil, &RateLimitedError{RetryAfter: wait}
		}
	}
	if err := m.admit(req.Identity); err != nil {
		return nil, err
	}
	admitted := false
	defer func() {
		if !admitted {
			m.unadmit(req.Identity)
		}
	}()
	id, err := NewID()
	if err != nil {
		return nil, err
	}
	now := m.opts.Now()
	meta := &store.Metadata{
		ID: id, Created: now, LastSeen: now, Identity: req.Identity,
		ProtocolVersion: req.ProtocolVersion, ClientInfo: req.ClientInfo, ClientCapabilities: req.ClientCapabilities,
	}
	if err := m.opts.Store.Create(ctx, meta); err != nil {
		m.observe(ctx, err)
		return nil, fmt.Errorf("storing session: %w", err)
	}
	m.observe(ctx, nil)
	s, err := m.opts.Factory.New(ctx, meta)
	if err != nil {
		m.unstore(ctx, id)
		return nil, err
	}
	// The backends' session IDs are known now: store them, so that any
	// replica can resume them. Watch first: a background retry
	// (retry.go) may connect a backend at any moment, and its backend
	// session must be stored too; persist orders the two writes.
	m.watch(s)
	if err := m.persist(ctx, s); err != nil {
		s.Close()
		m.unstore(ctx, id)
		return nil, fmt.Errorf("storing session: %w", err)
	}
	m.mu.Lock()
	if m.closing {
		m.mu.Unlock()
		s.Close()
		m.unstore(ctx, id)
		return nil, ErrClosed
	}
	m.live[id] = s
	admitted = true
	m.mu.Unlock()
	m.catchUp(s)
	m.logStart(ctx, s, "initialize")
	return s, nil
}

// unstore removes the metadata of a session that never reached a client.
func (m *Manager) unstore(ctx context.Context, id string) {
	if _, err := m.opts.Store.Delete(context.WithoutCancel(ctx), id); err != nil {
		m.log.DebugContext(ctx, "removing metadata of a failed session", "err", err)
	}
}

func (m *Manager) admit(identity string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closing {
		return ErrClosed
	}
	if m.limits.MaxSessions > 0 && m.reserved >= m.limits.MaxSessions {
		return ErrAtCapacity
	}
	if m.limits.MaxPerIdentity > 0 && m.perIdentity[identity] >= m.limits.MaxPerIdentity {
		return ErrIdentityAtCapacity
	}
	m.reserved++
	m.perIdentity[identity]++
	return nil
}

func (m *Manager) unadmit(identity string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.unadmitLocked(identity)
}

func (m *Manager) unadmitLocked(identity string) {
	m.reserved--
	if m.perIdentity[identity]--; m.perIdentity[identity] <= 0 {
		delete(m.perIdentity, identity)
	}
}

// Get is GetFor with an anonymous caller: it finds sessions that are not
// bound to an authenticated subject.
func (m *Manager) Get(ctx context.Context, id string) (*Session, error) {
	return m.GetFor(ctx, id, "")
}

// GetFor returns the session with that ID for a caller with the given
// identity, and records activity. A session this replica does not hold is
// taken over from the Store. It returns ErrNotFound when the session is
// unknown, deleted, expired or bound to another identity (see
// IdentityAllowed), and an error wrapping store.ErrUnavailable when only
// the Store could tell and it is down. A session held here keeps serving
// while the Store is down.
func (m *Manager) GetFor(ctx context.Context, id, identity string) (*Session, error) {
	m.mu.Lock()
	s, ok := m.live[id]
	m.mu.Unlock()
	if !ok {
		return m.takeover(ctx, id, identity)
	}
	if !IdentityAllowed(s.Identity(), identity) {
		m.refused(ctx, identity)
		return nil, ErrNotFound
	}
	if err := m.checkHeld(ctx, s); err != nil {
		return nil, err
	}
	s.Touch(m.opts.Now())
	return s, nil
}

// Delete is DeleteFor with an anonymous caller.
func (m *Manager) Delete(ctx context.Context, id string) error {
	return m.DeleteFor(ctx, id, "")
}

// DeleteFor terminates a session on behalf of a caller with the given
// identity, whichever replica holds it. The metadata is removed from the
// Store first, so that every replica answers ErrNotFound at once, and the
// replicas holding a runtime are told to let go of it (Deleted). This
// replica then ends the backend sessions: through its own runtime if it
// holds one, and by resuming each other stored HTTP backend session just
// to end it. So the backends see one DELETE per backend session, whichever
// replicas held the session.
//
// It returns ErrNotFound as GetFor does. If the Store is down it returns an
// error wrapping store.ErrUnavailable and the session carries on, so that a
// retry can end it everywhere.
func (m *Manager) DeleteFor(ctx context.Context, id, identity string) error {
	m.mu.Lock()
	s, held := m.live[id]
	m.mu.Unlock()
	var bound string
	if held {
		bound = s.Identity()
	}
	meta, err := m.load(ctx, id)
	switch {
	case err == nil:
		bound = meta.Identity
	case errors.Is(err, ErrNotFound) && held:
		// The Store lost it (an emptied Redis): end what this replica holds.
	default:
		return err
	}
	if !IdentityAllowed(bound, identity) {
		m.refused(ctx, identity)
		return ErrNotFound
	}
	return m.end(ctx, id, meta, true, EndDelete)
}

// end ends a session everywhere: it deletes the metadata (which announces
// the deletion to the other replicas), closes this replica's runtime and
// with it its backend sessions, then ends the other backend sessions meta
// lists, if given. With strict set, a Store failure returns an error and
// leaves the session alone; otherwise the session is closed here regardless
// (its lifetime is over by a rule every replica applies alike).
func (m *Manager) end(ctx context.Context, id string, meta *store.Metadata, strict bool, reason EndReason) error {
	ctx = context.WithoutCancel(ctx)
	m.mu.Lock()
	m.deleting[id]++ // our own deletion announcement must not reach the runtime first
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		if m.deleting[id]--; m.deleting[id] <= 0 {
			delete(m.deleting, id)
		}
		m.mu.Unlock()
	}()
	// Unless the Store says another replica deleted it first (then that
	// one reports the end and ends the backend sessions), this replica
	// is the one that ends it.
	existed, err := m.opts.Store.Delete(ctx, id)
	if err != nil {
		m.observe(ctx, err)
		if strict {
			return fmt.Errorf("deleting session: %w", err)
		}
		m.log.DebugContext(ctx, "deleting session metadata", "err", err)
		existed = true
	} else {
		m.observe(ctx, nil)
	}
	m.mu.Lock()
	if b := m.building[id]; b != nil {
		b.deleted = true
	}
	s := m.detachLocked(id)
	m.mu.Unlock()
	err = nil
	closed := map[string]bool{}
	if s != nil {
		for _, b := range s.BackendSessions() {
			closed[b.SessionID] = true
		}
		err = s.Close()
		m.logEnd(ctx, s, reason, "")
	} else if meta != nil && existed {
		// Held elsewhere, or nowhere.
		m.opts.Factory.hooks.storedEnded(ctx, id, meta.Identity, reason)
	}
	if meta != nil && (existed || s != nil) {
		m.opts.Factory.endBackendSessions(ctx, meta, closed)
	}
	return err
}

// Deleted tells the manager that session id was deleted from the shared
// Store, by any replica (store.Redis.Subscribe delivers these). If this
// replica holds the session's runtime it lets go of it in the background:
// calls in flight finish, its stdio children are closed, and the HTTP
// backend sessions are left to the replica that handled the DELETE. The
// session answers ErrNotFound from now on. Deletions this replica makes
// itself are ignored: it ends those on its own. Deleted does not block.
func (m *Manager) Deleted(id string) {
	m.mu.Lock()
	if m.deleting[id] > 0 {
		m.mu.Unlock()
		return
	}
	if b := m.building[id]; b != nil {
		b.deleted = true
	}
	s := m.detachLocked(id)
	m.mu.Unlock()
	if s != nil {
		m.goBackground(func() {
			s.releaseRuntime()
			m.logEnd(context.Background(), s, EndEvicted, "deleted on another replica")
		})
	}
}

// detachLocked removes a session from the live set and releases its
// admission. m.mu must be held.
func (m *Manager) detachLocked(id string) *Session {
	s, ok := m.live[id]
	if !ok {
		return nil
	}
	delete(m.live, id)
	delete(m.dirty, id)
	m.unadmitLocked(s.Identity())
	return s
}

func (m *Manager) detach(id string) *Session {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.detachLocked(id)
}

// Len reports the number of live sessions.
func (m *Manager) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.live)
}

// Run expires sessions every SweepInterval until ctx is done. The caller
// owns the goroutine that runs it.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(m.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.sweepSafely(ctx)
		}
	}
}

// sweepSafely is one Sweep; a panic in it (closing some session) is logged
// and costs that sweep, not the expiry of every later session.
func (m *Manager) sweepSafely(ctx context.Context) {
	defer recovery.Recover(m.log, nil, "during", "session expiry")
	m.Sweep(ctx)
}

// Sweep closes every session past its TTL or idle timeout and returns how
// many it closed. A session past its TTL is ended everywhere. An idle one
// is ended too, unless the Store is Shared and still has it: it is then in
// use on another replica (each use slides its Store TTL), and this replica
// only releases its copy.
func (m *Manager) Sweep(ctx context.Context) int {
	now := m.opts.Now()
	var expired, idle []string
	m.mu.Lock()
	ttl, idleTimeout := m.limits.TTL, m.limits.IdleTimeout
	for id, s := range m.live {
		switch {
		case ttl > 0 && now.Sub(s.Created()) >= ttl:
			expired = append(expired, id)
		case idleTimeout > 0 && now.Sub(s.LastSeen()) >= idleTimeout:
			idle = append(idle, id)
		}
	}
	m.mu.Unlock()
	for _, id := range expired {
		m.end(ctx, id, nil, false, EndTTL)
	}
	released := 0
	for _, id := range idle {
		if m.opts.Shared && m.usedElsewhere(ctx, id) {
			if s := m.detach(id); s != nil {
				s.releaseRuntime()
				m.logEnd(ctx, s, EndEvicted, "idle here, in use on another replica")
				released++
			}
			continue
		}
		m.end(ctx, id, nil, false, EndIdle)
	}
	n := len(expired) + len(idle) - released
	if n > 0 {
		m.log.Info("expired sessions", "count", n)
	}
	if released > 0 {
		m.log.Debug("released idle copies of sessions in use elsewhere", "count", released)
	}
	return n + released
}

// usedElsewhere reports whether the Store still has an idle session, or
// cannot tell: another replica has used it within its Store TTL.
func (m *Manager) usedElsewhere(ctx context.Context, id string) bool {
	_, err := m.opts.Store.Get(ctx, id)
	m.observe(ctx, err)
	return !errors.Is(err, store.ErrNotFound)
}

// Shutdown stops admitting sessions and lets go of every live one, letting
// calls in flight finish. Without a Shared store that ends each session and
// its backend sessions; with one it releases each runtime, so that the
// sessions carry on on the other replicas. It returns when all are done or
// ctx ends.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.closing = true
	ids := make([]string, 0, len(m.live))
	for id := range m.live {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for _, id := range ids {
			wg.Go(func() {
				defer recovery.Recover(m.log, nil, "during", "shutdown")
				if !m.opts.Shared {
					m.end(ctx, id, nil, false, EndShutdown)
				} else if s := m.detach(id); s != nil {
					s.releaseRuntime()
					m.logEnd(ctx, s, EndEvicted, "shutdown, left to the other replicas")
				}
			})
		}
		wg.Wait()
		m.mu.Lock()
		m.bgClosed = true
		m.mu.Unlock()
		m.bg.Wait()
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("shutdown: sessions still closing: %w", ctx.Err())
	}
}

// goBackground runs f on a goroutine Shutdown waits for; once Shutdown has
// finished waiting, f runs on the caller's goroutine instead.
func (m *Manager) goBackground(f func()) {
	m.mu.Lock()
	if m.bgClosed {
		m.mu.Unlock()
		f()
		return
	}
	m.bg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.bg.Done()
		defer recovery.Recover(m.log, nil, "during", "session background work")
		f()
	}()
}

// NewID mints a session ID from 256 bits of crypto/rand, as URL-safe
// base64: visible ASCII only, as Streamable HTTP requires.
func NewID() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("minting session id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
