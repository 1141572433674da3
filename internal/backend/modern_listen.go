package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/vmcp/vmcp/internal/jsonrpc"
)

// A 2026-07-28 backend sends list_changed and resources/updated only on a
// subscriptions/listen stream, which replaced the GET stream and
// resources/subscribe. The modern client of a session holds one such
// stream (in the connector's bounded stream slots, like a legacy GET
// stream) asking for what the session needs: the list changes the backend
// offers, so the catalog stays current, and the resources the client in
// front subscribed to. A subscription change opens the stream again with
// the new filter; resources/subscribe returns once the backend has
// acknowledged it.

// subscribeWait bounds how long resources/subscribe waits for the backend
// to acknowledge the new filter.
const subscribeWait = 10 * time.Second

// subscriptions is the filter of one client's subscriptions/listen stream.
// Safe for concurrent use.
type subscriptions struct {
	mc *modernClient

	mu      sync.Mutex
	lists   []string        // "toolsListChanged", … that the backend offers
	uris    map[string]bool // resources the client in front subscribed to
	queued  bool            // the stream runs, or waits for a slot or a backoff
	running bool            // the stream holds a slot now
	restart bool            // the filter changed: open the stream again at once
	cancel  context.CancelFunc
	acked   *ack // done when the stream with the current filter is acknowledged
	// refused: the backend answered subscriptions/listen with 404, 400 or
	// 405, so there is no stream until the next change tries again.
	refused bool
}

// ack is a one-time signal that any side may give.
type ack struct {
	once sync.Once
	ch   chan struct{}
}

func newAck() *ack   { return &ack{ch: make(chan struct{})} }
func (a *ack) done() { a.once.Do(func() { close(a.ch) }) }

// newSubscriptions sets up the listen stream of a modern client from the
// backend's capabilities, and starts it if there is a list to follow.
func newSubscriptions(mc *modernClient, caps json.RawMessage) *subscriptions {
	var c map[string]struct {
		ListChanged bool `json:"listChanged"`
	}
	_ = json.Unmarshal(caps, &c)
	sub := &subscriptions{mc: mc, acked: newAck()}
	for _, k := range []string{"tools", "prompts", "resources"} {
		if c[k].ListChanged {
			sub.lists = append(sub.lists, k+"ListChanged")
		}
	}
	return sub
}

// start queues the stream unless it runs or waits already, or there is
// nothing to listen for. It reports whether the stream got a slot at once.
func (sub *subscriptions) start() bool {
	sub.mu.Lock()
	if sub.queued || (len(sub.lists) == 0 && len(sub.uris) == 0) {
		sub.mu.Unlock()
		return false
	}
	sub.queued, sub.refused = true, false
	sub.mu.Unlock()
	return sub.mc.h.q.enqueue(sub.mc.h)
}

// restarting reports, once, that the stream ended for a new filter.
func (sub *subscriptions) restarting() bool {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	r := sub.restart
	sub.restart = false
	return r
}

// change adds or removes a resource and, if that changed the filter,
// opens the stream again with it. It returns the channel closed once the
// backend has acknowledged the filter now in force, or nil if the stream
// waits for a slot: it will ask for the new filter when it gets one, and
// waiting for that could take as long as another session's stream lives.
func (sub *subscriptions) change(uri string, add bool) <-chan struct{} {
	sub.mu.Lock()
	if sub.uris[uri] == add {
		acked := sub.acked
		running := sub.running
		sub.mu.Unlock()
		if !running {
			return nil
		}
		return acked.ch
	}
	if add {
		if sub.uris == nil {
			sub.uris = make(map[string]bool)
		}
		sub.uris[uri] = true
	} else {
		delete(sub.uris, uri)
	}
	sub.acked = newAck()
	acked, cancel, queued := sub.acked, sub.cancel, sub.queued
	nothing := len(sub.lists) == 0 && len(sub.uris) == 0
	waiting := queued && cancel == nil // for a slot or a backoff
	if cancel != nil {
		sub.restart = true
	}
	sub.mu.Unlock()
	switch {
	case nothing:
		acked.done() // nothing left to listen for
		if cancel != nil {
			cancel() // the stream ends, and finds nothing to open again with
		}
	case cancel != nil:
		cancel() // the stream ends and is queued again with the new filter
	case waiting:
		return nil
	default:
		if !sub.start() {
			return nil
		}
	}
	return acked.ch
}

