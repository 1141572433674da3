package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmcp/vmcp/internal/jsonrpc"
	"github.com/vmcp/vmcp/internal/recovery"
)

const (
	// defaultMaxMessage caps one message (response body, SSE event, stdio
	// line) from a backend.
	defaultMaxMessage = 32 << 20
	// cancelTimeout bounds the best-effort notifications/cancelled.
	cancelTimeout = 2 * time.Second
	// replyTimeout bounds sending the answer to a server-to-client request.
	replyTimeout = 10 * time.Second
)

// conn is the transport half of a client; client holds what all transports
// share (ids, timeouts, cancellation, dispatch to handlers, closing).
type conn interface {
	// roundTrip sends the encoded request with the given id and returns the
	// backend's response message, which may carry a JSON-RPC error. Server
	// messages that arrive meanwhile are passed to client.deliver. When ctx
	// ends first it returns an error and the client reports ctx.Err().
	roundTrip(ctx context.Context, id int64, req []byte) (*jsonrpc.Message, error)
	// send writes one notification or response.
	send(ctx context.Context, msg []byte) error
	sessionID() string
	// shutdown ends the backend session. It is called once, after the
	// client's lifetime context is cancelled.
	shutdown() error
}

// client implements Client on top of a conn.
type client struct {
	name    string
	timeout time.Duration
	log     *slog.Logger
	handler Handler // connect-time handler; may be nil
	conn    conn
	// ids numbers requests; a transport may share one counter between
	// clients (see httpShared.ids).
	ids *atomic.Int64

	// ctx lives as long as the client; Close cancels it, which stops the
	// goroutines the client owns.
	ctx    context.Context
	cancel context.CancelFunc

	closed   atomic.Bool
	once     sync.Once
	closeErr error

	mu      sync.Mutex // guards closing, so wg.Add never races wg.Wait
	closing bool
	wg      sync.WaitGroup

	// serving maps the ids of backend requests being answered to their
	// cancel funcs, so the backend's notifications/cancelled reaches the
	// handler (and, through it, the client vmcp relayed the request to).
	smu     sync.Mutex
	serving map[string]serving
}

// serving is a backend request being answered.
type serving struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the handler has returned
}

func newClient(name string, timeout time.Duration, log *slog.Logger, h Handler) *client {
	ctx, cancel := context.WithCancel(context.Background())
	return &client{name: name, timeout: timeout, log: log, handler: h, ids: new(atomic.Int64), ctx: ctx, cancel: cancel}
}

func (c *client) Call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	if c.closed.Load() {
		return nil, opError(c.name, method, ErrClosed)
	}
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, c.timeout, &SettingTimeout{Setting: "backends[].timeout", After: c.timeout})
		defer cancel()
	}
	id := c.ids.Add(1)
	var idBuf [20]byte
	idRaw := strconv.AppendInt(idBuf[:0], id, 10)
	req := jsonrpc.AppendRequest(make([]byte, 0, len(method)+len(params)+48), idRaw, method, params)

	resp, err := c.conn.roundTrip(ctx, id, req)
	if err != nil {
		// The spec forbids cancelling initialize.
		if cerr := ctx.Err(); cerr != nil && method != "initialize" && !c.closed.Load() {
			c.cancelRemote(ctx, id, cerr.Error())
		}
		return nil, c.callError(ctx, method, err)
	}
	if resp.Error != nil {
		return nil, rpcError(c.name, method, resp.Error)
	}
	return resp.Result, nil
}

func (c *client) Notify(ctx context.Context, method string, params json.RawMessage) error {
	if c.closed.Load() {
		return opError(c.name, method, ErrClosed)
	}
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, c.timeout, &SettingTimeout{Setting: "backends[].timeout", After: c.timeout})
		defer cancel()
	}
	if err := c.conn.send(ctx, jsonrpc.AppendRequest(make([]byte, 0, len(method)+len(params)+32), nil, method, params)); err != nil {
		return c.callError(ctx, method, err)
	}
	return nil
}

// callError maps a transport error: the context's own error if ctx ended
// (so callers can errors.Is it), a backend JSON-RPC error or "session not
// found" as it is, ErrClosed with ErrInFlight if the client closed
// meanwhile (the request may have reached the backend, so it must not be
// re-sent), anything else named after the backend.
func (c *client) callError(ctx context.Context, method string, err error) error {
	switch {
	case ctx.Err() != nil:
		if cause := context.Cause(ctx); errors.Is(cause, context.DeadlineExceeded) {
			return opError(c.name, method, cause) // names the setting, if one set it
		}
		return opError(c.name, method, ctx.Err())
	}
	// What the backend answered stands, even if the client closed since.
	if e, ok := err.(*jsonrpc.Error); ok {
		return rpcError(c.name, method, e)
	}
	if !errors.Is(err, ErrSessionNotFound) && c.closed.Load() {
		return opError(c.name, method, fmt.Errorf("%w: %w", ErrClosed, ErrInFlight))
	}
	return opError(c.name, method, err)
}

