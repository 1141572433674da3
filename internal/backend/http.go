package backend

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/vmcp/vmcp/internal/jsonrpc"
)

// HTTPOptions configure the HTTP connectors (Streamable HTTP and legacy SSE).
type HTTPOptions struct {
	// Name is the backend name, used in errors and logs.
	Name string
	// URL is the MCP endpoint (legacy SSE: the SSE endpoint).
	URL string
	// Headers are added to every request. They may hold API keys and are
	// never logged.
	Headers map[string]string
	// Timeout bounds each Call (0 = none).
	Timeout time.Duration
	// MaxConnsPerHost is the connection pool size; default 64. It bounds the
	// sockets to the backend whatever the number of sessions, except that an
	// SSE session also holds one stream of its own. Over TLS the
	// backend may offer HTTP/2, which carries many calls per socket.
	MaxConnsPerHost int
	// MaxStreams bounds the standalone GET streams (Streamable HTTP, only
	// for clients with a connect-time Handler) held open at once. Each holds
	// a pooled socket, so without a bound they could starve calls. Default:
	// a quarter of the pool (so none for a pool under 4); sessions beyond it
	// wait for a slot. Negative disables standalone streams.
	MaxStreams int
	// MaxMessageBytes caps one response body or SSE event; default 32 MiB.
	// It is the backend's maxResponseBytes setting.
	MaxMessageBytes int
	// TLS configures connections to an https backend (custom roots, a
	// client certificate). nil: the system roots. It is cloned.
	TLS *tls.Config
	// Budget bounds the response bytes buffered at once by every connector
	// that shares it; nil: no budget. Streamable HTTP only: the SSE
	// connector reads through the go-sdk.
	Budget *Budget
	// Logger receives debug records (never headers or session IDs).
	Logger *slog.Logger
	// Propagator, if set, writes the trace context of each request's
	// span into its headers (traceparent); nil: none.
	Propagator propagation.TextMapPropagator
	// Protocol is the era to speak (ProtocolAuto, ProtocolLegacy,
	// ProtocolModern; "" is auto). Streamable HTTP only: SSE is legacy.
	Protocol string
}

const (
	defaultPool = 64
	// closeTimeout bounds the DELETE that ends a session.
	closeTimeout = 2 * time.Second
	// idleConnTimeout closes a pooled connection left idle this long.
	idleConnTimeout = 10 * time.Second
	// maxResponseHeaderBytes caps a response's status line and headers.
	maxResponseHeaderBytes = 64 << 10

	hdrSessionID       = "Mcp-Session-Id"
	hdrProtocolVersion = "Mcp-Protocol-Version"
	hdrLastEventID     = "Last-Event-Id"
)

// replayHeaders make net/http treat a POST as idempotent and re-send it
// after a connection failure once it was written; a call must reach a
// backend at most once, so they cannot be configured.
var replayHeaders = []string{"Idempotency-Key", "X-Idempotency-Key"}

// httpShared is what one HTTP backend's Clients share: the pooled
// transport, the parsed URL, static headers, the id counter and buffer
// pools.
type httpShared struct {
	name    string
	url     *url.URL
	headers map[string]string
	timeout time.Duration
	max     int
	log     *slog.Logger
	budget  *Budget                       // nil: none
	prop    propagation.TextMapPropagator // nil: no trace context
	sockets atomic.Int64                  // open now (httpconns.go)
	// tr is net/http's pooled transport. Requests go straight to its
	// RoundTrip, never through http.Client: that saves a header copy per
	// call and never follows redirects, which could carry the API-key
	// headers to another host.
	tr *http.Transport
	// ids numbers the requests of all the connector's clients, so that a
	// response that went astray (a backend's framing bug on a pooled
	// connection) can never match another session's call.
	ids atomic.Int64

	bufs    sync.Pool // *bodyBuf for JSON bodies
	readers sync.Pool // *sseReader

	closed atomic.Bool // set by close
}

// close lets go of the pooled connections. A client may outlive its
// connector (its session still closing when a shutdown's deadline passed,
// or when a reload let go of the backend): its last requests would put a
// connection back in the pool, so each client's shutdown calls released.
func (s *httpShared) close() {
	s.closed.Store(true)
	s.tr.CloseIdleConnections()
}

// released is called once a client's last request has ended; after close,
// it closes the connection that request left idle.
func (s *httpShared) released() {
	if s.closed.Load() {
		s.tr.CloseIdleConnections()
	}
}

