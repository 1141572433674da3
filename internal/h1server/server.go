// Package h1server serves the requests that carry MCP calls, plain
// HTTP/1.1 POSTs to one path, on the connection's own goroutine, and hands
// every other connection to a net/http server.
//
// net/http spends, per request, a goroutine that watches the connection
// for the client going away, plus the parsing and deadline changes around
// it; for a gateway whose requests are small and answered in about a
// millisecond, that was a large share of its CPU per call. Here a POST is
// read, handled and answered in one goroutine, and its answer usually
// leaves in one write. The client is watched only while a response
// streams.
//
// Anything else, at any request boundary (another method or path, chunked
// or 100-continue bodies, a head too large or in any way unusual, HTTP/1.0,
// upgrades), moves the connection, with the bytes already read, to the
// fallback http.Server, which serves it from then on and answers every
// error exactly as it always has.
package h1server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vmcp/vmcp/internal/sockio"
)

// Server serves one listener. Set the fields, then call Serve once.
// ReadHeaderTimeout, IdleTimeout and the handler are taken from Fallback,
// so both paths behave alike.
type Server struct {
	// Fallback serves every connection the fast path hands over. Its
	// Handler also serves the fast-path requests. Required.
	Fallback *http.Server
	// Path is the one path whose POSTs take the fast path.
	Path   string
	Logger *slog.Logger

	mu      sync.Mutex
	conns   map[*conn]struct{}
	ln      net.Listener
	handoff *chanListener
	closing atomic.Bool

	// Response buffers are taken per request and returned after it, so an
	// idle keep-alive connection holds only its read buffer.
	writers sync.Pool // *bufio.Writer
	bodies  sync.Pool // *[]byte
}

// Serve accepts connections on ln until Shutdown, then returns
// http.ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		ln.Close()
		return http.ErrServerClosed
	}
	s.ln = ln
	s.conns = make(map[*conn]struct{})
	s.handoff = newChanListener(ln.Addr())
	s.mu.Unlock()
	fellBack := make(chan error, 1)
	go func() { fellBack <- s.Fallback.Serve(s.handoff) }()

	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				<-fellBack // Shutdown closes the fallback too
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) {
				// Out of descriptors or a passing fault: back off as
				// net/http does rather than spin.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.Logger.Warn("accepting a connection failed; retrying", "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			s.handoff.Close()
			<-fellBack
			return err
		}
		delay = 0
		fc := s.newConn(c)
		if fc == nil {
			c.Close()
			continue
		}
		go fc.serve()
	}
}

// Shutdown stops accepting, closes idle connections, lets requests in
// flight finish within ctx, and shuts the fallback down with ctx (which
// runs its RegisterOnShutdown hooks). It returns ctx's error if some
// connection was still busy when ctx ended.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true) // under mu: Serve either sees it or has set ln
	ln := s.ln
	s.mu.Unlock()
	if ln == nil {
		return s.Fallback.Shutdown(ctx)
	}
	ln.Close()
	fallback := make(chan error, 1)
	go func() { fallback <- s.Fallback.Shutdown(ctx) }()

	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var err error
wait:
	for s.closeIdle() > 0 {
		select {
		case <-ctx.Done():
			err = ctx.Err()
			s.closeAll()
			break wait
		case <-tick.C:
		}
	}
	return errors.Join(err, <-fallback)
}

// closeIdle closes the connections waiting for a request and returns how
// many remain, busy or idle.
func (s *Server) closeIdle() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.idle.Load() {
			c.rwc.Close()
		}
	}
	return len(s.conns)
}

func (s *Server) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.rwc.Close()
	}
}

func (s *Server) newConn(rwc net.Conn) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return nil
	}
	c := &conn{srv: s, rwc: rwc, remote: rwc.RemoteAddr().String(), hdr: make(http.Header)}
	c.idle.Store(true)
	c.br = bufio.NewReaderSize(&c.in, 4096)
	c.in.c = sockio.Wrap(rwc)
	s.conns[c] = struct{}{}
	return c
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// conn is one client connection on the fast path. Only its own goroutine
// touches it, apart from idle (read by Shutdown) and the watcher it starts
// while a response streams.
type conn struct {
	srv    *Server
	rwc    net.Conn
	remote string
	in     stashReader
	br     *bufio.Reader
	bw     *bufio.Writer // only while a request is served; see takeBuffers
	bodyp  *[]byte       // holds resp.body's buffer for the pool, likewise
	idle   atomic.Bool

	resp    response
	base    *http.Request // what every request of the connection shares
	hdr     http.Header   // the current request's header, reused
	vals    []string      // backs hdr's values, reused
	body    bodyReader    // the current request's
	scratch []byte
	keys    []string
	close   bool // this response is the connection's last

	idleSince time.Time // when the read deadline was last armed; zero: armed otherwise
	dateSec   int64     // the second dateVal was formatted for
	dateVal   []byte

	// the client watcher, while a response streams
	watching bool
	watchEnd chan struct{}
	gone     atomic.Bool // the client closed or reset the connection
	cancel   context.CancelFunc
}

