package session

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"

	"github.com/vmcp/vmcp/internal/backend"
	"github.com/vmcp/vmcp/internal/recovery"
	"github.com/vmcp/vmcp/internal/store"
)

// How a session's backends pass between replicas: a takeover marks the
// backends it had to start afresh, a replica letting go of a session it
// does not end keeps the HTTP backend sessions open, and a replica ending a
// session it does not hold ends the stored backend sessions directly.

// MetaBackendRestarted is the _meta key vmcp adds to the first result a
// backend serves after another replica took the session over and had to
// start that backend afresh: a stdio or legacy SSE backend (they cannot
// move between processes), an HTTP backend that had lost the session, or
// one that gives no session ID to resume. Its value lists the backend,
// e.g. ["notes"]: the state the client had built up in it is gone.
const MetaBackendRestarted = "vmcp/backendRestarted"

// markRestarted finds the backends of a taken-over session that were not
// resumed, that is whose stored session had no ID or whose ID changed, and
// makes the first result each of them serves report it. It returns their
// names.
func markRestarted(s *Session, meta *store.Metadata) []string {
	var names []string
	for _, b := range meta.Backends {
		m := s.member(b.Name)
		if m == nil {
			continue
		}
		m.mu.Lock()
		c := m.client
		if c != nil && (b.SessionID == "" || c.SessionID() != b.SessionID) {
			m.client = &restartedClient{Client: c, name: b.Name}
			names = append(names, b.Name)
		}
		m.mu.Unlock()
	}
	return names
}

// restartedClient is a backend client started afresh by a takeover. The
// first tool, prompt, resource or completion result it returns carries
// MetaBackendRestarted.
type restartedClient struct {
	backend.Client
	name     string
	reported atomic.Bool
}

func (c *restartedClient) Call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	res, err := c.Client.Call(ctx, method, params)
	if err != nil || c.reported.Load() {
		return res, err
	}
	switch method {
	case "tools/call", "prompts/get", "resources/read", "completion/complete":
	default:
		return res, nil
	}
	out, ok := withMeta(res, MetaBackendRestarted, []string{c.name})
	if ok && c.reported.CompareAndSwap(false, true) {
		return out, nil
	}
	return res, nil
}

func (c *restartedClient) Unwrap() backend.Client { return c.Client }

// withMeta returns res with key set to v in its _meta object, keeping
// whatever else the result and its _meta hold. It reports false, and
// returns res, for a result that is not an object or whose _meta is not.
func withMeta(res json.RawMessage, key string, v any) (json.RawMessage, bool) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(res, &obj); err != nil || obj == nil {
		return res, false
	}
	meta := map[string]json.RawMessage{}
	if raw, ok := obj["_meta"]; ok && !bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		if err := json.Unmarshal(raw, &meta); err != nil || meta == nil {
			return res, false
		}
	}
	var err error
	if meta[key], err = marshalRaw(v); err != nil {
		return res, false
	}
	if obj["_meta"], err = marshalRaw(meta); err != nil {
		return res, false
	}
	out, err := marshalRaw(obj)
	if err != nil {
		return res, false
	}
	return out, true
}

// marshalRaw encodes v without HTML escaping, so that the backend's bytes
// pass through as they were.
func marshalRaw(v any) (json.RawMessage, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// releaseRuntime lets go of this replica's runtime of s without ending the
// session: calls in flight finish, the backends that live only in this
// process (stdio children, legacy SSE streams: no backend session ID) are
// closed, and the HTTP backend sessions stay open for the replica that
// serves the client next.
func (s *Session) releaseRuntime() {
	// Close waits for a reload under way (it counts as in flight), so
	// the members are marked again once it is over.
	s.closeWith(func(m *member) { m.keepBackendSession() })
}

// keepBackendSession makes closing the member leave its backend session
// open, if it has one (an ID another replica can resume).
func (m *member) keepBackendSession() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.client != nil && m.client.SessionID() != "" {
		m.client = &keptClient{Client: m.client}
	}
}

// detacher is a backend client that can stop its goroutines and release
// its connections without ending the backend session.
type detacher interface {
	Detach() error
}

// keptClient is a backend client whose Close leaves the backend session
// open. It detaches the client if the client can; otherwise the client is
// left to the garbage collector, and its standalone stream, if any, ends
// when the backend session does.
type keptClient struct{ backend.Client }

func (c *keptClient) Close() error {
	inner := c.Client
	for {
		if d, ok := inner.(detacher); ok {
			return d.Detach()
		}
		u, ok := inner.(interface{ Unwrap() backend.Client })
		if !ok {
			return nil
		}
		inner = u.Unwrap()
	}
}

func (c *keptClient) Unwrap() backend.Client { return c.Client }

// endBackendSessions ends the HTTP backend sessions stored in meta, other
// than those in skip (by backend session ID), for a session deleted on
// this replica: each is resumed by its ID (no initialize) and closed, which
// sends the backend its DELETE. Failures are logged; the backends' own
// expiry covers them.
func (f *Factory) endBackendSessions(ctx context.Context, meta *store.Metadata, skip map[string]bool) {
	ids := make(map[string]string, len(meta.Backends))
	for _, b := range meta.Backends {
		ids[b.Name] = b.SessionID
	}
	var wg sync.WaitGroup
	l := f.lineup()
	for _, b := range l.Backends {
		sid := ids[b.Name]
		if sid == "" || skip[sid] {
			continue // stdio and SSE sessions live only on the replicas that hold them
		}
		wg.Go(func() {
			defer recovery.Recover(f.log, nil, "backend", b.Name, "during", "ending a backend session")
			ctx, cancel := context.WithTimeoutCause(ctx, l.InitTimeout, l.initTimeout())
			defer cancel()
			c, _, err := b.Connector.Connect(ctx, backend.ConnectOptions{
				ProtocolVersion: backend.LatestProtocolVersion,
				ClientInfo:      f.opts.ClientInfo,
				Capabilities:    meta.ClientCapabilities,
				ResumeSessionID: sid,
			})
			if err != nil {
				f.log.Debug("ending a backend session of a deleted session", "backend", b.Name, "err", err)
				return
			}
			if err := c.Close(); err != nil {
				f.log.Debug("ending a backend session of a deleted session", "backend", b.Name, "err", err)
			}
		})
	}
	wg.Wait()
}
