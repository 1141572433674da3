package frontend

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmcp/vmcp/internal/backend"
	"github.com/vmcp/vmcp/internal/jsonrpc"
	"github.com/vmcp/vmcp/internal/recovery"
	"github.com/vmcp/vmcp/internal/session"
	"github.com/vmcp/vmcp/internal/store"
)

// legacyHandler serves Streamable HTTP for the legacy protocol era, where a
// client holds a protocol session (Mcp-Session-Id) from initialize to
// DELETE.
type legacyHandler struct {
	opts *Options
	log  *slog.Logger
	m    *session.Manager
	stop <-chan struct{} // closed at shutdown: ends every stream
	bufs sync.Pool       // *[]byte request and response buffers
}

func (h *legacyHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodDelete:
		h.delete(w, r)
	case http.MethodGet:
		h.get(w, r)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// readBody reads a capped body within the read deadline ServeHTTP set. On
// failure it answers 413, 408 or 400 itself and returns ok=false.
func (h *legacyHandler) readBody(w http.ResponseWriter, r *http.Request) (*[]byte, bool) {
	if r.ContentLength > h.opts.MaxBodyBytes {
		countRefused(h.opts.Observer, "body_too_large")
		writeHTTPError(w, http.StatusRequestEntityTooLarge, nil, errorf(codeInvalidRequest, "request body exceeds %d bytes", h.opts.MaxBodyBytes))
		return nil, false
	}
	bp := h.bufs.Get().(*[]byte)
	buf := bytesBuffer{b: (*bp)[:0]}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes))
	*bp = buf.b
	if err == nil && r.Body != http.NoBody {
		// ServeHTTP set a read deadline for the body; the call may run
		// long, or answer with a stream, and no deadline may outlive the
		// body. (On HTTP/1 net/http also clears it when the body ends and
		// it starts the background read that notices a client going; a
		// deadline firing there would cancel the request.)
		http.NewResponseController(w).SetReadDeadline(time.Time{})
	}
	if err != nil {
		h.bufs.Put(bp)
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			countRefused(h.opts.Observer, "body_too_large")
			writeHTTPError(w, http.StatusRequestEntityTooLarge, nil, errorf(codeInvalidRequest, "request body exceeds %d bytes", h.opts.MaxBodyBytes))
		case errors.Is(err, os.ErrDeadlineExceeded):
			if r.ProtoMajor == 1 {
				// The rest of the body may still come; the connection
				// cannot carry another request.
				w.Header().Set("Connection", "close")
			}
			countRefused(h.opts.Observer, "body_timeout")
			writeHTTPError(w, http.StatusRequestTimeout, nil, errorf(codeInvalidRequest, "request body did not arrive within %v", h.opts.ReadTimeout))
		default:
			countRefused(h.opts.Observer, "body_unreadable")
			writeHTTPError(w, http.StatusBadRequest, nil, errorf(codeInvalidRequest, "reading request body: %v", err))
		}
		return nil, false
	}
	return bp, true
}

// post serves a legacy POST's message (Server.post read it).
func (h *legacyHandler) post(w http.ResponseWriter, r *http.Request, msg *jsonrpc.Message) {
	if msg.Method == "initialize" {
		start := time.Now()
		h.observe(msg.Method, start, h.initialize(w, r, msg))
		return
	}
	s, ok := h.sessionFor(w, r, msg.ID)
	if !ok {
		return
	}
	c := h.clientFor(s)
	switch {
	case msg.IsResponse():
		c.deliver(msg)
		w.WriteHeader(http.StatusAccepted)
		return
	case msg.IsNotification():
		notify(r.Context(), s, c, msg)
		w.WriteHeader(http.StatusAccepted)
		return
	}
	if msg.Method != "ping" && acceptsSSE(r) {
		h.callSSE(w, r, s, c, msg)
		return
	}
	start := time.Now()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer c.track(msg.ID, cancel)()
	// The backend's answer stays charged to the response budget until it
	// is written.
	ctx, hold := backend.WithHold(ctx)
	defer hold.Release()
	result, err := dispatch(ctx, s, msg.Method, msg.Params)
	h.respond(ctx, w, msg.ID, result, err)
	h.observe(msg.Method, start, err)
}