func (c *client) SessionID() string { return c.conn.sessionID() }

// Close ends the backend session once and waits for the goroutines the
// client started. Later calls fail with ErrClosed.
func (c *client) Close() error { return c.end(true) }

// Detach lets go of the client without ending the backend session, so that
// another vmcp replica can resume it: its goroutines stop and its streams
// close, but no DELETE is sent. A transport whose session cannot outlive
// its connection (stdio, legacy SSE) ends it as Close does. Like Close, it
// is idempotent, and only the first of Close and Detach has effect.
func (c *client) Detach() error { return c.end(false) }

func (c *client) end(terminate bool) error {
	c.once.Do(func() {
		c.closed.Store(true)
		c.mu.Lock()
		c.closing = true
		c.mu.Unlock()
		c.cancel()
		d, detachable := c.conn.(interface{ detach() })
		if !terminate && detachable {
			d.detach()
		} else if err := c.conn.shutdown(); err != nil {
			c.closeErr = opError(c.name, "close", err)
		}
		c.wg.Wait()
	})
	return c.closeErr
}

// goTracked runs f on a goroutine that Close waits for. It reports false,
// and does not run f, once the client is closing.
func (c *client) goTracked(f func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer recovery.Recover(c.log, nil, "backend", c.name)
		f()
	}()
	return true
}

// cancelRemote tells the backend, best effort, that request id is
// abandoned. It runs in the background so the caller returns at once and no
// lock is held while it is sent. It does not end with the client's context:
// a call cancelled just before Close must still stop its tool on the
// backend; Close waits for it, at most cancelTimeout. call is the
// abandoned call's context: its trace, not its end, goes on the log line.
func (c *client) cancelRemote(call context.Context, id int64, reason string) {
	c.goTracked(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cancelTimeout)
		defer cancel()
		params, _ := json.Marshal(struct {
			RequestID int64  `json:"requestId"`
			Reason    string `json:"reason"`
		}{id, reason})
		msg := jsonrpc.AppendRequest(nil, nil, "notifications/cancelled", params)
		if err := c.conn.send(ctx, msg); err != nil {
			c.log.DebugContext(context.WithoutCancel(call), "cancel notification not delivered", "backend", c.name, "error", err)
		}
	})
}

// deliver hands one server-to-client message to h (which may be nil).
// Notifications run inline so their order is kept; requests run on their
// own goroutine, since a handler may take long (sampling, elicitation), and
// are answered through reply. Stray responses are dropped.
func (c *client) deliver(ctx context.Context, h Handler, m *jsonrpc.Message, reply func(context.Context, []byte) error) {
	switch {
	case m.IsNotification() && m.Method == "notifications/cancelled":
		c.cancelServing(m.Params)
	case m.IsNotification():
		if h != nil {
			c.notifyHandler(ctx, h, m)
		}
	case m.IsRequest():
		if _, forCall := ctx.Value(handlerKey{}).(Handler); !forCall {
			// Not sent for a client's call: on the standalone stream, or
			// while only vmcp's own calls (initialize, the listing) were in
			// flight. It lives as long as the client, not as that call.
			ctx = c.ctx
		}
		// Tracked before the reader reads on: the backend's
		// notifications/cancelled for this request may be the next
		// message, and must find it.
		hctx, cancel := context.WithCancel(ctx)
		untrack := c.trackServing(m.ID, cancel)
		started := c.goTracked(func() {
			defer cancel()
			defer untrack()
			stop := context.AfterFunc(c.ctx, cancel)
			defer stop()
			out := c.answer(hctx, h, m)
			rctx, rcancel := context.WithTimeout(c.ctx, replyTimeout)
			defer rcancel()
			if err := reply(rctx, out); err != nil {
				c.log.DebugContext(hctx, "reply to backend request failed", "backend", c.name, "method", m.Method, "error", err)
			}
		})
		if !started {
			untrack()
			cancel()
		}
	default:
		c.log.DebugContext(ctx, "dropping unexpected message from backend", "backend", c.name)
	}
}

// trackServing records a backend request being answered; the returned
// func, called once the handler has returned, forgets it.
func (c *client) trackServing(id json.RawMessage, cancel context.CancelFunc) func() {
	key, sv := string(id), serving{cancel: cancel, done: make(chan struct{})}
	c.smu.Lock()
	if c.serving == nil {
		c.serving = make(map[string]serving)
	}
	c.serving[key] = sv
	c.smu.Unlock()
	return func() {
		c.smu.Lock()
		delete(c.serving, key)
		c.smu.Unlock()
		close(sv.done)
	}
}

// cancelWait bounds how long the reader waits for a cancelled handler to
// return, so the client hears of the cancellation before the messages the
// backend sent after it (typically the call's result).
const cancelWait = time.Second

