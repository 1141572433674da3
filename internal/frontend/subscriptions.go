package frontend

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/vmcp/vmcp/internal/jsonrpc"
	"github.com/vmcp/vmcp/internal/session"
)

// listenHub fans what backends send outside any call (list changes,
// resource updates) out to the subscriptions/listen streams of the
// identity whose pooled sessions received it. Safe for concurrent use.
type listenHub struct {
	mu   sync.Mutex
	subs map[string]map[*listener]struct{} // identity -> its open streams
}

func newListenHub() *listenHub { return &listenHub{subs: make(map[string]map[*listener]struct{})} }

// listener is one open subscriptions/listen stream.
type listener struct {
	id     json.RawMessage // the listen request's id: the subscriptionId
	filter listenFilter
	ch     chan []byte // notifications, tagged; full means dropped
}

// listenFilter is what a stream asked for.
type listenFilter struct {
	ToolsListChanged      bool     `json:"toolsListChanged,omitempty"`
	PromptsListChanged    bool     `json:"promptsListChanged,omitempty"`
	ResourcesListChanged  bool     `json:"resourcesListChanged,omitempty"`
	ResourceSubscriptions []string `json:"resourceSubscriptions,omitempty"`
}

func (f *listenFilter) wants(method string, params json.RawMessage) bool {
	switch method {
	case "notifications/tools/list_changed":
		return f.ToolsListChanged
	case "notifications/prompts/list_changed":
		return f.PromptsListChanged
	case "notifications/resources/list_changed":
		return f.ResourcesListChanged
	case "notifications/resources/updated":
		var p struct {
			URI string `json:"uri"`
		}
		json.Unmarshal(params, &p)
		for _, u := range f.ResourceSubscriptions {
			if u == p.URI {
				return true
			}
		}
	}
	return false
}

// listenBuffer bounds the notifications waiting on one stream.
const listenBuffer = 64

func (h *listenHub) add(identity string, l *listener) func() {
	h.mu.Lock()
	m := h.subs[identity]
	if m == nil {
		m = make(map[*listener]struct{})
		h.subs[identity] = m
	}
	m[l] = struct{}{}
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		delete(h.subs[identity], l)
		if len(h.subs[identity]) == 0 {
			delete(h.subs, identity)
		}
		h.mu.Unlock()
	}
}

// publish delivers a notification to identity's streams that asked for
// it, tagged with each stream's subscriptionId. It never blocks: a stream
// whose client does not keep up misses notifications.
func (h *listenHub) publish(identity, method string, params json.RawMessage) {
	h.mu.Lock()
	var targets []*listener
	for l := range h.subs[identity] {
		if l.filter.wants(method, params) {
			targets = append(targets, l)
		}
	}
	h.mu.Unlock()
	for _, l := range targets {
		select {
		case l.ch <- jsonrpc.AppendRequest(nil, nil, method, tagSubscription(params, l.id)):
		default:
		}
	}
}

// tagSubscription returns params with _meta.subscriptionId set to id.
func tagSubscription(params, id json.RawMessage) json.RawMessage {
	var p map[string]json.RawMessage
	if json.Unmarshal(params, &p) != nil || p == nil {
		p = make(map[string]json.RawMessage)
	}
	var meta map[string]json.RawMessage
	json.Unmarshal(p["_meta"], &meta)
	if meta == nil {
		meta = make(map[string]json.RawMessage)
	}
	meta[metaSubscriptionID] = id
	p["_meta"], _ = json.Marshal(meta)
	b, _ := json.Marshal(p)
	return b
}

// hubPeer is the session-level Peer of a pooled session: what it gets
// outside any call goes to its identity's listen streams. It asks the
// client nothing; a modern client can only be asked within a call.
type hubPeer struct {
	hub      *listenHub
	identity string
}

func (p hubPeer) Notify(_ context.Context, method string, params json.RawMessage) {
	p.hub.publish(p.identity, method, params)
}

func (p hubPeer) Request(context.Context, string, json.RawMessage) (json.RawMessage, error) {
	return nil, jsonrpc.Errorf(jsonrpc.CodeMethodNotFound, "a modern client can be asked for input only during its call")
}

