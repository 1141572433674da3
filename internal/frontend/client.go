package frontend

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"

	"github.com/vmcp/vmcp/internal/jsonrpc"
	"github.com/vmcp/vmcp/internal/session"
)

// A session keeps at most maxStreams finished response streams for replay,
// holding at most maxReplayBytes of events between them, except that the
// newest is kept whatever its size. Streams still in flight and the
// standalone stream are always kept.
const (
	maxStreams     = 16
	maxReplayBytes = 1 << 20
)

// clientSession is the front end's state for one session: its SSE streams
// with their replay buffers, the requests vmcp has sent to the client and
// awaits answers for, and the client's requests in flight (so that the
// client can cancel them). It is the session's Peer. Safe for concurrent
// use.
type clientSession struct {
	bufLimit   int
	standalone *stream

	mu       sync.Mutex
	streams  map[int64]*stream // response streams, for Last-Event-ID
	kept     []keptStream      // finished streams kept for replay, oldest first
	keptSize int               // bytes of their events
	nextID   int64
	pending  map[string]pendingRequest // vmcp's request id -> waiter
	nextReq  int64
	inflight map[string]context.CancelFunc // client's request id -> cancel
}

func newClientSession(bufLimit int) *clientSession {
	return &clientSession{
		bufLimit:   bufLimit,
		standalone: newStream(0, bufLimit),
		streams:    make(map[int64]*stream),
		nextID:     1,
		pending:    make(map[string]pendingRequest),
		inflight:   make(map[string]context.CancelFunc),
	}
}

// clientFor returns the front-end state of s, creating it on first use
// (also when another replica created the session).
func (h *legacyHandler) clientFor(s *session.Session) *clientSession {
	if p, ok := s.Peer().(*sessionPeer); ok {
		return p.c
	}
	p := s.SetPeer(&sessionPeer{c: newClientSession(h.opts.EventBuffer)})
	return p.(*sessionPeer).c
}

// newStream opens a response stream. The caller retires it when its call
// ends.
func (c *clientSession) newStream() *stream {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := newStream(c.nextID, c.bufLimit)
	c.nextID++
	c.streams[st.id] = st
	return st
}

// retire is called when st's call has ended, before its response reaches
// the client; pending is the size of a response not yet pushed. A stream
// the client holds no event ID of (answered as plain JSON) is dropped at
// once; any other is kept for replay, and the oldest kept streams beyond
// the session's bounds are dropped.
func (c *clientSession) retire(st *stream, resumable bool, pending int) {
	size := st.size() + pending
	c.mu.Lock()
	defer c.mu.Unlock()
	if !resumable {
		delete(c.streams, st.id)
		return
	}
	c.kept = append(c.kept, keptStream{st, size})
	c.keptSize += size
	for len(c.kept) > maxStreams || (c.keptSize > maxReplayBytes && len(c.kept) > 1) {
		old := c.kept[0]
		delete(c.streams, old.st.id)
		c.keptSize -= old.size
		c.kept[0] = keptStream{}
		c.kept = c.kept[1:]
	}
}

type keptStream struct {
	st   *stream
	size int // as accounted in keptSize
}

func (c *clientSession) stream(id int64) *stream {
	if id == 0 {
		return c.standalone
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.streams[id]
}

// track registers a client request in flight so notifications/cancelled can
// end it; the returned func forgets it.
func (c *clientSession) track(id json.RawMessage, cancel context.CancelFunc) func() {
	key := string(id)
	c.mu.Lock()
	c.inflight[key] = cancel
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		delete(c.inflight, key)
		c.mu.Unlock()
	}
}