func (h *legacyHandler) observe(method string, start time.Time, err error) {
	if h.opts.Observer != nil {
		h.opts.Observer.ObserveRequest(method, time.Since(start), err != nil)
	}
}

// callSSE answers a request from a client that accepts SSE: with a plain
// JSON response when the backend sent nothing before it (most calls), else
// as an SSE stream of a priming event, whatever the backend sent during the
// call (progress, logging, sampling…), then the response.
//
// The handler runs the call itself, detached from the connection once the
// client holds an event ID of the stream: a client that loses the stream
// then resumes with GET and Last-Event-ID, and the call's events wait in
// the stream's buffer. Until then the client has nothing to resume with,
// so its going away cancels the call, as on the plain-JSON path. A writer
// goroutine starts only when the backend sends something before the
// response, or when the call runs past primeDelay (so the client soon
// holds a resumable event ID).
func (h *legacyHandler) callSSE(w http.ResponseWriter, r *http.Request, s *session.Session, c *clientSession, msg *jsonrpc.Message) {
	start := time.Now()
	st := c.newStream()
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	defer c.track(msg.ID, cancel)()
	defer context.AfterFunc(r.Context(), func() {
		if !st.primed() {
			cancel()
		}
	})()
	ctx, hold := backend.WithHold(ctx)
	defer hold.Release()
	serve := func() {
		// Attach before the priming event: once the client has an event
		// ID it may resume with GET, and that writer must win over this
		// one.
		wctx, detach := st.attach(r.Context())
		defer detach()
		if startSSE(w, st, 0) == nil {
			st.serve(wctx, w, 0, h.stop, s.Done(), h.opts.WriteTimeout)
		}
		if !st.primed() {
			cancel() // the client has no event ID: nothing can resume the call
		}
	}
	// Whoever wins writing serves; the handler waits on writerDone when a
	// writer goroutine won, which it may have done from any goroutine.
	var writing atomic.Bool
	writerDone := make(chan struct{})
	startWriter := func() {
		if writing.CompareAndSwap(false, true) {
			go func() {
				defer close(writerDone)
				defer recovery.Recover(h.log, nil, "during", "writing a call's response stream")
				serve()
			}()
		}
	}
	st.onPush(startWriter)
	primer := time.AfterFunc(primeDelay, startWriter)
	defer primer.Stop()

	result, err := dispatch(session.WithPeer(ctx, &callPeer{c: c, st: st}), s, msg.Method, msg.Params)
	c.abandon(st)
	var b []byte
	if err != nil {
		b = jsonrpc.AppendError(nil, msg.ID, h.toRPCError(ctx, err))
	} else {
		b = jsonrpc.AppendResult(nil, msg.ID, result)
	}
	h.observe(msg.Method, start, err)
	primer.Stop()
	// The stream is retired before its response can reach the client, so
	// a client that sends its next call after this one's response finds
	// the replay table already updated.
	if writing.CompareAndSwap(false, true) {
		// No writer started, and none can now, so the client holds no
		// event ID of this stream; if the response is its only event,
		// plain JSON says the same in fewer bytes, with no SSE framing.
		st.finish(b)
		if st.sole() && !h.opts.AlwaysStream {
			c.retire(st, false, 0)
			w.Header().Set("Content-Type", "application/json")
			w.Write(b)
			return
		}
		c.retire(st, true, 0)
		serve()
		return
	}
	c.retire(st, true, len(b))
	st.finish(b)
	<-writerDone
}

// primeDelay is how long a call's priming event may wait to go out with
// its first event or its response.
const primeDelay = 50 * time.Millisecond