// serve reads requests until the connection closes or leaves for the
// fallback.
func (c *conn) serve() {
	handedOff := false
	defer func() {
		c.srv.forget(c)
		if !handedOff {
			c.rwc.Close()
		}
	}()
	fb := c.srv.Fallback
	// One context serves every request of the connection: it ends when the
	// connection does, or when a streaming response finds the client gone.
	// (net/http makes one per request and cancels it when the handler
	// returns; vmcp's handlers keep nothing that needs that.)
	ctx, cancelConn := context.WithCancel(context.Background())
	defer cancelConn()
	c.cancel = cancelConn
	c.base = (&http.Request{
		Method:     http.MethodPost,
		URL:        &url.URL{Path: c.srv.Path},
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		RemoteAddr: c.remote,
		RequestURI: c.srv.Path,
	}).WithContext(ctx)
	for {
		c.idle.Store(true)
		if c.srv.closing.Load() {
			return
		}
		c.armIdleDeadline(fb.IdleTimeout)
		if _, err := c.br.Peek(1); err != nil {
			return
		}
		c.idle.Store(false)
		raw, ok, err := c.readHead(fb.ReadHeaderTimeout)
		if err != nil {
			return // timed out or gone mid-head: nothing to hand over
		}
		if !ok {
			handedOff = c.handOff()
			return
		}
		clear(c.hdr)
		h, ok := parseHead(raw, c.srv.Path, c.hdr, c.vals)
		if !ok {
			handedOff = c.handOff()
			return
		}
		c.vals = h.vals
		c.br.Discard(len(raw))
		if !c.serveOne(&h) {
			return
		}
	}
}

// readHead returns the buffered request head, blank line included,
// reading more as needed. ok is false when the head is for net/http: it
// does not fit the buffer (net/http reads larger ones, up to its
// MaxHeaderBytes) or has bare LF line ends; the bytes read so far stay
// buffered for the handoff. err is set when the connection failed or the
// head did not arrive in time.
func (c *conn) readHead(timeout time.Duration) (raw []byte, ok bool, err error) {
	for first := true; ; first = false {
		buf, _ := c.br.Peek(c.br.Buffered())
		switch i := indexHeadEnd(buf); {
		case i > 0:
			return buf[:i], true, nil
		case i == bareLF:
			return nil, false, nil // waiting for CR LF CR LF would stall
		}
		if c.br.Buffered() == c.br.Size() {
			return nil, false, nil
		}
		if first {
			// The head came in pieces: from here it must arrive within
			// ReadHeaderTimeout, as in net/http.
			c.idleSince = time.Time{}
			setReadDeadline(c.rwc, timeout)
		}
		if _, err := c.br.Peek(c.br.Buffered() + 1); err != nil {
			return nil, false, err
		}
	}
}

// indexHeadEnd returns the length of the head in b up to and including
// CR LF CR LF, -1 if b holds no end yet, or bareLF.
func indexHeadEnd(b []byte) int {
	for i, c := range b {
		if c != '\n' {
			continue
		}
		if i == 0 || b[i-1] != '\r' {
			return bareLF
		}
		if i >= 3 && b[i-2] == '\n' && b[i-3] == '\r' {
			return i + 1
		}
	}
	return -1
}

const bareLF = -2

// serveOne runs handle, and like net/http keeps a panicking handler from
// taking the process down: the panic is logged with its stack (unless it
// is http.ErrAbortHandler) and the connection closes.
func (c *conn) serveOne(h *head) (ok bool) {
	defer func() {
		if p := recover(); p != nil {
			c.stopWatching()
			if p != http.ErrAbortHandler {
				c.srv.Logger.Error("panic serving a request; connection closed", "remote", c.remote, "panic", p, "stack", string(debug.Stack()))
			}
			ok = false
		}
	}()
	return c.handle(h)
}

// handle serves one request and reports whether the connection can carry
// another.
func (c *conn) handle(h *head) bool {
	c.close = h.close
	c.body = bodyReader{br: c.br, n: h.contentLength}
	req := new(http.Request)
	*req = *c.base // the connection's context comes with the copy
	req.Header = h.header
	req.Body = &c.body
	req.ContentLength = h.contentLength
	req.Host = h.host
	if c.resp.header == nil {
		c.resp.header = make(http.Header)
	}
	clear(c.resp.header)
	// Not deferred: after a panic a goroutine of the handler may still
	// write to the response, so its buffers must not go to another
	// connection.
	c.takeBuffers()
	c.srv.Fallback.Handler.ServeHTTP(&c.resp, req)
	c.stopWatching()
	// An unread body is drained when small; a large one (a 413, say)
	// closes the connection instead of being read.
	if c.body.n > 0 {
		if c.body.n > 256<<10 {
			c.close = true
		} else if _, err := io.Copy(io.Discard, &c.body); err != nil {
			c.close = true
		}
	}
	ok := c.resp.finish()
	err := c.bw.Flush()
	c.returnBuffers()
	return ok && err == nil && !c.close && !c.gone.Load()
}