// filter renders the notifications filter of subscriptions/listen.
func (sub *subscriptions) filter() json.RawMessage {
	f := map[string]any{}
	for _, k := range sub.lists {
		f[k] = true
	}
	if len(sub.uris) > 0 {
		uris := make([]string, 0, len(sub.uris))
		for u := range sub.uris {
			uris = append(uris, u)
		}
		slices.Sort(uris)
		f["resourceSubscriptions"] = uris
	}
	b, _ := json.Marshal(map[string]any{"notifications": f})
	return b
}

// listenModern runs one subscriptions/listen stream until it ends,
// delivering its notifications to the client's connect-time Handler: the
// list changes (the session refreshes its catalog) and resource updates.
// The acknowledgment is vmcp's own business and goes no further.
func (h *httpConn) listenModern(ctx context.Context) (status int, progressed bool, retry time.Duration, err error) {
	sub := h.sub
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sub.mu.Lock()
	if len(sub.lists) == 0 && len(sub.uris) == 0 {
		// Nothing left to listen for (the last resource unsubscribed):
		// the stream ends until a subscribe starts it again.
		sub.queued, sub.restart = false, false
		sub.mu.Unlock()
		return http.StatusMethodNotAllowed, false, 0, nil
	}
	params, acked := sub.filter(), sub.acked
	sub.cancel, sub.restart, sub.running = cancel, false, true
	sub.mu.Unlock()
	defer func() {
		sub.mu.Lock()
		sub.cancel, sub.running = nil, false
		if !sub.restart && stopsForGood(status) {
			sub.queued = false // listen will not queue it again
			sub.refused = true
			sub.acked.done() // nobody will acknowledge it: subscribe says so
		}
		sub.mu.Unlock()
	}()
	mc := sub.mc
	p, err := mc.withMeta(context.Background(), params)
	if err != nil {
		return 0, false, 0, err
	}
	id := h.c.ids.Add(1)
	req := jsonrpc.AppendRequest(nil, strconv.AppendInt(nil, id, 10), "subscriptions/listen", p)
	resp, err := h.do(ctx, http.MethodPost, mc.header("subscriptions/listen", p), req)
	if err != nil {
		return 0, false, 0, err
	}
	defer resp.body.Close()
	if resp.status/100 != 2 || resp.mediaType != "text/event-stream" {
		return resp.status, false, 0, fmt.Errorf("subscriptions/listen: HTTP %d", resp.status)
	}
	var lastID string
	progressed, retry, err = h.pump(ctx, resp, &lastID, func(m *jsonrpc.Message) bool {
		switch {
		case !m.IsNotification():
			return false // the backend ended the subscription
		case m.Method == "notifications/subscriptions/acknowledged":
			acked.done()
		default:
			h.c.deliver(ctx, h.c.handler, m, h.send)
		}
		return true
	})
	return resp.status, progressed, retry, err
}

// stopsForGood reports whether httpConn.listen gives up on a stream that
// ended with status, rather than opening it again after a backoff.
func stopsForGood(status int) bool {
	return status == http.StatusMethodNotAllowed || status == http.StatusNotFound || status == http.StatusBadRequest
}

// subscribe serves resources/subscribe and resources/unsubscribe from the
// listen stream's filter.
func (c *modernClient) subscribe(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	sub := c.h.sub
	if sub == nil {
		return nil, rpcError(c.name, method, jsonrpc.Errorf(jsonrpc.CodeMethodNotFound,
			"%s: this client of a %s backend has no stream to deliver updates on", method, ModernProtocolVersion))
	}
	raw, err := jsonrpc.Member(params, "uri")
	uri, ok := jsonrpc.Unquote(raw)
	if err != nil || !ok {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "%s: params must have a uri", method)
	}
	acked := sub.change(uri, method == "resources/subscribe")
	if acked == nil {
		return json.RawMessage("{}"), nil // in force once the stream has a slot
	}
	t := time.NewTimer(subscribeWait)
	defer t.Stop()
	select {
	case <-acked:
		sub.mu.Lock()
		refused := sub.refused
		sub.mu.Unlock()
		if refused {
			return nil, rpcError(c.name, method, jsonrpc.Errorf(jsonrpc.CodeMethodNotFound,
				"%s: the backend refused subscriptions/listen", method))
		}
		return json.RawMessage("{}"), nil
	case <-t.C:
		return nil, opError(c.name, method, fmt.Errorf("%w: the backend did not acknowledge subscriptions/listen within %s", ErrUnavailable, subscribeWait))
	case <-ctx.Done():
		return nil, opError(c.name, method, ctx.Err())
	case <-c.ctx.Done():
		return nil, opError(c.name, method, ErrClosed)
	}
}