// get opens the session's standalone SSE stream, or, with Last-Event-ID,
// resumes any of its streams after that event.
func (h *legacyHandler) get(w http.ResponseWriter, r *http.Request) {
	if !acceptsSSE(r) {
		writeHTTPError(w, http.StatusNotAcceptable, nil, errorf(codeInvalidRequest, "Not Acceptable: GET requires Accept: text/event-stream"))
		return
	}
	s, ok := h.sessionFor(w, r, nil)
	if !ok {
		return
	}
	c := h.clientFor(s)
	st := c.standalone
	after := st.lastDelivered()
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		if sid, seq, ok := parseEventID(id); ok {
			if x := c.stream(sid); x != nil {
				st, after = x, seq
			}
		}
	}
	wctx, detach := st.attach(r.Context())
	defer detach()
	if err := startSSE(w, st, after); err != nil {
		return
	}
	if st == c.standalone {
		s.PeerOpened()
	}
	st.serve(wctx, w, after, h.stop, s.Done(), h.opts.WriteTimeout)
}

// isJSONMediaType reports whether a Content-Type is application/json, with
// or without parameters, without the allocations of mime.ParseMediaType.
func isJSONMediaType(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/json")
}

// acceptsSSE reports whether the client named text/event-stream in Accept.
// A bare */* (curl's default) gets plain JSON, which is easier to read.
func acceptsSSE(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		if strings.Contains(v, "text/event-stream") {
			return true
		}
	}
	return false
}

func (h *legacyHandler) respond(ctx context.Context, w http.ResponseWriter, id json.RawMessage, result json.RawMessage, err error) {
	bp := h.bufs.Get().(*[]byte)
	defer h.bufs.Put(bp)
	var b []byte
	if err != nil {
		b = jsonrpc.AppendError((*bp)[:0], id, h.toRPCError(ctx, err))
	} else {
		b = jsonrpc.AppendResult((*bp)[:0], id, result)
	}
	*bp = b
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// initialize answers initialize; the error, for metrics, is what failed.
func (h *legacyHandler) initialize(w http.ResponseWriter, r *http.Request, msg *jsonrpc.Message) error {
	if !msg.IsRequest() {
		writeHTTPError(w, http.StatusBadRequest, nil, errorf(codeInvalidRequest, "initialize must be a request"))
		return errBadInitialize
	}
	var p struct {
		ProtocolVersion string          `json:"protocolVersion"`
		Capabilities    json.RawMessage `json:"capabilities"`
		ClientInfo      json.RawMessage `json:"clientInfo"`
	}
	if err := json.Unmarshal(msg.Params, &p); err != nil || p.ProtocolVersion == "" {
		writeHTTPError(w, http.StatusOK, msg.ID, errorf(jsonrpc.CodeInvalidParams, "initialize: params must include protocolVersion"))
		return errBadInitialize
	}
	version := negotiate(p.ProtocolVersion)
	s, err := h.m.Create(r.Context(), session.CreateRequest{
		Identity:           clientIdentity(r),
		ProtocolVersion:    version,
		ClientInfo:         p.ClientInfo,
		ClientCapabilities: p.Capabilities,
	})
	if rl, ok := errors.AsType[*session.RateLimitedError](err); ok {
		w.Header().Set("Retry-After", retryAfter(math.Ceil(rl.RetryAfter.Seconds())))
		writeHTTPError(w, http.StatusTooManyRequests, msg.ID, errorf(codeServerError, "Too many initialize requests; retry later"))
		return err
	}
	if errors.Is(err, session.ErrAtCapacity) || errors.Is(err, session.ErrIdentityAtCapacity) || errors.Is(err, session.ErrClosed) {
		w.Header().Set("Retry-After", retryAfter(h.opts.RetryAfter.Seconds()))
		writeHTTPError(w, http.StatusServiceUnavailable, msg.ID, errorf(codeServerError, "Maximum concurrent sessions exceeded; retry later"))
		return err
	}
	if errors.Is(err, store.ErrUnavailable) {
		h.unavailable(w, msg.ID)
		return err
	}
	if errors.Is(err, backend.ErrProcessLimit) {
		h.processLimit(r.Context(), w, msg.ID, err)
		return err
	}
	if err != nil {
		h.log.WarnContext(r.Context(), "initialize failed", "err", err)
		writeHTTPError(w, http.StatusInternalServerError, msg.ID, errorf(jsonrpc.CodeInternalError, "initialize failed: %s", h.opts.Redactor.Redact(err.Error())))
		return err
	}
	result, _ := json.Marshal(initializeResult(s, version, h.opts.ServerInfo))
	w.Header().Set(headerSessionID, s.ID())
	h.respond(r.Context(), w, msg.ID, result, nil)
	return nil
}

var errBadInitialize = errors.New("invalid initialize request")

func (h *legacyHandler) delete(w http.ResponseWriter, r *http.Request) {
	sid := r.Header.Get(headerSessionID)
	if sid == "" {
		writeHTTPError(w, http.StatusBadRequest, nil, errorf(codeInvalidRequest, "Bad Request: Mcp-Session-Id header is required"))
		return
	}
	err := h.m.DeleteFor(r.Context(), sid, clientIdentity(r))
	switch {
	case errors.Is(err, session.ErrNotFound):
		writeHTTPError(w, http.StatusNotFound, nil, errorf(codeSessionNotFound, "Session not found"))
		return
	case errors.Is(err, store.ErrUnavailable):
		h.unavailable(w, nil)
		return
	case err != nil:
		h.log.WarnContext(r.Context(), "closing session", "err", err)
	}
	w.WriteHeader(http.StatusNoContent)
}

// clientAddress is the identity of an anonymous caller: its IP.
func clientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return "ip:" + r.RemoteAddr
	}
	return "ip:" + host
}

