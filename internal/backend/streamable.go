package backend

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/vmcp/vmcp/internal/jsonrpc"
)

// NewStreamableHTTP returns a Connector for a Streamable HTTP backend. All
// Clients from it share one keep-alive connection pool of
// opts.MaxConnsPerHost sockets. An invalid URL makes every Connect fail.
func NewStreamableHTTP(opts HTTPOptions) Connector {
	s, err := newHTTPShared(opts)
	if err != nil {
		return brokenConnector{err}
	}
	streams := opts.MaxStreams
	if streams == 0 {
		streams = s.tr.MaxConnsPerHost / 4
	}
	var q *streamQueue
	if streams > 0 {
		q = newStreamQueue(streams)
	}
	return &streamableConnector{s: s, streams: q, protocol: opts.Protocol}
}

type streamableConnector struct {
	s *httpShared
	// streams bounds the standalone GET streams; nil disables them.
	streams *streamQueue
	// protocol is HTTPOptions.Protocol; era caches what auto found (era.go).
	protocol string
	era      eraCache
	// discovered holds the backend's fresh server/discover answers
	// (discover_cache.go).
	discovered discoverCache
}

// connectLegacy starts a legacy-era client: the initialize handshake, or
// the resumption of a backend session.
func (x *streamableConnector) connectLegacy(ctx context.Context, opts ConnectOptions) (Client, *InitializeResult, error) {
	s := x.s
	c := newClient(s.name, s.timeout, s.log, opts.Handler)
	c.ids = &s.ids
	h := &httpConn{c: c, s: s, token: opts.Token}
	c.conn = h

	var res *InitializeResult
	if opts.ResumeSessionID != "" {
		pv := opts.ProtocolVersion
		if pv == "" {
			pv = LatestProtocolVersion
		}
		h.sid = opts.ResumeSessionID
		h.negotiated(pv)
		res = &InitializeResult{ProtocolVersion: pv, Resumed: true}
	}
	if opts.Handler != nil {
		h.q = x.streams // nil: no standalone stream
	}
	if res != nil {
		// Resumed: the backend session is initialized already.
		if h.q != nil {
			h.q.enqueue(h)
		}
		return c, res, nil
	}
	h.post = s.header("Accept", "application/json, text/event-stream", "Content-Type", "application/json")
	h.capture = true
	// The standalone stream opens during the handshake (openStream).
	res, err := c.initialize(ctx, opts)
	h.capture = false
	if err != nil {
		_ = c.Close()
		return nil, nil, err
	}
	return c, res, nil
}

func (x *streamableConnector) Close() error {
	x.s.close()
	return nil
}

// httpConn is one Streamable HTTP session.
type httpConn struct {
	c *client
	s *httpShared

	// Set during Connect, read-only afterwards.
	sid     string
	pv      string      // negotiated protocol version
	post    http.Header // POST headers
	get     http.Header // GET and DELETE headers
	capture bool        // take the session ID from the initialize response
	token   TokenSource // asked for each request's bearer token; nil: none

	stream streamState  // the standalone GET stream
	q      *streamQueue // where it waits for a slot; nil: no stream
	// modern: a 2026-07-28 exchange (modern.go): no session, no
	// notifications to send, streams that cannot be resumed, and headers
	// per request (requestHeader).
	modern bool
	// sub, for a modern client with a connect-time Handler, is what its
	// subscriptions/listen stream asks for; nil: no stream.
	sub *subscriptions
}

func (h *httpConn) sessionID() string { return h.sid }

// streamOpenWait bounds how long the handshake waits for the standalone
// stream's answer before it sends notifications/initialized: at most this,
// and at most half the time the handshake has left. Servers answer a GET
// at once (the go-sdk's client waits for that answer, without a bound,
// before it sends initialized), though a loaded machine may take a while;
// the bound only keeps a server that holds back the headers from failing
// the handshake.
const streamOpenWait = 5 * time.Second

// openStream opens the standalone GET stream right after the initialize
// result, and waits, within streamOpenWait, until the backend has answered
// it, so that what the backend sends as soon as it hears
// notifications/initialized (a roots/list) finds the stream there. The
// spec lets a client open the GET at any time after initialize; a backend
// that asks before any stream exists has its request dropped (the go-sdk
// and TypeScript SDK servers both do). With no free slot the stream
// queues as usual and the handshake does not wait.
func (h *httpConn) openStream(ctx context.Context) {
	if h.q == nil {
		return
	}
	up := make(chan struct{})
	h.stream.up = up
	if !h.q.enqueue(h) {
		return
	}
	wait := streamOpenWait
	if d, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(d)/2)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-up:
	case <-t.C:
	case <-ctx.Done():
	case <-h.c.ctx.Done():
	}
}

