package session

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/vmcp/vmcp/internal/jsonrpc"
)

// Peer is the client end of a session as the session sees it: where
// server-to-client messages go. The front end implements it, once per
// session (its standalone stream) and once per call (that call's response
// stream). Implementations must be safe for concurrent use.
type Peer interface {
	// Notify delivers a notification. It must not block for long.
	Notify(ctx context.Context, method string, params json.RawMessage)
	// Request sends a request to the client and waits for its answer or
	// for ctx to end.
	Request(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error)
}

type peerKey struct{}

// WithPeer returns a context whose calls send the messages that belong to
// them (progress, logging, sampling…) to p.
func WithPeer(ctx context.Context, p Peer) context.Context {
	return context.WithValue(ctx, peerKey{}, p)
}

func peerFrom(ctx context.Context) Peer {
	p, _ := ctx.Value(peerKey{}).(Peer)
	return p
}

// SetPeer sets the session-level Peer, which receives messages that belong
// to no call (list_changed, resource updates, and anything sent while no
// call of the session is running). It returns the Peer in effect: an
// earlier one wins, so concurrent callers agree.
func (s *Session) SetPeer(p Peer) Peer {
	if s.peer.CompareAndSwap(nil, &p) {
		s.flushHeld() // what backends sent before the client had a stream
		return p
	}
	return *s.peer.Load()
}

// Peer returns the session-level Peer, or nil.
func (s *Session) Peer() Peer {
	if p := s.peer.Load(); p != nil {
		return *p
	}
	return nil
}

// clientCaps are the client capabilities that gate server-to-client
// requests.
type clientCaps struct{ sampling, elicitation, roots, tasks bool }

func parseClientCaps(raw json.RawMessage) clientCaps {
	var c map[string]json.RawMessage
	_ = json.Unmarshal(raw, &c)
	has := func(k string) bool { v, ok := c[k]; return ok && string(v) != "null" }
	return clientCaps{sampling: has("sampling"), elicitation: has("elicitation"), roots: has("roots"), tasks: has("tasks")}
}

// relay receives what one backend sends to vmcp and passes it on to the
// client. A relay made for a call carries that call's Peer; the one made at
// connect time has none and uses the session's.
type relay struct {
	s       *Session
	backend string
	peer    Peer
}

func (r *relay) target(method string, params json.RawMessage) Peer {
	if method == "notifications/progress" {
		if p := r.s.progressPeer(params); p != nil {
			return p
		}
	}
	if r.peer != nil {
		return r.peer
	}
	if p := r.s.busyPeer(); p != nil && method != "notifications/resources/updated" {
		return p
	}
	return r.s.Peer()
}

// TryNotifier is implemented by a Peer whose stream can end (a call's):
// TryNotify reports false, having sent nothing, once it has.
type TryNotifier interface {
	TryNotify(ctx context.Context, method string, params json.RawMessage) bool
}

// send delivers a notification to its target, and reports false if there
// is none yet. Which call a backend's message belongs to is a guess (it
// came during the call, or rides a call's stream because the client may
// have opened no other), and the call may end while it is on its way: a
// call stream that ended first hands it to the session's stream rather
// than losing it. Progress is the exception: it must not outlive its call.
func (r *relay) send(ctx context.Context, method string, params json.RawMessage) bool {
	p := r.target(method, params)
	if p == nil {
		return false
	}
	t, ok := p.(TryNotifier)
	if !ok {
		p.Notify(ctx, method, params)
		return true
	}
	if !t.TryNotify(ctx, method, params) && method != "notifications/progress" {
		if sp := r.s.Peer(); sp != nil && sp != p {
			sp.Notify(ctx, method, params)
		}
	}
	return true
}

// Notify implements backend.Handler.
func (r *relay) Notify(ctx context.Context, method string, params json.RawMessage) {
	switch method {
	case "notifications/tools/list_changed", "notifications/resources/list_changed", "notifications/prompts/list_changed":
		r.s.refresh(r.backend, method)
		return
	case "notifications/cancelled":
		return // the backend connector handles cancellation of its own requests
	}
	r.s.notify(ctx, r, method, params)
}

