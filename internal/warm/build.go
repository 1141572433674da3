package warm

// Building a pooled session: one Acquire starts it, and hands it over or
// leaves it idle when done.

import (
	"context"
	"errors"
	"fmt"

	"github.com/vmcp/vmcp/internal/backend"
	"github.com/vmcp/vmcp/internal/recovery"
	"github.com/vmcp/vmcp/internal/session"
	"github.com/vmcp/vmcp/internal/store"
)

// pending is one build, handed over to the Acquire that started it unless
// that Acquire has given up. Its fields are guarded by Pool.mu.
type pending struct {
	done      chan struct{}
	e         *entry
	err       error
	abandoned bool
	listen    bool // for Listen
}

// build reserves a place for a new session of id (p.mu held; it unlocks),
// closes victim, if any, in the background, and builds the session on a
// goroutine the pool owns, so that a caller giving up does not waste it.
func (p *Pool) build(ctx context.Context, id string, victim *entry, listen bool) (*session.Session, func(), error) {
	ip := p.identityLocked(id) // the eviction may have dropped it
	ip.building++
	p.total++
	if victim != nil {
		p.counts.evicted++
		p.goLocked(func() { p.closeSession(victim, "evicted") })
	} else {
		p.counts.misses++
	}
	pd := &pending{done: make(chan struct{}), listen: listen}
	// The caller's identity stays in the context: the factory resolves
	// outgoing credentials for it.
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.goLocked(func() {
		defer cancel()
		defer context.AfterFunc(p.life, cancel)()
		p.finish(ip, id, pd, p.newSession(bctx, id))
	})
	p.mu.Unlock()
	select {
	case <-pd.done:
		if pd.err != nil {
			return nil, nil, pd.err
		}
		return pd.e.s, p.releaser(pd.e, listen), nil
	case <-ctx.Done():
	}
	p.mu.Lock()
	select {
	case <-pd.done:
		if pd.e != nil {
			pd.e.hold(listen, -1) // built meanwhile: it goes back idle
			p.signalLocked()
		}
	default:
		pd.abandoned = true
	}
	p.mu.Unlock()
	return nil, nil, fmt.Errorf("waiting for a warm backend session: %w", ctx.Err())
}

// built is the outcome of one build.
type built struct {
	s   *session.Session
	err error
}

// newSession builds and readies one session for id. A session none of
// whose backends could be initialized is closed, not pooled: it could
// serve nothing.
func (p *Pool) newSession(ctx context.Context, id string) (b built) {
	defer recovery.Recover(p.log, func(err error) { b = built{err: err} }, "during", "warm session build")
	sid, err := session.NewID()
	if err != nil {
		return built{err: err}
	}
	now := p.opts.Now()
	meta := &store.Metadata{
		ID: sid, Created: now, LastSeen: now, Identity: id,
		ProtocolVersion:    backend.LatestProtocolVersion,
		ClientCapabilities: p.opts.ClientCapabilities,
	}
	s, err := p.opts.Factory.New(ctx, meta)
	if err != nil {
		return built{err: fmt.Errorf("building a warm backend session: %w", err)}
	}
	if _, err := s.Tools(); errors.Is(err, session.ErrNoBackends) {
		s.Close()
		return built{err: fmt.Errorf("building a warm backend session: %w", err)}
	}
	// No client sends notifications/initialized: the pool stands for it,
	// so that backends may ask the request's client things mid-call.
	s.ClientInitialized()
	var peer session.Peer = quiet{}
	if p.opts.Peer != nil {
		peer = p.opts.Peer(id)
	}
	s.SetPeer(peer)
	return built{s: s}
}

// finish pools a built session and hands it to the Acquire that asked
// for it, or leaves it idle if that Acquire gave up.
func (p *Pool) finish(ip *identityPool, id string, pd *pending, b built) {
	now := p.opts.Now()
	p.mu.Lock()
	ip.building--
	switch {
	case p.closed: // Close has reset the books
		pd.err = ErrClosed
		if b.s != nil {
			defer b.s.Close()
		}
	case b.err != nil:
		p.total--
		p.counts.failed++
		pd.err = b.err
		p.dropIfEmptyLocked(id, ip)
	default:
		e := &entry{s: b.s, identity: id, created: now, lastUsed: now}
		if !pd.abandoned {
			e.hold(pd.listen, 1)
			pd.e = e
		}
		ip.entries = append(ip.entries, e)
	}
	close(pd.done)
	p.signalLocked()
	p.mu.Unlock()
	if b.err != nil {
		p.log.Warn("warm backend session not built", "err", b.err)
	}
}