// cancelRequest handles the client's notifications/cancelled.
func (c *clientSession) cancelRequest(params json.RawMessage) {
	var p struct {
		RequestID json.RawMessage `json:"requestId"`
	}
	if json.Unmarshal(params, &p) != nil || len(p.RequestID) == 0 {
		return
	}
	c.mu.Lock()
	cancel := c.inflight[string(p.RequestID)]
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// pendingRequest is a request vmcp sent the client and awaits an answer to.
type pendingRequest struct {
	answer chan *jsonrpc.Message // buffered: deliver never blocks
	st     *stream
}

// deliver hands the client's answer to a request vmcp sent it.
func (c *clientSession) deliver(m *jsonrpc.Message) {
	c.mu.Lock()
	p, ok := c.pending[string(m.ID)]
	delete(c.pending, string(m.ID))
	c.mu.Unlock()
	if ok {
		p.answer <- m
	}
}

// abandon cancels, on the stream itself, the requests still awaiting an
// answer on st. It runs when a call ends, before its response, so a client
// never keeps a dialog open for a call that is over; whoever waits for
// such an answer gets an error at once.
func (c *clientSession) abandon(st *stream) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, p := range c.pending {
		if p.st == st {
			delete(c.pending, id)
			pushCancelled(st, json.RawMessage(id))
			p.answer <- &jsonrpc.Message{Error: errCallEnded}
		}
	}
}

var errCallEnded = jsonrpc.Errorf(jsonrpc.CodeInternalError, "the client's call whose stream carried this request has ended")

// cancelPending cancels one request still awaiting the client's answer.
// Removing it and telling the client happen under one lock, so that exactly
// one of cancelPending and abandon does it, and before the call's response.
func (c *clientSession) cancelPending(id json.RawMessage, st *stream) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.pending[string(id)]; ok {
		delete(c.pending, string(id))
		pushCancelled(st, id)
	}
}

func pushCancelled(st *stream, id json.RawMessage) {
	params, _ := json.Marshal(map[string]any{"requestId": id, "reason": "cancelled by the server"})
	st.push(jsonrpc.AppendRequest(nil, nil, "notifications/cancelled", params))
}

// request sends a request to the client on st and waits for the answer.
// If ctx ends first, the client is told the request is cancelled. The
// request ends with st's call (abandon) unless outlive is set: it then
// belongs to no call and only travels on st, and if st has already ended
// it goes on the standalone stream instead.
func (c *clientSession) request(ctx context.Context, st *stream, outlive bool, method string, params json.RawMessage) (json.RawMessage, error) {
	ch := make(chan *jsonrpc.Message, 1)
	owner := st
	if outlive {
		owner = c.standalone
	}
	c.mu.Lock()
	c.nextReq++
	id := json.RawMessage(strconv.Quote("vmcp-" + strconv.FormatInt(c.nextReq, 10)))
	c.pending[string(id)] = pendingRequest{answer: ch, st: owner}
	c.mu.Unlock()
	msg := jsonrpc.AppendRequest(nil, id, method, params)
	if !st.push(msg) && (!outlive || !c.standalone.push(msg)) {
		c.forget(id)
		return nil, jsonrpc.Errorf(jsonrpc.CodeInternalError, "the client's stream for this call has ended")
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			return nil, m.Error
		}
		return m.Result, nil
	case <-ctx.Done():
		c.cancelPending(id, owner)
		return nil, ctx.Err()
	}
}

func (c *clientSession) forget(id json.RawMessage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pending, string(id))
}

// sessionPeer is the session-level Peer: the standalone stream.
type sessionPeer struct{ c *clientSession }

func (p *sessionPeer) Notify(_ context.Context, method string, params json.RawMessage) {
	p.c.standalone.push(jsonrpc.AppendRequest(nil, nil, method, params))
}

func (p *sessionPeer) Request(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	return p.c.request(ctx, p.c.standalone, false, method, params)
}

// callPeer is the Peer of one call answered over SSE: its messages go on
// the call's response stream, before the response.
type callPeer struct {
	c  *clientSession
	st *stream
}

func (p *callPeer) Notify(ctx context.Context, method string, params json.RawMessage) {
	p.TryNotify(ctx, method, params)
}

// TryNotify implements session.TryNotifier: false once the call's
// response has ended its stream.
func (p *callPeer) TryNotify(_ context.Context, method string, params json.RawMessage) bool {
	return p.st.push(jsonrpc.AppendRequest(nil, nil, method, params))
}

func (p *callPeer) Request(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	return p.c.request(ctx, p.st, false, method, params)
}

// RequestOutliving implements session.OutlivingRequester: a request that
// belongs to no call, sent on this call's stream because the client has
// opened no other, does not end with the call.
func (p *callPeer) RequestOutliving(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	return p.c.request(ctx, p.st, true, method, params)
}
