package backend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	sdkjsonrpc "github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/propagation"
)

// NewSSE returns a Connector for a legacy HTTP+SSE backend (protocol
// 2024-11-05), using the go-sdk's SSE client transport. POSTs share a pool
// of opts.MaxConnsPerHost sockets; each session also holds its own GET
// stream, which that protocol cannot do without.
func NewSSE(opts HTTPOptions) Connector {
	s, err := newHTTPShared(opts)
	if err != nil {
		return brokenConnector{err}
	}
	// The streams get the pool's settings (TLS, proxy) but no bound: each
	// session holds its own.
	streams := s.tr.Clone()
	streams.DisableKeepAlives = true
	streams.MaxConnsPerHost, streams.MaxIdleConnsPerHost, streams.MaxIdleConns = 0, 0, 0
	return &sseConnector{
		s:       s,
		streams: streams,
		hc: &http.Client{
			Transport:     &sseRoundTripper{origin: s.url, headers: opts.Headers, pool: s.tr, streams: streams, prop: s.prop},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

type sseConnector struct {
	s       *httpShared
	streams *http.Transport
	hc      *http.Client
}

func (x *sseConnector) Close() error {
	x.s.tr.CloseIdleConnections()
	x.streams.CloseIdleConnections()
	return nil
}

func (x *sseConnector) Connect(ctx context.Context, opts ConnectOptions) (Client, *InitializeResult, error) {
	s := x.s
	c := newClient(s.name, s.timeout, s.log, opts.Handler)
	// The SDK ties the GET stream to the context given to Connect, so it
	// gets the client's lifetime; ctx only bounds the connecting.
	stop := context.AfterFunc(ctx, c.cancel)
	t := &mcp.SSEClientTransport{Endpoint: s.url.String(), HTTPClient: x.hc, MaxEventSize: s.max}
	over := &eventWatch{max: s.max}
	sc, err := t.Connect(context.WithValue(contextWithToken(c.ctx, opts.Token), eventWatchKey{}, over))
	if !stop() {
		if sc != nil {
			_ = sc.Close()
		}
		return nil, nil, opError(s.name, "connect", context.Cause(ctx))
	}
	if err != nil {
		c.cancel()
		return nil, nil, opError(s.name, "connect", unavailable(err))
	}
	conn := &sseConn{sc: sc}
	conn.mux = newMux(c, &sdkFrames{conn: sc, ctx: c.ctx, c: c, token: opts.Token})
	c.conn = conn
	conn.wg.Add(1)
	go func() {
		defer conn.wg.Done()
		conn.readLoop(func(err error) error {
			if over.exceeded() {
				// The SDK ends the stream on an event over its limit
				// and says only EOF.
				return fmt.Errorf("%w: the event stream ended on an event over the limit: %w", ErrUnavailable, tooLarge(s.max))
			}
			return fmt.Errorf("%w: event stream ended: %v", ErrUnavailable, err)
		})
	}()
	res, err := c.initialize(ctx, opts)
	if err != nil {
		_ = c.Close()
		return nil, nil, err
	}
	return c, res, nil
}

// sseConn is one legacy SSE session.
type sseConn struct {
	*mux
	sc mcp.Connection
	wg sync.WaitGroup // the reader
}

// sessionID is empty: the SDK's SSE client does not expose the session.
func (s *sseConn) sessionID() string { return "" }

func (s *sseConn) shutdown() error {
	s.fail(ErrClosed)
	err := s.sc.Close()
	s.wg.Wait()
	return err
}

// sdkFrames adapts an SDK connection to msgConn. Messages are re-encoded at
// this boundary; legacy SSE is not the hot path.
type sdkFrames struct {
	conn  mcp.Connection
	ctx   context.Context // the client's lifetime
	c     *client
	token TokenSource // nil: none
}

func (f *sdkFrames) read() ([]byte, error) {
	for {
		msg, err := f.conn.Read(f.ctx)
		if err != nil {
			if errors.Is(err, io.EOF) || f.ctx.Err() != nil {
				return nil, err
			}
			f.c.log.Debug("malformed message from backend", "backend", f.c.name, "error", err)
			continue
		}
		data, err := sdkjsonrpc.EncodeMessage(msg)
		if err != nil {
			continue
		}
		return data, nil
	}
}

func (f *sdkFrames) write(ctx context.Context, raw []byte) error {
	msg, err := sdkjsonrpc.DecodeMessage(raw)
	if err != nil {
		return err
	}
	err = f.conn.Write(contextWithToken(ctx, f.token), msg)
	if err == io.EOF {
		// The SDK's own sign that its stream had ended and it sent
		// nothing; a failed POST is a *url.Error.
		return fmt.Errorf("%w: the event stream ended", errConnEnded)
	}
	return err
}

// sseRoundTripper adds the configured headers, and the bearer token of
// the client whose request it is, and routes the long-lived GET streams
// off the pool, so that sessions cannot starve POSTs of sockets. A 404 on
// a POST, or a 400 saying the session is unknown, becomes
// ErrSessionNotFound, and a 401 or 403 ErrUnauthorized: the SDK reports
// statuses only as text.
//
// Only the configured URL's origin is ever contacted: the backend's
// endpoint event chooses where the POSTs go, and one naming another
// scheme, host or port would get vmcp's configured credentials. Such a
// request fails with ErrForeignEndpoint before anything is sent (redirects
// are not followed either), so that backend fails to initialize.
type sseRoundTripper struct {
	origin  *url.URL // the configured URL
	headers map[string]string
	pool    http.RoundTripper
	streams http.RoundTripper
	prop    propagation.TextMapPropagator // nil: no trace context
}

// ErrForeignEndpoint means an SSE backend's endpoint event named
// another origin (scheme, host or port) than its configured URL's.
var ErrForeignEndpoint = errors.New("the SSE endpoint event names another origin than the configured url")

func (rt *sseRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	if !sameOrigin(req.URL, rt.origin) {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		// Scheme and host only: the endpoint's query holds a session ID.
		return nil, fmt.Errorf("%w (%s://%s, configured %s://%s); vmcp sends nothing there",
			ErrForeignEndpoint, req.URL.Scheme, req.URL.Host, rt.origin.Scheme, rt.origin.Host)
	}
	req = req.Clone(req.Context())
	for k, v := range rt.headers {
		req.Header.Set(k, v)
	}
	if rt.prop != nil {
		// The SDK sends with the call's context when it has one: its span
		// is the request's parent.
		rt.prop.Inject(req.Context(), propagation.HeaderCarrier(req.Header))
	}
	if ts := tokenFrom(req.Context()); ts != nil {
		h, err := withToken(req.Context(), ts, req.Header)
		if err != nil {
			return nil, err
		}
		req.Header = h
	}
	if req.Method == http.MethodGet {
		resp, err := rt.streams.RoundTrip(req)
		if err == nil && isRefusal(resp.StatusCode) {
			discardHTTP(resp)
			return nil, refused(resp.StatusCode)
		}
		if w, ok := req.Context().Value(eventWatchKey{}).(*eventWatch); ok && err == nil {
			resp.Body = &watchedBody{ReadCloser: resp.Body, w: w}
		}
		return resp, err
	}
	resp, err := rt.pool.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusNotFound:
		discardHTTP(resp)
		return nil, fmt.Errorf("%w (HTTP 404)", ErrSessionNotFound)
	case http.StatusUnauthorized, http.StatusForbidden:
		discardHTTP(resp)
		return nil, refused(resp.StatusCode)
	case http.StatusBadRequest:
		// The TypeScript SDK's servers answer an unknown session with 400.
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		if saysSessionLost(string(body)) {
			return nil, fmt.Errorf("%w (HTTP 400)", ErrSessionNotFound)
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
	}
	return resp, nil
}

// sameOrigin reports whether a and b have the same scheme, host and port,
// a missing port being the scheme's default.
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) &&
		portOrDefault(a) == portOrDefault(b)
}

func portOrDefault(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "https") {
		return "443"
	}
	return "80"
}

// eventWatch follows an SSE session's stream to tell whether it ended in
// the middle of an event longer than the SDK's MaxEventSize: the SDK ends
// the stream there with no error of its own, and vmcp can then say why.
type eventWatch struct {
	max  int
	run  int // bytes since the last blank line; the body's reader's only
	last byte
	cur  atomic.Int64 // run, after each read
}

// exceeded reports whether the stream stopped within an event over max.
func (w *eventWatch) exceeded() bool { return w.max > 0 && w.cur.Load() > int64(w.max) }

type eventWatchKey struct{}

// watchedBody is a GET stream's body seen by its eventWatch. Only the
// SDK's reader reads it.
type watchedBody struct {
	io.ReadCloser
	w *eventWatch
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	w := b.w
	for _, c := range p[:n] {
		switch {
		case c == '\n' && w.last == '\n':
			w.run = 0 // an event ends at a blank line
		case c != '\r':
			w.run++
		}
		if c != '\r' {
			w.last = c
		}
	}
	w.cur.Store(int64(w.run))
	return n, err
}
