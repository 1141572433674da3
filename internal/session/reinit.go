package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/vmcp/vmcp/internal/backend"
	"github.com/vmcp/vmcp/internal/recovery"
	"github.com/vmcp/vmcp/internal/store"
)

// MetaBackendReinitialized is the _meta key vmcp adds to a result served by
// a backend session that replaced a lost one. Its value lists the backends
// concerned, e.g. ["browser"]: whatever state the client had built up in
// them (a counter, a browser tab, a transaction) is gone.
const MetaBackendReinitialized = "vmcp/backendReinitialized"

// flight is one replacement of a member's client, shared by every call
// that found that client broken (or its credential refused), so that 50
// calls failing at once cause one new backend session, not 50.
type flight struct {
	from   backend.Client // the client being replaced; nil if there was none
	done   chan struct{}  // closed when client and err are set
	client backend.Client
	err    error
	cancel context.CancelFunc
}

// replace returns a working client in place of failed. If another call has
// already replaced failed it returns the current client at once; if a
// replacement is under way it waits for that one. With probe set (failed
// was found unreachable before), failed is first pinged and kept if the
// backend answers, so that a passing network fault does not throw away the
// backend's state. With fresh set (the backend refused failed's
// credential), the new client is made with fresh credentials after a
// backoff (retryRefused). No lock is held while the backend is contacted.
func (m *member) replace(ctx context.Context, failed backend.Client, probe, fresh bool) (backend.Client, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, fmt.Errorf("backend %q: %w", m.name, ErrClosed)
	}
	if m.client != failed {
		c := m.client
		m.mu.Unlock()
		return c, nil
	}
	f := m.flight
	if f == nil {
		// The replacement outlives the call that started it, but its span
		// belongs to that call's trace.
		fctx, cancel := context.WithCancel(trace.ContextWithSpanContext(context.Background(), trace.SpanContextFromContext(ctx)))
		f = &flight{from: failed, done: make(chan struct{}), cancel: cancel}
		m.flight = f
		m.goTrackedLocked(func() { m.fly(fctx, f, probe, fresh) })
	}
	m.mu.Unlock()
	select {
	case <-f.done:
		return f.client, f.err
	case <-ctx.Done():
		return nil, fmt.Errorf("backend %q: waiting for a new backend session: %w", m.name, ctx.Err())
	}
}

// fly runs one replacement on its own goroutine, so that a caller giving up
// does not abandon the others waiting for it.
func (m *member) fly(ctx context.Context, f *flight, probe, fresh bool) {
	defer f.cancel()
	cause := reinitCause(f.from, probe, fresh)
	ctx, span := m.s.factory.tracer.Start(ctx, "backend.reinitialize", trace.WithAttributes(
		attribute.String("vmcp.backend", m.name), attribute.String("vmcp.cause", string(cause))))
	c, st, err := m.renewSafely(ctx, f.from, probe, fresh)
	endSpan(span, err)
	if c != f.from || err != nil { // not a probe that found the old client fine
		m.s.factory.hooks.reinitialized(m.name, cause, err)
	}
	swapped := false
	m.mu.Lock()
	switch {
	case err != nil:
	case c == f.from: // the probe found the old client fine
		m.suspect = nil
	case m.closed:
		err = fmt.Errorf("backend %q: %w", m.name, ErrClosed)
		defer c.Close()
		c = nil
	default:
		m.client, m.suspect, swapped = c, nil, true
	}
	m.flight = nil
	f.client, f.err = c, err
	m.mu.Unlock()
	close(f.done)
	if !swapped {
		return
	}
	m.s.factory.log.InfoContext(ctx, "backend session re-initialized; the state it held is lost", "backend", m.name)
	m.s.backendReplaced(st)
	if f.from != nil {
		m.retire(ctx, f.from)
	}
}

// reinitCause is why a replacement of from is under way.
func reinitCause(from backend.Client, probe, fresh bool) ReinitCause {
	switch {
	case from == nil:
		return ReinitNotConnected
	case fresh:
		return ReinitUnauthorized
	case probe:
		return ReinitUnreachable
	}
	return ReinitSessionLost
}

