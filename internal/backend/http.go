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
// transport, the parsed URL, static headers and buffer pools.
type httpShared struct {
	name    string
	url     *url.URL
	headers map[string]string
	timeout time.Duration
	max     int
	log     *slog.Logger
	tr      *http.Transport

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
	s.bufs.New = func() any { return new(bytes.Buffer) }
	s.readers.New = func() any { return newSSEReader(max) }
	return s, nil
}

// header builds a header map from the static headers plus kv pairs. The
// maps are built once per client and then only read, so concurrent
// requests share them.
func (s *httpShared) header(kv ...string) http.Header {
	h := make(http.Header, len(s.headers)+len(kv)/2)
	for k, v := range s.headers {
		h.Set(k, v)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			h[kv[i]] = []string{kv[i+1]}
		}
	}
	return h
}

// do sends one request straight to the pooled transport. Skipping
// http.Client saves a header copy per call and never follows redirects,
// which could carry the API-key headers to another host. The URL is
// parsed once per connector.
func (s *httpShared) do(ctx context.Context, method string, h http.Header, body []byte) (*http.Response, error) {
	req := &http.Request{
		Method: method, URL: s.url, Header: h,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
	}
	if body != nil {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		// GetBody lets the transport retry on a pooled connection that the
		// server had closed before anything was written.
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	return s.tr.RoundTrip(req.WithContext(ctx))
}

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
func discard(resp *http.Response) {
	if n := resp.ContentLength; n >= 0 && n <= 64<<10 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, n))
	}
	_ = resp.Body.Close()
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

// statusError maps a non-2xx response. A JSON-RPC error body wins (it is
// returned as a *jsonrpc.Error; one saying "session not found" is mapped by
// the client). Otherwise a 404 on a request that carried a session ID means
// the backend forgot the session. The body text is never put in the error:
// it could echo a session ID or header.
func (s *httpShared) statusError(resp *http.Response, hadSession bool) error {
	if b, err := s.readBody(io.LimitReader(resp.Body, 1<<20), 0); err == nil {
		m, derr := jsonrpc.Decode(b.Bytes(), 0)
		s.putBuf(b)
		if derr == nil && m.Error != nil {
			return m.Error
		}
	}
	switch {
	case resp.StatusCode == http.StatusNotFound && hadSession:
		return fmt.Errorf("%w (HTTP 404)", ErrSessionNotFound)
	case resp.StatusCode >= 500:
		return fmt.Errorf("%w: HTTP %d", ErrUnavailable, resp.StatusCode)
	}
	return fmt.Errorf("unexpected HTTP status %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
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