func newHTTPShared(opts HTTPOptions) (*httpShared, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The URL is not echoed: it may carry a credential.
		return nil, opError(opts.Name, "connect", errors.New("invalid URL"))
	}
	pool := opts.MaxConnsPerHost
	if pool <= 0 {
		pool = defaultPool
	}
	max := opts.MaxMessageBytes
	if max <= 0 {
		max = defaultMaxMessage
	}
	for k, v := range opts.Headers {
		if !validHeader(k, v) {
			// Only the name: the value may be a credential.
			return nil, opError(opts.Name, "connect", fmt.Errorf("invalid header %q", k))
		}
		for _, r := range replayHeaders {
			if strings.EqualFold(k, r) {
				return nil, opError(opts.Name, "connect", fmt.Errorf("header %q not allowed: it would let net/http re-send a call", k))
			}
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxConnsPerHost = pool
	tr.MaxIdleConnsPerHost = pool
	tr.MaxIdleConns = pool
	// After a burst the pool shrinks back within seconds rather than
	// holding up to pool sockets (each with two goroutines and buffers)
	// for DefaultTransport's 90 s.
	tr.IdleConnTimeout = idleConnTimeout
	tr.MaxResponseHeaderBytes = maxResponseHeaderBytes
	if opts.TLS != nil {
		tr.TLSClientConfig = opts.TLS.Clone()
	}
	s := &httpShared{
		name: opts.Name, url: u, headers: opts.Headers, timeout: opts.Timeout,
		max: max, log: log, budget: opts.Budget, tr: tr, prop: opts.Propagator,
	}
	countSockets(tr, &s.sockets)
	s.bufs.New = func() any { return new(bodyBuf) }
	s.readers.New = func() any { return newSSEReader(max) }
	return s, nil
}

// header builds a request header from the static headers plus kv pairs
// (which override them). Empty values are left out, and so are values
// that cannot go on the wire (a session ID or version from the backend
// with a line break, say). A client builds its headers once; requests
// then share them read-only, as http.Transport only reads them.
func (s *httpShared) header(kv ...string) http.Header {
	h := make(http.Header, len(s.headers)+len(kv)/2)
	for k, v := range s.headers {
		h.Set(k, v)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" && validHeader(kv[i], kv[i+1]) {
			h[kv[i]] = []string{kv[i+1]}
		}
	}
	return h
}

// response is what the connectors need of an HTTP response. The caller
// must close body.
type response struct {
	status        int
	mediaType     string // lower-case, without parameters
	sessionID     string // Mcp-Session-Id
	contentLength int64  // -1 if unknown
	body          io.ReadCloser
}