// listen serves subscriptions/listen: one long SSE stream, its
// acknowledgement first, then the notifications the client asked for,
// from every backend of the caller's pooled sessions. The session s is
// held for the stream's life, subscribed to the resources the client
// named, so the backends keep telling it. The pool lends s with Listen:
// the caller's requests are served by s too while the stream holds it,
// so the backend state they build (updates turned on) is that of the
// backend sessions the subscriptions are in.
//
// A config reload does not end the stream: clients do not open it again
// when it ends (the TypeScript SDK v2 leaves that to the application, and
// the spec reads a graceful end as "over"). Instead s, which the pool
// does not retire while a stream holds it, is brought to the new lineup:
// it connects the backends the reload added or changed, so that their
// notifications reach the stream, and its list_changed for what the
// reload changed reaches it too.
func (h *modernHandler) listen(w http.ResponseWriter, r *http.Request, msg *jsonrpc.Message, s *session.Session, ident string) error {
	var p struct {
		Notifications listenFilter `json:"notifications"`
	}
	if err := json.Unmarshal(msg.Params, &p); err != nil {
		writeHTTPError(w, http.StatusOK, msg.ID, errorf(jsonrpc.CodeInvalidParams, "Invalid params: %v", err))
		return errAnswered
	}
	l := &listener{id: msg.ID, filter: p.Notifications, ch: make(chan []byte, listenBuffer)}
	defer h.hub.add(ident, l)()
	h.subscribeAll(r.Context(), s, l.filter.ResourceSubscriptions, "resources/subscribe")
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
		defer cancel()
		h.subscribeAll(ctx, s, l.filter.ResourceSubscriptions, "resources/unsubscribe")
	}()
	outdated := s.Outdated()
	ack, _ := json.Marshal(map[string]any{
		"_meta":         map[string]json.RawMessage{metaSubscriptionID: msg.ID},
		"notifications": l.filter,
	})
	out := h.newOut(w, r)
	out.sse = true // a listen stream is SSE whatever Accept says
	if err := out.events([][]byte{jsonrpc.AppendRequest(nil, nil, "notifications/subscriptions/acknowledged", ack)}); err != nil {
		return err
	}
	tick := time.NewTicker(modernKeepAlive)
	defer tick.Stop()
	for {
		select {
		case n := <-l.ch:
			batch := [][]byte{n}
		more:
			for len(batch) < listenBuffer {
				select {
				case m := <-l.ch:
					batch = append(batch, m)
				default:
					break more
				}
			}
			if err := out.events(batch); err != nil {
				return err
			}
		case <-tick.C:
			if err := out.keepAlive(); err != nil {
				return err
			}
		case <-outdated:
			s.Reconcile(r.Context())
			// A backend the reload added or changed may serve the
			// resources asked for; the others take a subscribe again.
			h.subscribeAll(r.Context(), s, l.filter.ResourceSubscriptions, "resources/subscribe")
			outdated = s.Outdated()
		case <-r.Context().Done():
			return nil
		case <-s.Done():
			return h.endListen(out, msg.ID)
		case <-h.s.stop:
			return h.endListen(out, msg.ID)
		}
	}
}

// subscribeAll sends method (resources/subscribe or unsubscribe) for each
// uri through s's operations in force.
func (h *modernHandler) subscribeAll(ctx context.Context, s *session.Session, uris []string, method string) {
	ops := s.Operations()
	for _, uri := range uris {
		params, _ := json.Marshal(map[string]string{"uri": uri})
		if _, err := ops.Call(ctx, method, params); err != nil {
			h.s.log.DebugContext(ctx, "a listen stream's resource subscription", "method", method, "err", err)
		}
	}
}

// endListen ends a listen stream gracefully, with its response.
func (h *modernHandler) endListen(out *modernOut, id json.RawMessage) error {
	b, _ := json.Marshal(map[string]any{"resultType": "complete", "_meta": map[string]json.RawMessage{
		metaSubscriptionID: id, metaServerInfo: h.s.opts.ServerInfo,
	}})
	out.final(http.StatusOK, jsonrpc.AppendResult(nil, id, b))
	return nil
}