// bytesBuffer is a minimal growable buffer whose storage can go back to a
// pool.
type bytesBuffer struct{ b []byte }

func (b *bytesBuffer) ReadFrom(r io.Reader) (int64, error) {
	var n int64
	for {
		if len(b.b) == cap(b.b) {
			b.b = append(b.b, 0)[:len(b.b)]
		}
		m, err := r.Read(b.b[len(b.b):cap(b.b)])
		b.b = b.b[:len(b.b)+m]
		n += int64(m)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// sessionFor finds the request's session, answering 400 (no ID or a bad
// protocol version) or 404 (unknown session) itself when it cannot.
func (h *legacyHandler) sessionFor(w http.ResponseWriter, r *http.Request, id json.RawMessage) (*session.Session, bool) {
	sid := r.Header.Get(headerSessionID)
	if sid == "" {
		writeHTTPError(w, http.StatusBadRequest, id, errorf(codeInvalidRequest, "Bad Request: Mcp-Session-Id header is required"))
		return nil, false
	}
	if v := r.Header.Get(headerProtocolVersion); v != "" && !isLegacy(v) {
		writeHTTPError(w, http.StatusBadRequest, id, errorf(codeInvalidRequest, "Bad Request: unsupported MCP-Protocol-Version %q", v))
		return nil, false
	}
	s, err := h.m.GetFor(r.Context(), sid, clientIdentity(r))
	if errors.Is(err, store.ErrUnavailable) {
		h.unavailable(w, id)
		return nil, false
	}
	if errors.Is(err, backend.ErrProcessLimit) {
		h.processLimit(r.Context(), w, id, err)
		return nil, false
	}
	if err != nil {
		writeHTTPError(w, http.StatusNotFound, id, errorf(codeSessionNotFound, "Session not found"))
		return nil, false
	}
	return s, true
}

// unavailable answers 503 when the session store cannot be reached: the
// request may succeed if retried, here or on another replica.
func (h *legacyHandler) unavailable(w http.ResponseWriter, id json.RawMessage) {
	w.Header().Set("Retry-After", retryAfter(h.opts.RetryAfter.Seconds()))
	writeHTTPError(w, http.StatusServiceUnavailable, id, errorf(codeServerError, "Session store unavailable; retry later"))
}

// processLimit answers 503 when a session needs a stdio backend process
// and vmcp already runs as many as server.maxStdioProcesses allows.
func (h *legacyHandler) processLimit(ctx context.Context, w http.ResponseWriter, id json.RawMessage, err error) {
	h.log.WarnContext(ctx, "session refused: stdio process limit reached", "err", err)
	w.Header().Set("Retry-After", retryAfter(h.opts.RetryAfter.Seconds()))
	writeHTTPError(w, http.StatusServiceUnavailable, id, errorf(codeServerError, "Too many backend server processes running; retry later"))
}