// cancelServing handles the backend's notifications/cancelled for a
// request it sent to vmcp.
func (c *client) cancelServing(params json.RawMessage) {
	var p struct {
		RequestID json.RawMessage `json:"requestId"`
	}
	if json.Unmarshal(params, &p) != nil {
		return
	}
	c.smu.Lock()
	sv, ok := c.serving[string(p.RequestID)]
	c.smu.Unlock()
	if !ok {
		return
	}
	sv.cancel()
	t := time.NewTimer(cancelWait)
	defer t.Stop()
	select {
	case <-sv.done:
	case <-t.C:
	}
}

// notifyHandler runs h.Notify on the reader's goroutine. A panic there is
// the handler's, not the backend's: it is logged and costs only that
// notification, not the connection.
func (c *client) notifyHandler(ctx context.Context, h Handler, m *jsonrpc.Message) {
	defer recovery.Recover(c.log, nil, "backend", c.name, "method", m.Method)
	h.Notify(ctx, m.Method, m.Params)
}

// answer runs the handler for a backend request and encodes its answer; a
// handler that panics answers an internal error.
func (c *client) answer(ctx context.Context, h Handler, m *jsonrpc.Message) (out []byte) {
	defer recovery.Recover(c.log, func(err error) {
		out = jsonrpc.AppendError(nil, m.ID, jsonrpc.Errorf(jsonrpc.CodeInternalError, "%s: %v", m.Method, err))
	}, "backend", c.name, "method", m.Method)
	if h == nil {
		if m.Method == "ping" {
			return jsonrpc.AppendResult(nil, m.ID, json.RawMessage("{}"))
		}
		return jsonrpc.AppendError(nil, m.ID, jsonrpc.Errorf(jsonrpc.CodeMethodNotFound, "method not found: %s", m.Method))
	}
	res, err := h.Request(ctx, m.Method, m.Params)
	if err != nil {
		e := jsonrpc.AsError(err)
		if e == nil {
			e = &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: err.Error()}
		}
		return jsonrpc.AppendError(nil, m.ID, e)
	}
	if len(res) == 0 {
		res = json.RawMessage("{}")
	}
	return jsonrpc.AppendResult(nil, m.ID, res)
}

// initialize runs the MCP handshake: initialize, then
// notifications/initialized. Transports that need the negotiated version
// (Streamable HTTP sends it as a header) implement negotiator.
func (c *client) initialize(ctx context.Context, opts ConnectOptions) (*InitializeResult, error) {
	pv := opts.ProtocolVersion
	if pv == "" {
		pv = LatestProtocolVersion
	}
	params, err := initializeParams(pv, opts)
	if err != nil {
		return nil, opError(c.name, "initialize", err)
	}
	raw, err := c.Call(ctx, "initialize", params)
	if err != nil {
		return nil, err
	}
	var res InitializeResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, opError(c.name, "initialize", fmt.Errorf("invalid result: %w", err))
	}
	if res.ProtocolVersion == "" {
		return nil, opError(c.name, "initialize", errors.New("invalid result: no protocolVersion"))
	}
	if n, ok := c.conn.(negotiator); ok {
		n.negotiated(res.ProtocolVersion)
	}
	if o, ok := c.conn.(streamOpener); ok {
		o.openStream(ctx)
	}
	if err := c.Notify(ctx, "notifications/initialized", nil); err != nil {
		return nil, err
	}
	return &res, nil
}

// negotiator is implemented by conns that must know the negotiated protocol
// version. It is called once, before the client is shared.
type negotiator interface{ negotiated(protocolVersion string) }

// streamOpener is implemented by conns that open a stream of their own for
// server messages outside any call (Streamable HTTP's GET). openStream is
// called once, between the initialize result and notifications/initialized:
// a server that asks something as soon as it is initialized (roots, as
// server-filesystem does) then has somewhere to send it.
type streamOpener interface{ openStream(ctx context.Context) }

func initializeParams(pv string, opts ConnectOptions) (json.RawMessage, error) {
	caps, info := opts.Capabilities, opts.ClientInfo
	if len(caps) == 0 {
		caps = json.RawMessage("{}")
	}
	if len(info) == 0 {
		info = json.RawMessage(`{"name":"vmcp","version":"dev"}`)
	}
	return json.Marshal(struct {
		ProtocolVersion string          `json:"protocolVersion"`
		Capabilities    json.RawMessage `json:"capabilities"`
		ClientInfo      json.RawMessage `json:"clientInfo"`
	}{pv, caps, info})
}

// parseID reads a numeric JSON-RPC id (or a quoted one) as sent by this
// package. It reports false for anything else.
func parseID(raw json.RawMessage) (int64, bool) {
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		raw = raw[1 : len(raw)-1]
	}
	if len(raw) == 0 || len(raw) > 19 {
		return 0, false
	}
	var n int64
	for _, b := range raw {
		if b < '0' || b > '9' {
			return 0, false
		}
		n = n*10 + int64(b-'0')
	}
	return n, true
}
