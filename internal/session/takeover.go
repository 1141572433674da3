package session

import (
	"context"
	"crypto/subtle"
	"errors"
	"strings"

	"github.com/vmcp/vmcp/internal/store"
)

// IdentityAllowed reports whether a caller with identity caller may use a
// session bound to identity bound. Identities are identity.Identity.Key()
// ("sub:" + issuer + NUL + subject) for an authenticated caller and
// "ip:<address>" for an anonymous one.
//
// A session created by an authenticated subject serves that subject only.
// An anonymous session is not bound: clients behind NAT, proxies and load
// balancers change addresses between requests, so the address only counts
// sessions per client. The replica that created a session and any replica
// that takes it over apply this same rule.
func IdentityAllowed(bound, caller string) bool {
	if !strings.HasPrefix(bound, "sub:") {
		return true
	}
	return subtle.ConstantTimeCompare([]byte(bound), []byte(caller)) == 1
}

// refused logs a request for a session bound to another identity. The
// caller gets ErrNotFound, as for a session that does not exist, and the
// session is untouched. The log names the caller, never the session ID,
// which is the owner's credential.
func (m *Manager) refused(ctx context.Context, caller string) {
	m.log.WarnContext(ctx, "request for a session bound to another identity refused", "caller", describeIdentity(caller))
}

// describeIdentity makes an identity key readable: "sub:" + iss + NUL +
// sub becomes "iss sub".
func describeIdentity(k string) string {
	if rest, ok := strings.CutPrefix(k, "sub:"); ok {
		return strings.Replace(rest, "\x00", " ", 1)
	}
	return k
}

// building is one takeover under way, shared by every request for that
// session that arrives meanwhile, so that the runtime is built once.
type building struct {
	done    chan struct{} // closed when s and err are set
	s       *Session
	err     error
	deleted bool // guarded by Manager.mu: the session was deleted meanwhile
}

// takeover serves a session this replica does not hold. It loads the
// metadata, checks the caller's identity, then rebuilds the runtime: each
// HTTP backend session is resumed by its stored ID, with no new
// initialize (a backend that no longer knows it gets a new one), while
// stdio and legacy SSE backends, which cannot move between processes,
// start afresh; the first result each of those serves says so in _meta
// (MetaBackendRestarted).
//
// Sessions taken over are not refused for capacity: they were admitted
// when they were created. They count towards this replica's limits while
// it holds them.
func (m *Manager) takeover(ctx context.Context, id, identity string) (*Session, error) {
	meta, err := m.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if !IdentityAllowed(meta.Identity, identity) {
		m.refused(ctx, identity)
		return nil, ErrNotFound
	}
	if ttl := m.limitsNow().TTL; ttl > 0 && m.opts.Now().Sub(meta.Created) >= ttl {
		// Past its lifetime, by the rule every replica applies: end it.
		m.end(ctx, id, meta, false, "ttl")
		return nil, ErrNotFound
	}
	m.mu.Lock()
	if m.closing {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	if s, ok := m.live[id]; ok { // built by a request that got here first
		m.mu.Unlock()
		s.Touch(m.opts.Now())
		return s, nil
	}
	b := m.building[id]
	if b == nil {
		b = &building{done: make(chan struct{})}
		m.building[id] = b
		m.mu.Unlock()
		// The build finishes even if this caller goes away: others may be
		// waiting for it.
		m.build(context.WithoutCancel(ctx), b, meta)
	} else {
		m.mu.Unlock()
	}
	select {
	case <-b.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if b.err != nil {
		return nil, b.err
	}
	b.s.Touch(m.opts.Now())
	return b.s, nil
}

// build rebuilds a session's runtime from its metadata and makes it live,
// unless it was deleted (or this replica began shutting down) meanwhile.
func (m *Manager) build(ctx context.Context, b *building, meta *store.Metadata) {
	s, err := m.opts.Factory.New(ctx, meta)
	var restarted []string
	dirty := false
	if err == nil {
		// The client did its handshake with the replica that made the
		// session.
		s.ClientInitialized()
		restarted = markRestarted(s, meta)
		m.watch(s)
		if backendsChanged(meta.Backends, s.Metadata().Backends) {
			// New backend sessions replaced stored ones: store their IDs
			// so that the next replica resumes these.
			perr := m.persist(ctx, s)
			if errors.Is(perr, store.ErrNotFound) {
				s.Close()
				s, err = nil, ErrNotFound
			}
			dirty = perr != nil
		}
	}
	var discard *Session
	m.mu.Lock()
	delete(m.building, meta.ID)
	switch {
	case err != nil:
	case b.deleted:
		discard, s, err = s, nil, ErrNotFound
	case m.closing:
		discard, s, err = s, nil, ErrClosed
	default:
		m.live[meta.ID] = s
		m.reserved++
		m.perIdentity[meta.Identity]++
		if dirty {
			m.dirty[meta.ID] = true
		}
	}
	b.s, b.err = s, err
	m.mu.Unlock()
	close(b.done)

	switch {
	case discard != nil && errors.Is(err, ErrClosed):
		discard.releaseRuntime()
	case discard != nil:
		discard.Close()
	case err != nil:
		m.log.WarnContext(ctx, "taking over a session failed", "err", err)
	default:
		m.catchUp(s)
		m.log.InfoContext(ctx, "took over a session from the store", "backends", len(s.roster.Load().members()), "restarted", restarted)
		m.logStart(context.Background(), s, "takeover")
	}
}

// backendsChanged reports whether the backend sessions differ in name or
// ID; stdio backends, which have no ID, never count as changed.
func backendsChanged(old, cur []store.Backend) bool {
	if len(old) != len(cur) {
		return true
	}
	for i := range old {
		if old[i].Name != cur[i].Name || old[i].SessionID != cur[i].SessionID {
			return true
		}
	}
	return false
}