// renewSafely is renew, with a panic turned into that backend's error, so
// the calls waiting for the flight get an answer.
func (m *member) renewSafely(ctx context.Context, old backend.Client, probe, fresh bool) (c backend.Client, st store.Backend, err error) {
	defer recovery.Recover(m.s.factory.log, func(perr error) {
		c, st, err = nil, store.Backend{}, fmt.Errorf("backend %q: re-initializing: %w", m.name, perr)
	}, "backend", m.name, "during", "re-initialize")
	return m.renew(ctx, old, probe, fresh)
}

// renew pings old when asked to and keeps it if the backend still knows
// its session; otherwise it connects a new client, if the breaker allows,
// with fresh credentials at once when asked to, or after the backend
// refused the current ones.
func (m *member) renew(ctx context.Context, old backend.Client, probe, fresh bool) (backend.Client, store.Backend, error) {
	f, l := m.s.factory, m.s.factory.lineup()
	if probe && old != nil {
		pctx, cancel := context.WithTimeoutCause(ctx, l.InitTimeout, l.initTimeout())
		_, err := old.Call(pctx, "ping", nil)
		cancel()
		m.breaker.record(err, false)
		if outcome(err, false) == answered && !errors.Is(err, backend.ErrSessionNotFound) {
			return old, store.Backend{}, nil
		}
	}
	if !m.breaker.Allow() {
		return nil, store.Backend{}, circuitOpen(m.name, m.breaker)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, l.InitTimeout, l.initTimeout())
	defer cancel()
	src, err := m.credential(ctx)
	if err != nil {
		return nil, store.Backend{}, err
	}
	opts := f.connectOptions(m.s.clientCapabilities(), "", &relay{s: m.s, backend: m.name})
	opts.Token = src
	var c backend.Client
	var res *backend.InitializeResult
	connect := func() error {
		c, res, err = m.connector.Connect(ctx, opts)
		m.breaker.record(err, true)
		return err
	}
	if !fresh || src == nil {
		err = connect()
	}
	if src != nil && (fresh || errors.Is(err, backend.ErrUnauthorized)) {
		err = f.retryRefused(ctx, m.name, src, m.breaker, connect)
	}
	if err != nil {
		return nil, store.Backend{}, err
	}
	return c, store.Backend{Name: m.name, SessionID: c.SessionID(), Capabilities: res.Capabilities, ProtocolVersion: res.ProtocolVersion}, nil
}

// connectOptions are what every connect of a backend for one session
// sends, at session start and on re-initialize alike.
func (f *Factory) connectOptions(clientCaps json.RawMessage, resumeID string, h backend.Handler) backend.ConnectOptions {
	return backend.ConnectOptions{
		ProtocolVersion: backend.LatestProtocolVersion,
		ClientInfo:      f.opts.ClientInfo,
		Capabilities:    clientCaps,
		ResumeSessionID: resumeID,
		Handler:         h,
	}
}

// OnBackendChange registers f to run each time one of the session's
// backend sessions has been replaced by a new one, once Metadata reflects
// the new backend session ID; the Manager uses it to write the metadata to
// its Store. f runs on the goroutine that replaced the backend session,
// with no lock held, and must not block for long. A later call replaces f;
// nil removes it.
func (s *Session) OnBackendChange(f func()) {
	if f == nil {
		s.onBackendChange.Store(nil)
		return
	}
	s.onBackendChange.Store(&f)
}

// backendReplaced records a backend's new session in the metadata and
// tells whoever registered with OnBackendChange.
func (s *Session) backendReplaced(st store.Backend) {
	s.mu.Lock()
	if s.meta != nil {
		bs := make([]store.Backend, 0, len(s.meta.Backends)+1)
		found := false
		for _, b := range s.meta.Backends {
			if b.Name == st.Name {
				b, found = st, true
			}
			bs = append(bs, b)
		}
		if !found {
			bs = append(bs, st)
		}
		s.meta.Backends = bs
	}
	s.mu.Unlock()
	if f := s.onBackendChange.Load(); f != nil {
		(*f)()
	}
}

// clientCapabilities returns what the client declared in initialize.
func (s *Session) clientCapabilities() json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.meta == nil {
		return nil
	}
	return s.meta.ClientCapabilities
}