// do sends one request of the session, with the current bearer token if
// the client has a TokenSource.
func (h *httpConn) do(ctx context.Context, method string, hdr http.Header, body []byte) (*response, error) {
	hdr, err := withToken(ctx, h.token, hdr)
	if err != nil {
		return nil, err
	}
	if method == http.MethodPost {
		hdr = withExtraHeaders(ctx, hdr)
	}
	return h.s.do(ctx, method, hdr, body)
}

func (h *httpConn) negotiated(pv string) {
	h.pv = pv
	h.post = h.s.header("Accept", "application/json, text/event-stream", "Content-Type", "application/json",
		hdrSessionID, h.sid, hdrProtocolVersion, pv)
	h.get = h.s.header("Accept", "text/event-stream", hdrSessionID, h.sid, hdrProtocolVersion, pv)
}

func (h *httpConn) roundTrip(ctx context.Context, id int64, req []byte) (m *jsonrpc.Message, err error) {
	hadSession := h.sid != ""
	hdr := h.post
	if rh := requestHeader(ctx); rh != nil {
		hdr = rh
	}
	resp, err := h.do(ctx, http.MethodPost, hdr, req)
	if err != nil {
		return nil, transportError(err)
	}
	if h.capture {
		h.sid = resp.sessionID
	}
	if resp.status/100 != 2 {
		defer discard(resp)
		return nil, h.s.statusError(resp, hadSession)
	}
	// What this call buffers counts against the process-wide budget until
	// it returns, or, with a Hold in ctx, until the caller is done with
	// the result.
	res := &reservation{b: h.s.budget}
	defer func() {
		if m == nil || !keep(ctx, res) {
			res.release()
		}
	}()
	switch resp.mediaType {
	case "application/json":
		defer resp.body.Close()
		if n := resp.contentLength; n > 0 && n <= int64(h.s.max) {
			// The whole body, reserved at once: a call that waits for
			// room then never fails for lack of it halfway through.
			if err := res.reserve(ctx, n+1); err != nil {
				return nil, err
			}
		}
		b, err := h.s.readBudgeted(ctx, resp.body, resp.contentLength, res)
		if err != nil {
			return nil, h.bodyError(err)
		}
		m, derr := h.s.decodeBuffer(b)
		if derr != nil || m.Method != "" {
			return nil, h.corrupt(ctx, errors.New("invalid JSON-RPC response"))
		}
		if !answers(m, id) {
			return nil, h.corrupt(ctx, ErrMismatchedID)
		}
		return m, nil
	case "text/event-stream":
		return h.readStream(ctx, resp, id, res)
	default:
		discard(resp)
		if resp.status == http.StatusAccepted {
			return nil, errors.New("backend accepted the request but sent no response")
		}
		return nil, fmt.Errorf("unexpected response Content-Type %q", resp.mediaType)
	}
}

// answers reports whether response m answers request id. An error with a
// null id (the backend could not read the request's) answers too: it came
// back on this request's own exchange.
func answers(m *jsonrpc.Message, id int64) bool {
	if got, ok := parseID(m.ID); ok {
		return got == id
	}
	return m.Error != nil && (len(m.ID) == 0 || string(m.ID) == "null")
}

// corrupt handles a response that cannot be this request's answer: one
// that is not JSON-RPC, or that answers another request. It is never
// delivered: a backend framing bug on a pooled connection can shift
// answers by one, and this one may be another session's. Idle connections
// are closed, so that the one that carried it is not reused.
func (h *httpConn) corrupt(ctx context.Context, err error) error {
	h.s.tr.CloseIdleConnections()
	h.s.log.WarnContext(ctx, "backend sent a response that does not answer the request; dropped", "backend", h.s.name, "error", err)
	return err
}

// bodyError classifies a failure while reading a response body.
func (h *httpConn) bodyError(err error) error {
	if errors.Is(err, ErrTooLarge) || errors.Is(err, ErrOverBudget) {
		return err
	}
	return transportError(err)
}

func (h *httpConn) send(ctx context.Context, msg []byte) error {
	if h.modern {
		// 2026-07-28 has no client notifications: closing a request's
		// stream is what cancels it, and the backend asks nothing to answer.
		return nil
	}
	resp, err := h.do(ctx, http.MethodPost, h.post, msg)
	if err != nil {
		return transportError(err)
	}
	defer discard(resp)
	if resp.status/100 != 2 {
		return h.s.statusError(resp, h.sid != "")
	}
	return nil
}

