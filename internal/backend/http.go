package backend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

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
	// sockets to the backend whatever the number of sessions, except that a
	// legacy SSE session also holds one stream of its own.
	MaxConnsPerHost int
	// MaxStreams bounds the standalone GET streams (Streamable HTTP, only
	// for clients with a connect-time Handler) held open at once. Each holds
	// a pooled socket, so without a bound they could starve calls. Default:
	// a quarter of the pool (so none for a pool under 4); sessions beyond it
	// wait for a slot. Negative disables standalone streams.
	MaxStreams int
	// MaxMessageBytes caps one response body or SSE event; default 32 MiB.
	MaxMessageBytes int
	// Logger receives debug records (never headers or session IDs).
	Logger *slog.Logger
}

const (
	defaultPool = 64
	// closeTimeout bounds the DELETE that ends a session.
	closeTimeout = 2 * time.Second
	// idleConnTimeout closes a pooled connection left idle this long.
	idleConnTimeout = 10 * time.Second

	hdrSessionID       = "Mcp-Session-Id"
	hdrProtocolVersion = "Mcp-Protocol-Version"
	hdrLastEventID     = "Last-Event-Id"
)

// httpShared is what one HTTP backend's Clients share: the pooled
// transports, the parsed URL, static headers and buffer pools.
type httpShared struct {
	name    string
	url     *url.URL
	headers map[string]string
	timeout time.Duration
	max     int
	log     *slog.Logger
	// tr is net/http's pooled transport, used by the legacy SSE connector
	// (through the SDK) and by Streamable HTTP behind a proxy.
	tr *http.Transport
	// rt carries Streamable HTTP requests: an h1Pool, or tr when a proxy
	// must be used.
	rt roundTripper

	bufs    sync.Pool // *bytes.Buffer for JSON bodies
	readers sync.Pool // *sseReader
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
	s := &httpShared{
		name: opts.Name, url: u, headers: opts.Headers, timeout: opts.Timeout,
		max: max, log: log, tr: tr,
	}
	s.rt = stdTransport{s}
	if proxy, err := http.ProxyFromEnvironment(&http.Request{URL: u}); err == nil && proxy == nil {
		s.rt = newH1Pool(u, pool, idleConnTimeout, nil)
	}
	s.bufs.New = func() any { return new(bytes.Buffer) }
	s.readers.New = func() any { return newSSEReader(max) }
	return s, nil
}

// roundTripper sends one request and returns the response head; the
// caller closes the body. wantSID asks for the Mcp-Session-Id header.
type roundTripper interface {
	do(ctx context.Context, method string, h *header, body []byte, wantSID bool) (*response, error)
	closeIdle()
}

// header is a request header, built once per client and then only read,
// so concurrent requests share it: as wire lines for h1Pool, and as a map
// only when net/http needs one (a backend behind a proxy).
type header struct {
	std http.Header
	raw []byte
}

// header builds a header from the static headers plus kv pairs (which
// override them). Empty values are left out, and so are values that
// cannot go on the wire (a session ID or version from the backend with a
// line break, say).
func (s *httpShared) header(kv ...string) *header {
	h := make(http.Header, len(s.headers)+len(kv)/2)
	for k, v := range s.headers {
		h.Set(k, v)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" && validHeader(kv[i], kv[i+1]) {
			h[kv[i]] = []string{kv[i+1]}
		}
	}
	if _, std := s.rt.(stdTransport); std {
		return &header{std: h}
	}
	keys := make([]string, 0, len(h))
	n := 0
	for k, v := range h {
		keys = append(keys, k)
		n += len(k) + len(v[0]) + 4
	}
	slices.Sort(keys)
	raw := make([]byte, 0, n)
	for _, k := range keys {
		raw = append(raw, k...)
		raw = append(raw, ": "...)
		raw = append(raw, h[k][0]...)
		raw = append(raw, "\r\n"...)
	}
	// Sessions hold two of these per backend: keep only the wire form.
	return &header{raw: raw}
}

// do sends one request on the backend's pool.
func (s *httpShared) do(ctx context.Context, method string, h *header, body []byte) (*response, error) {
	return s.rt.do(ctx, method, h, body, false)
}

// stdTransport sends requests through net/http's Transport, for backends
// reached through a proxy.
type stdTransport struct{ s *httpShared }

// do skips http.Client: that saves a header copy per call and never
// follows redirects, which could carry the API-key headers to another
// host.
func (t stdTransport) do(ctx context.Context, method string, h *header, body []byte, wantSID bool) (*response, error) {
	req := &http.Request{
		Method: method, URL: t.s.url, Header: h.std,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
	}
	if body != nil {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		// GetBody lets the transport retry on a pooled connection that the
		// server had closed before anything was written.
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	resp, err := t.s.tr.RoundTrip(req.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	r := &response{status: resp.StatusCode, mediaType: mediaType(resp.Header.Get("Content-Type")),
		contentLength: resp.ContentLength, body: resp.Body}
	if wantSID {
		r.sessionID = resp.Header.Get(hdrSessionID)
	}
	return r, nil
}

func (t stdTransport) closeIdle() { t.s.tr.CloseIdleConnections() }

// readBody reads a whole body up to the size limit into a pooled buffer;
// the caller returns it with putBuf.
func (s *httpShared) readBody(r io.Reader, hint int64) (*bytes.Buffer, error) {
	b := s.bufs.Get().(*bytes.Buffer)
	b.Reset()
	if hint > 0 && hint <= int64(s.max) {
		b.Grow(int(hint))
	}
	_, err := b.ReadFrom(io.LimitReader(r, int64(s.max)+1))
	if err == nil && b.Len() > s.max {
		err = tooLarge(s.max)
	}
	if err != nil {
		s.putBuf(b)
		return nil, err
	}
	return b, nil
}

func (s *httpShared) putBuf(b *bytes.Buffer) {
	if b.Cap() <= 1<<20 {
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
// the client). The body text is never put in the error: it could echo a
// session ID or header.
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
	case rpcErr != nil:
		return rpcErr
	case resp.status >= 500:
		return fmt.Errorf("%w: %w", ErrUnavailable, &HTTPStatusError{resp.status})
	}
	return fmt.Errorf("unexpected HTTP status %d %s", resp.status, http.StatusText(resp.status))
}

// transportError maps an error from http.Client.Do. When ctx has ended the
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