// takeBuffers gives the connection a response writer and body buffer from
// the server's pools for one request; returnBuffers gives them back.
func (c *conn) takeBuffers() {
	bw, _ := c.srv.writers.Get().(*bufio.Writer)
	if bw == nil {
		bw = bufio.NewWriterSize(nil, 4096)
	}
	bw.Reset(c.in.c)
	c.bw = bw
	bp, _ := c.srv.bodies.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	c.bodyp = bp
	c.resp = response{c: c, header: c.resp.header, body: (*bp)[:0]}
}

func (c *conn) returnBuffers() {
	c.bw.Reset(nil)
	c.srv.writers.Put(c.bw)
	c.bw = nil
	if b := c.resp.body; cap(b) <= maxBuffered { // a large answer's buffer is not kept
		*c.bodyp = b[:0]
		c.srv.bodies.Put(c.bodyp)
	}
	c.bodyp, c.resp.body = nil, nil
}

// closeAfter reports whether the current response is the connection's
// last.
func (c *conn) closeAfter() bool {
	if c.srv.closing.Load() {
		c.close = true
	}
	return c.close
}

// handOff moves the connection, with what was read of it, to the
// fallback server. It reports false when the fallback no longer accepts.
func (c *conn) handOff() bool {
	c.rwc.SetReadDeadline(time.Time{})
	buffered, _ := c.br.Peek(c.br.Buffered())
	pc := &prefixConn{Conn: c.rwc, pre: append([]byte(nil), buffered...)}
	if c.in.has {
		pc.pre = append([]byte{c.in.b}, pc.pre...)
	}
	return c.srv.handoff.deliver(pc)
}

// watchClient starts, for a response that streams, a read that ends the
// request's context when the client goes away: what net/http does for
// every request. It starts only once the body is read and nothing else is
// buffered, so it is the connection's only reader. A client that sends its
// next request meanwhile stops the watch; its first byte is kept for the
// next read.
func (c *conn) watchClient() {
	if c.watching || c.br.Buffered() > 0 || c.body.n > 0 {
		return
	}
	c.watching = true
	c.watchEnd = make(chan struct{})
	c.idleSince = time.Time{} // a stream may outlast any deadline
	c.rwc.SetReadDeadline(time.Time{})
	go func() {
		defer close(c.watchEnd)
		var b [1]byte
		n, err := c.rwc.Read(b[:])
		if n == 1 {
			c.in.b, c.in.has = b[0], true
			return
		}
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			c.gone.Store(true)
			c.cancel()
		}
	}()
}

// stopWatching ends the watcher, if any, and waits for it.
func (c *conn) stopWatching() {
	if !c.watching {
		return
	}
	c.rwc.SetReadDeadline(aLongTimeAgo)
	<-c.watchEnd
	c.rwc.SetReadDeadline(time.Time{})
	c.watching = false
}

var aLongTimeAgo = time.Unix(1, 0)

// armIdleDeadline bounds the wait for the next request. Resetting a
// deadline costs a timer update per request, so a deadline set less than
// half the timeout ago is kept: a connection then closes after between
// half and all of the timeout without a request. The deadline also bounds
// reading a head that arrives whole and its body; a head that arrives in
// pieces gets ReadHeaderTimeout instead.
func (c *conn) armIdleDeadline(timeout time.Duration) {
	if timeout <= 0 {
		if !c.idleSince.IsZero() {
			return
		}
		c.idleSince = time.Unix(0, 1) // marks "no deadline set"
		c.rwc.SetReadDeadline(time.Time{})
		return
	}
	now := time.Now()
	if !c.idleSince.IsZero() && now.Sub(c.idleSince) < timeout/2 {
		return
	}
	c.idleSince = now
	c.rwc.SetReadDeadline(now.Add(timeout))
}

func setReadDeadline(c net.Conn, d time.Duration) {
	if d > 0 {
		c.SetReadDeadline(time.Now().Add(d))
	} else {
		c.SetReadDeadline(time.Time{})
	}
}

// stashReader reads the connection, first returning the byte the client
// watcher read, if any.
type stashReader struct {
	c   net.Conn
	b   byte
	has bool
}

func (r *stashReader) Read(p []byte) (int, error) {
	if r.has && len(p) > 0 {
		p[0], r.has = r.b, false
		return 1, nil
	}
	return r.c.Read(p)
}

// bodyReader reads exactly a request's Content-Length bytes.
type bodyReader struct {
	br *bufio.Reader
	n  int64
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.br.Read(p)
	b.n -= int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if b.n == 0 && err == nil {
		err = io.EOF
	}
	return n, err
}

func (b *bodyReader) Close() error { return nil }
