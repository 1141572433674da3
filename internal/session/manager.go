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

	"github.com/vmcp/vmcp/internal/store"
)

// Admission errors. Both are answered with 503 and Retry-After; neither
// reveals counts.
var (
	ErrAtCapacity         = errors.New("maximum concurrent sessions exceeded")
	ErrIdentityAtCapacity = errors.New("maximum concurrent sessions for this identity exceeded")
)

// ErrNotFound is returned for a session ID that is unknown, deleted or
// expired.
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
}

// Manager creates, finds, expires and terminates sessions. Metadata lives
// in the Store; the live runtime lives here, in process. Safe for
// concurrent use.
type Manager struct {
	opts ManagerOptions
	log  *slog.Logger

	mu          sync.Mutex
	live        map[string]*Session
	reserved    int            // admitted sessions, live or being created
	perIdentity map[string]int // admitted sessions per identity
	identity    map[string]string
	closing     bool
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
		opts:        opts,
		log:         opts.Logger,
		live:        make(map[string]*Session),
		perIdentity: make(map[string]int),
		identity:    make(map[string]string),
	}
}

// CreateRequest is what a client's initialize tells the manager.
type CreateRequest struct {
	Identity           string
	ProtocolVersion    string
	ClientInfo         json.RawMessage
	ClientCapabilities json.RawMessage
}

// Create admits, builds and stores a new session. Admission is checked
// before any backend is contacted.
func (m *Manager) Create(ctx context.Context, req CreateRequest) (*Session, error) {
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
	s, err := m.opts.Factory.New(ctx, meta)
	if err != nil {
		return nil, err
	}
	if err := m.opts.Store.Create(ctx, s.Metadata()); err != nil {
		s.Close()
		return nil, fmt.Errorf("storing session: %w", err)
	}
	m.mu.Lock()
	if m.closing {
		m.mu.Unlock()
		s.Close()
		m.opts.Store.Delete(context.WithoutCancel(ctx), id)
		return nil, ErrClosed
	}
	m.live[id] = s
	m.identity[id] = req.Identity
	admitted = true
	m.mu.Unlock()
	return s, nil
}

func (m *Manager) admit(identity string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closing {
		return ErrClosed
	}
	if m.opts.MaxSessions > 0 && m.reserved >= m.opts.MaxSessions {
		return ErrAtCapacity
	}
	if m.opts.MaxPerIdentity > 0 && m.perIdentity[identity] >= m.opts.MaxPerIdentity {
		return ErrIdentityAtCapacity
	}
	m.reserved++
	m.perIdentity[identity]++
	return nil
}

func (m *Manager) unadmit(identity string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reserved--
	if m.perIdentity[identity]--; m.perIdentity[identity] <= 0 {
		delete(m.perIdentity, identity)
	}
}

// Get returns the live session with that ID and records activity.
func (m *Manager) Get(ctx context.Context, id string) (*Session, error) {
	m.mu.Lock()
	s, ok := m.live[id]
	m.mu.Unlock()
	if !ok {
		return nil, ErrNotFound
	}
	s.Touch(m.opts.Now())
	return s, nil
}

// Delete terminates a session: it is removed from the store at once, so it
// answers not-found everywhere, then closed once its calls finish.
func (m *Manager) Delete(ctx context.Context, id string) error {
	s := m.detach(id)
	if s == nil {
		return ErrNotFound
	}
	if err := m.opts.Store.Delete(context.WithoutCancel(ctx), id); err != nil {
		m.log.Warn("deleting session metadata", "err", err)
	}
	return s.Close()
}

// detach removes a session from the live set and releases its admission.
func (m *Manager) detach(id string) *Session {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.live[id]
	if !ok {
		return nil
	}
	delete(m.live, id)
	identity := m.identity[id]
	delete(m.identity, id)
	m.reserved--
	if m.perIdentity[identity]--; m.perIdentity[identity] <= 0 {
		delete(m.perIdentity, identity)
	}
	return s
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
			m.Sweep(ctx)
		}
	}
}

// Sweep closes every session past its TTL or idle timeout and returns how
// many it closed.
func (m *Manager) Sweep(ctx context.Context) int {
	now := m.opts.Now()
	var expired []string
	m.mu.Lock()
	for id, s := range m.live {
		if (m.opts.TTL > 0 && now.Sub(s.Created()) >= m.opts.TTL) ||
			(m.opts.IdleTimeout > 0 && now.Sub(s.LastSeen()) >= m.opts.IdleTimeout) {
			expired = append(expired, id)
		}
	}
	m.mu.Unlock()
	n := 0
	for _, id := range expired {
		if err := m.Delete(ctx, id); err == nil || !errors.Is(err, ErrNotFound) {
			n++
		}
	}
	if n > 0 {
		m.log.Info("expired sessions", "count", n)
	}
	return n
}

// Shutdown stops admitting sessions and closes every live one, letting
// calls in flight finish. It returns when all are closed or ctx ends.
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
			wg.Go(func() { m.Delete(context.WithoutCancel(ctx), id) })
		}
		wg.Wait()
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("shutdown: sessions still closing: %w", ctx.Err())
	}
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