// Request implements backend.Handler: a backend asks the client for
// something during a call (sampling, elicitation, roots) or pings vmcp.
func (r *relay) Request(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	if method == "ping" {
		return json.RawMessage(`{}`), nil
	}
	// A backend may ask during its handshake, before the session is built.
	if err := r.s.awaitReady(ctx); err != nil {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInternalError, "%s: %v", method, err)
	}
	caps := r.s.clientCap
	switch method {
	case "sampling/createMessage":
		if !caps.sampling {
			return nil, jsonrpc.Errorf(jsonrpc.CodeMethodNotFound, "client does not support sampling")
		}
	case "elicitation/create":
		if !caps.elicitation {
			return nil, jsonrpc.Errorf(jsonrpc.CodeMethodNotFound, "client does not support elicitation")
		}
	case "roots/list":
		if !caps.roots {
			return nil, jsonrpc.Errorf(jsonrpc.CodeMethodNotFound, "client does not support roots")
		}
	case "tasks/get", "tasks/result", "tasks/list", "tasks/cancel":
		// The backend polls a task it made the client create (a
		// task-augmented sampling or elicitation request).
		if !caps.tasks {
			return nil, jsonrpc.Errorf(jsonrpc.CodeMethodNotFound, "client does not support tasks")
		}
	default:
		return nil, jsonrpc.Errorf(jsonrpc.CodeMethodNotFound, "method not found: %s", method)
	}
	if r.peer == nil {
		// Not sent during one of the client's calls: it may come before
		// the client can be asked anything, as server-filesystem's
		// roots/list does right after its handshake.
		if err := r.s.awaitClient(ctx, method); err != nil {
			return nil, err
		}
		return r.s.askClient(ctx, method, params)
	}
	return r.peer.Request(ctx, method, params)
}

// progressToken returns the raw progress token in a request's params, if
// any. The cheap byte check keeps the hot path free of a second parse.
func progressToken(params json.RawMessage) (string, bool) {
	if !bytes.Contains(params, []byte(`"progressToken"`)) {
		return "", false
	}
	var p struct {
		Meta struct {
			Token json.RawMessage `json:"progressToken"`
		} `json:"_meta"`
	}
	if json.Unmarshal(params, &p) != nil || len(p.Meta.Token) == 0 {
		return "", false
	}
	return string(p.Meta.Token), true
}

// progressPeer finds the Peer of the call that registered the token in a
// notifications/progress.
func (s *Session) progressPeer(params json.RawMessage) Peer {
	var p struct {
		Token json.RawMessage `json:"progressToken"`
	}
	if json.Unmarshal(params, &p) != nil || len(p.Token) == 0 {
		return nil
	}
	s.pmu.Lock()
	defer s.pmu.Unlock()
	return s.progress[string(p.Token)]
}

// trackCall records a call's Peer (for progress routing and for messages a
// shared-connection backend sends during it) and returns the func that
// forgets it.
func (s *Session) trackCall(p Peer, params json.RawMessage) func() {
	token, hasToken := progressToken(params)
	s.pmu.Lock()
	if hasToken {
		if s.progress == nil {
			s.progress = make(map[string]Peer)
		}
		s.progress[token] = p
	}
	s.busy = append(s.busy, p)
	s.pmu.Unlock()
	s.callStarted()
	return func() {
		s.callEnded()
		s.pmu.Lock()
		defer s.pmu.Unlock()
		if hasToken && s.progress[token] == p {
			delete(s.progress, token)
		}
		for i, q := range s.busy {
			if q == p {
				s.busy = append(s.busy[:i], s.busy[i+1:]...)
				break
			}
		}
	}
}

// busyPeer is the Peer of the most recent call still running, used for
// requests from backends whose connection is shared by all of a session's
// calls (stdio, legacy SSE) and so carries no call identity.
func (s *Session) busyPeer() Peer {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	if n := len(s.busy); n > 0 {
		return s.busy[n-1]
	}
	return nil
}