// do sends one request on the backend's pool. net/http re-sends a request
// only when nothing of it was written (or for GET, DELETE), so a POST
// reaches the backend at most once: a connection that fails after that is
// this call's error.
func (s *httpShared) do(ctx context.Context, method string, h http.Header, body []byte) (*response, error) {
	if s.prop != nil && trace.SpanContextFromContext(ctx).IsValid() {
		h = h.Clone() // h is shared by the client's requests
		s.prop.Inject(ctx, propagation.HeaderCarrier(h))
	}
	req := &http.Request{
		Method: method, URL: s.url, Header: h, Host: s.url.Host,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
	}
	if body != nil {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		// GetBody lets the transport re-send on a pooled connection that
		// the server had closed before anything was written.
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	resp, err := s.tr.RoundTrip(req.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	return &response{status: resp.StatusCode, mediaType: mediaType(resp.Header.Get("Content-Type")),
		sessionID: resp.Header.Get(hdrSessionID), contentLength: resp.ContentLength, body: resp.Body}, nil
}

// validHeader reports whether name and value can be sent as one header
// line as they are: a token name, and a value without control characters
// that could end the line early.
func validHeader(name, value string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// bodyBuf is a pooled buffer for a response body.
type bodyBuf struct{ buf []byte }

func (b *bodyBuf) Bytes() []byte { return b.buf }

// readBody reads a whole body up to the size limit into a pooled buffer,
// outside any budget; the caller returns it with putBuf.
func (s *httpShared) readBody(r io.Reader, hint int64) (*bodyBuf, error) {
	return s.readBudgeted(context.Background(), r, hint, nil)
}

// readBudgeted is readBody with the buffer charged to res: a body of known
// length reserves it all first (waiting for room), one of unknown length
// as its buffer doubles. Past the size limit or the budget it fails.
func (s *httpShared) readBudgeted(ctx context.Context, r io.Reader, hint int64, res *reservation) (*bodyBuf, error) {
	if hint > int64(s.max) {
		return nil, tooLarge(s.max)
	}
	b := s.bufs.Get().(*bodyBuf)
	b.buf = b.buf[:0]
	fail := func(err error) (*bodyBuf, error) {
		s.putBuf(b)
		return nil, err
	}
	// A pooled buffer is charged as it is.
	if err := res.reserve(ctx, int64(cap(b.buf))); err != nil {
		return fail(err)
	}
	// One byte more than the body, so that the read that sees EOF has room.
	want := 4 << 10
	if hint > 0 {
		want = int(hint) + 1
	}
	for {
		if len(b.buf) == cap(b.buf) {
			if len(b.buf) > s.max {
				return fail(tooLarge(s.max))
			}
			n := min(max(want, growth(cap(b.buf))), s.max+1)
			if err := res.reserve(ctx, int64(n)); err != nil {
				return fail(err)
			}
			b.buf = append(make([]byte, 0, n), b.buf...)
		}
		n, err := r.Read(b.buf[len(b.buf):cap(b.buf)])
		b.buf = b.buf[:len(b.buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(err)
		}
	}
	if len(b.buf) > s.max {
		return fail(tooLarge(s.max))
	}
	return b, nil
}

// decodeBuffer decodes a body and hands b back to the pool. A large body
// is not copied: the message keeps its buffer, which the pool would not
// keep anyway.
func (s *httpShared) decodeBuffer(b *bodyBuf) (*jsonrpc.Message, *jsonrpc.Error) {
	if cap(b.buf) > pooledBuffer {
		return jsonrpc.DecodeOwned(b.buf, 0)
	}
	defer s.putBuf(b)
	return jsonrpc.Decode(b.buf, 0)
}

func (s *httpShared) putBuf(b *bodyBuf) {
	if cap(b.buf) <= pooledBuffer {
		s.bufs.Put(b)
	}
}

// discard closes a response whose body is not needed. A short body of
// known length is read first so that the connection can go back to the
// pool; anything else (a stream, say) could block, so it is just closed.
func discard(resp *response) {
	if n := resp.contentLength; n >= 0 && n <= 64<<10 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.body, n))
	}
	_ = resp.body.Close()
}

// discardHTTP is discard for a net/http response.
func discardHTTP(resp *http.Response) {
	discard(&response{contentLength: resp.ContentLength, body: resp.Body})
}

// mediaType returns the lower-case media type of a Content-Type value.
func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	switch {
	case strings.EqualFold(ct, "application/json"):
		return "application/json"
	case strings.EqualFold(ct, "text/event-stream"):
		return "text/event-stream"
	}
	return strings.ToLower(ct)
}

// statusError maps a non-2xx response. On a request that carried a
// session ID, an answer saying the backend lost the session (sessionLost)
// is ErrSessionNotFound. Otherwise a JSON-RPC error body wins (it is
// returned as a *jsonrpc.Error; one saying "session not found" is mapped by
// the client). A 401 or 403 is ErrUnauthorized, whatever the body. The
// body text is never put in the error: it could echo a session ID or
// header.
func (s *httpShared) statusError(resp *response, hadSession bool) error {
	var rpcErr *jsonrpc.Error
	lost := false
	if b, err := s.readBody(io.LimitReader(resp.body, 1<<20), 0); err == nil {
		if m, derr := jsonrpc.Decode(b.Bytes(), 0); derr == nil {
			rpcErr = m.Error
		}
		lost = hadSession && sessionLost(resp.status, rpcErr, b.Bytes())
		s.putBuf(b)
	} else {
		lost = hadSession && sessionLost(resp.status, nil, nil)
	}
	switch {
	case lost:
		return fmt.Errorf("%w (HTTP %d)", ErrSessionNotFound, resp.status)
	case isRefusal(resp.status):
		return refused(resp.status)
	case rpcErr != nil:
		return rpcErr
	case resp.status >= 500:
		return fmt.Errorf("%w: %w", ErrUnavailable, &HTTPStatusError{resp.status})
	}
	return &statusCodeError{resp.status}
}

// statusCodeError is a non-2xx answer that says nothing more: no JSON-RPC
// error, no lost session, no refusal. A probe reads a 4xx one as a backend
// that does not speak the era it was asked in.
type statusCodeError struct{ status int }

func (e *statusCodeError) Error() string {
	return fmt.Sprintf("unexpected HTTP status %d %s", e.status, http.StatusText(e.status))
}

// transportError maps an error from RoundTrip. When ctx has ended the
// client reports ctx.Err() itself.
func transportError(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return unavailable(err)
}

// brokenConnector is returned for a configuration error found when the
// connector is made; every Connect reports it.
type brokenConnector struct{ err error }

func (b brokenConnector) Connect(context.Context, ConnectOptions) (Client, *InitializeResult, error) {
	return nil, nil, b.err
}

func (b brokenConnector) Close() error { return nil }
