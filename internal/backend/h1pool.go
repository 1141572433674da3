package backend

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// h1Pool is vmcp's own HTTP/1.1 client for one Streamable HTTP backend: a
// bounded pool of keep-alive connections on which the calling goroutine
// writes its request and reads the response itself. net/http's Transport
// hands each request to a writer goroutine and each response back from a
// reader goroutine; on a gateway's hot path those handoffs, and the
// allocations around them, cost more than the request itself.
//
// The pool counts a socket from the moment its dial starts until Close on
// it has returned, so at no time are more than max sockets open to the
// backend. It is safe for concurrent use.
type h1Pool struct {
	addr   string // host:port to dial
	host   string // Host header
	target string // request-target: path and query
	tls    *tls.Config
	dialer net.Dialer
	max    int
	idleTO time.Duration

	mu      sync.Mutex
	open    int            // sockets open or being dialed
	idle    []*h1Conn      // most recently used last
	waiters []chan *h1Conn // callers waiting for a connection, oldest first
	sweep   *time.Timer    // closes connections idle too long; nil when none idle
	bufs    sync.Pool      // *bufio.Reader of closed connections
	// noTails is set once the backend was seen to keep a stream open after
	// its response: bodies are then drained, not left (see h1Body.leave).
	noTails atomic.Bool
}

// h1Conn is one pooled connection.
type h1Conn struct {
	p        *h1Pool
	nc       net.Conn
	peek     *peeker // liveness check of nc's socket; nil if none
	br       *bufio.Reader
	wbuf     []byte
	idleAt   time.Time
	reused   bool    // it has carried a request before
	deadline bool    // a read deadline is set (by a body's drain)
	tail     *h1Body // the previous response's body, left unread
}

func newH1Pool(u *url.URL, max int, idle time.Duration, tlsConf *tls.Config) *h1Pool {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	p := &h1Pool{
		addr:   net.JoinHostPort(u.Hostname(), port),
		host:   u.Host,
		target: u.RequestURI(),
		dialer: net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second},
		max:    max,
		idleTO: idle,
	}
	if u.Scheme == "https" {
		if tlsConf == nil {
			tlsConf = &tls.Config{}
		} else {
			tlsConf = tlsConf.Clone()
		}
		if tlsConf.ServerName == "" {
			tlsConf.ServerName = u.Hostname()
		}
		tlsConf.NextProtos = []string{"http/1.1"}
		p.tls = tlsConf
	}
	return p
}

// errPoolWrite marks a request that failed on a connection that had
// carried requests before, while being written or before any byte of the
// response: the backend had closed it while idle and never processed the
// request, so one retry is safe.
var errPoolWrite = errors.New("write on a reused connection failed")

// do sends one request and reads the response head. body nil means no
// body. The response body must be closed. When ctx ends, blocked reads
// and writes fail at once and the connection is discarded.
func (p *h1Pool) do(ctx context.Context, method string, hdr *header, body []byte, wantSID bool) (*response, error) {
	resp, err := p.try(ctx, method, hdr, body, wantSID)
	if errors.Is(err, errPoolWrite) && ctx.Err() == nil {
		resp, err = p.try(ctx, method, hdr, body, wantSID)
	}
	if err != nil && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return resp, err
}

func (p *h1Pool) try(ctx context.Context, method string, hdr *header, body []byte, wantSID bool) (*response, error) {
	c, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	var stop func() bool
	if ctx.Done() != nil {
		nc := c.nc
		stop = context.AfterFunc(ctx, func() { _ = nc.SetDeadline(aLongTimeAgo) })
	}
	fail := func(err error) (*response, error) {
		if stop != nil {
			stop()
		}
		p.discard(c)
		return nil, err
	}
	if err := c.write(method, hdr.raw, body); err != nil {
		if c.reused {
			err = errors.Join(errPoolWrite, err)
		}
		return fail(err)
	}
	if _, err := c.br.Peek(1); err != nil && c.reused {
		// The connection was closed before a byte of the response came
		// back: the backend dropped it while idle (or restarted), as the
		// request went out, and never read it. One retry is safe.
		return fail(errors.Join(errPoolWrite, err))
	}
	h, err := readHead(c.br, wantSID)
	if err != nil {
		return fail(err)
	}
	b := &h1Body{c: c, reuse: !h.close, stop: stop}
	switch {
	case method == "HEAD" || h.status == 204 || h.status == 304 || h.status == 101:
		b.kind = bodyNone
		b.reuse = b.reuse && h.status != 101
	case h.chunked:
		b.kind = bodyChunked
	case h.length >= 0:
		b.kind, b.remain = bodyFixed, h.length
	default:
		b.kind, b.reuse = bodyToEOF, false
	}
	if b.kind == bodyNone || (b.kind == bodyFixed && b.remain == 0) {
		b.done = true
	}
	return &response{status: h.status, mediaType: h.mediaType, sessionID: h.sessionID, contentLength: h.length, body: b}, nil
}

// write sends the request head and body, in one write when small.
func (c *h1Conn) write(method string, hdr, body []byte) error {
	c.wbuf = appendRequest(c.wbuf[:0], method, c.p.target, c.p.host, hdr, body)
	var err error
	if len(body) <= inlineBody {
		c.wbuf = append(c.wbuf, body...)
		_, err = c.nc.Write(c.wbuf)
	} else {
		bufs := net.Buffers{c.wbuf, body}
		_, err = bufs.WriteTo(c.nc)
	}
	if cap(c.wbuf) > 2*inlineBody {
		c.wbuf = nil
	}
	return err
}