// shutdown sends DELETE to end the backend session. A 405 means the backend
// does not let clients end sessions, and a lost-session answer (404, or the
// TypeScript SDK's 400) that it already forgot it.
// detach leaves the backend session open for another replica to resume.
// The client's cancelled context has already ended the standalone stream;
// the pooled connections stay with the connector.
func (h *httpConn) detach() { h.leaveQueue() }

func (h *httpConn) shutdown() error {
	defer h.s.released() // after the DELETE's body is discarded
	h.leaveQueue()
	if h.sid == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	resp, err := h.do(ctx, http.MethodDelete, h.get, nil)
	if err != nil {
		return unavailable(err)
	}
	defer discard(resp)
	switch {
	case resp.status/100 == 2, resp.status == http.StatusMethodNotAllowed:
		return nil
	}
	if err := h.s.statusError(resp, true); !errors.Is(err, ErrSessionNotFound) {
		return fmt.Errorf("DELETE: %w", err)
	}
	return nil // already gone: what DELETE was for
}

// leaveQueue takes the standalone stream out of its queue, if it waits
// there; the client has cancelled its context already.
func (h *httpConn) leaveQueue() {
	if h.q != nil {
		h.q.forget(h)
	}
}

// resumeHeader is the header of a GET that resumes a stream after lastID.
// It is built per use: resumption is rare, and may happen during
// initialize, before the session's headers exist.
func (h *httpConn) resumeHeader(lastID string) http.Header {
	return h.s.header("Accept", "text/event-stream", hdrSessionID, h.sid, hdrProtocolVersion, h.pv, hdrLastEventID, lastID)
}

// listenOnce runs one GET stream until it ends (for a 2026-07-28
// backend, a subscriptions/listen stream: modern_listen.go). It returns
// the HTTP status, whether any event arrived, and the server's retry hint.
func (h *httpConn) listenOnce(ctx context.Context, lastID *string) (status int, progressed bool, retry time.Duration, err error) {
	if h.sub != nil {
		return h.listenModern(ctx)
	}
	hdr := h.get
	if *lastID != "" {
		hdr = h.resumeHeader(*lastID)
	}
	resp, err := h.do(ctx, http.MethodGet, hdr, nil)
	if up := h.stream.up; up != nil {
		close(up) // the handshake may go on: the stream is there, or never will be
		h.stream.up = nil
	}
	if err != nil {
		return 0, false, 0, err
	}
	defer resp.body.Close()
	if resp.status/100 != 2 || resp.mediaType != "text/event-stream" {
		return resp.status, false, 0, fmt.Errorf("HTTP %d", resp.status)
	}
	progressed, retry, err = h.pump(ctx, resp, lastID, func(m *jsonrpc.Message) bool {
		h.c.deliver(ctx, h.c.handler, m, h.send)
		return true
	})
	return resp.status, progressed, retry, err
}

// pump reads a stream that lives as long as the session (the standalone
// GET, a subscriptions/listen) and hands each message to deliver until
// the stream ends or deliver reports false.
func (h *httpConn) pump(ctx context.Context, resp *response, lastID *string, deliver func(*jsonrpc.Message) bool) (progressed bool, retry time.Duration, err error) {
	res := &reservation{b: h.s.budget}
	defer res.release()
	r := h.s.readers.Get().(*sseReader)
	defer func() { r.release(); h.s.readers.Put(r) }()
	// The stream mostly waits: it must not hold budget while it does, or
	// a call waiting for room would wait for it. Only what an event grows
	// beyond the buffers it has is charged, and given back once the event
	// is handled.
	_ = r.reset(ctx, resp.body, nil)
	r.res = res
	for {
		r.trim()
		ev, err := r.next()
		if err != nil {
			return progressed, retry, err
		}
		progressed = true
		if ev.hasID {
			*lastID = ev.id
		}
		if ev.retry > 0 {
			retry = ev.retry
		}
		if len(ev.data) == 0 {
			continue
		}
		m, derr := jsonrpc.Decode(ev.data, 0)
		if derr != nil {
			h.s.log.Debug("standalone stream: malformed message", "backend", h.s.name, "error", derr)
			continue
		}
		if !deliver(m) {
			return progressed, retry, nil
		}
	}
}