// get returns an idle connection, a new one if fewer than max are open, or
// waits for one of those.
func (p *h1Pool) get(ctx context.Context) (*h1Conn, error) {
	for {
		p.mu.Lock()
		if n := len(p.idle); n > 0 {
			c := p.idle[n-1]
			p.idle[n-1] = nil
			p.idle = p.idle[:n-1]
			p.mu.Unlock()
			if c.ready(time.Now()) {
				return c, nil
			}
			p.discard(c)
			continue
		}
		if p.open < p.max {
			p.open++
			p.mu.Unlock()
			c, err := p.dial(ctx)
			if err != nil {
				p.freed()
				return nil, err
			}
			return c, nil
		}
		w := make(chan *h1Conn, 1)
		p.waiters = append(p.waiters, w)
		p.mu.Unlock()
		select {
		case c := <-w:
			if c != nil {
				if c.ready(time.Now()) {
					return c, nil
				}
				p.discard(c)
			}
			// Otherwise a socket closed, so one may be dialed: try again.
		case <-ctx.Done():
			p.mu.Lock()
			queued := false
			for i, x := range p.waiters {
				if x == w {
					p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
					queued = true
					break
				}
			}
			p.mu.Unlock()
			if !queued {
				// Something was handed over meanwhile: pass it on.
				if c := <-w; c != nil {
					p.put(c)
				} else {
					p.wake()
				}
			}
			return nil, ctx.Err()
		}
	}
}

// ready reports whether a pooled connection can carry a request: not idle
// too long, the previous body's tail (if left) skipped, and not closed by
// the server meanwhile. The last is checked (a syscall, 3% of vmcp's CPU
// under load) only for a connection idle for peekAfter: servers close idle
// connections after seconds, and one closed sooner (a backend killed, say)
// is caught by try's retry before any response byte.
func (c *h1Conn) ready(now time.Time) bool {
	idle := now.Sub(c.idleAt)
	if idle >= c.p.idleTO {
		return false
	}
	if c.tail != nil && !c.skipTail() {
		return false
	}
	return idle < peekAfter || c.peek == nil || c.peek.alive()
}

// peekAfter is how long a connection may sit idle before it is checked for
// a close by the server before reuse.
const peekAfter = time.Second

func (p *h1Pool) dial(ctx context.Context) (*h1Conn, error) {
	nc, err := p.dialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	var peek *peeker
	if tcp, ok := nc.(*net.TCPConn); ok {
		if rc, err := tcp.SyscallConn(); err == nil {
			peek = newPeeker(rc)
		}
	}
	if p.tls != nil {
		tc := tls.Client(nc, p.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, err
		}
		nc = tc
	}
	br, _ := p.bufs.Get().(*bufio.Reader)
	if br == nil {
		br = bufio.NewReaderSize(nc, 4<<10)
	} else {
		br.Reset(nc)
	}
	return &h1Conn{p: p, nc: nc, peek: peek, br: br}, nil
}

// put returns a connection whose last response was read to its end.
func (p *h1Pool) put(c *h1Conn) {
	if c.deadline {
		if err := c.nc.SetDeadline(time.Time{}); err != nil {
			p.discard(c)
			return
		}
		c.deadline = false
	}
	c.reused = true
	c.idleAt = time.Now()
	p.mu.Lock()
	if len(p.waiters) > 0 {
		w := p.waiters[0]
		p.waiters = p.waiters[1:]
		p.mu.Unlock()
		w <- c
		return
	}
	p.idle = append(p.idle, c)
	if p.sweep == nil {
		p.sweep = time.AfterFunc(p.idleTO, p.closeExpired)
	}
	p.mu.Unlock()
}

// discard closes a connection that cannot be reused and frees its slot,
// in that order, so the count of open sockets never runs ahead of the
// kernel's.
func (p *h1Pool) discard(c *h1Conn) {
	_ = c.nc.Close()
	c.br.Reset(nil)
	p.bufs.Put(c.br)
	p.freed()
}

// freed gives up one socket's slot and lets a waiter dial.
func (p *h1Pool) freed() {
	p.mu.Lock()
	p.open--
	p.mu.Unlock()
	p.wake()
}

// wake tells the oldest waiter, if any, to try again.
func (p *h1Pool) wake() {
	p.mu.Lock()
	if len(p.waiters) == 0 {
		p.mu.Unlock()
		return
	}
	w := p.waiters[0]
	p.waiters = p.waiters[1:]
	p.mu.Unlock()
	w <- nil
}

// closeExpired closes connections idle for idleTO and reschedules itself
// while any remain idle.
func (p *h1Pool) closeExpired() {
	now := time.Now()
	p.mu.Lock()
	var expired []*h1Conn
	keep := p.idle[:0]
	for _, c := range p.idle {
		if now.Sub(c.idleAt) >= p.idleTO {
			expired = append(expired, c)
		} else {
			keep = append(keep, c)
		}
	}
	clear(p.idle[len(keep):])
	p.idle = keep
	p.sweep = nil
	if len(keep) > 0 {
		// The oldest is first: it expires next.
		p.sweep = time.AfterFunc(p.idleTO-now.Sub(keep[0].idleAt), p.closeExpired)
	}
	p.mu.Unlock()
	for _, c := range expired {
		p.discard(c)
	}
}

// closeIdle closes every idle connection.
func (p *h1Pool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	if p.sweep != nil {
		p.sweep.Stop()
		p.sweep = nil
	}
	p.mu.Unlock()
	for _, c := range idle {
		p.discard(c)
	}
}
