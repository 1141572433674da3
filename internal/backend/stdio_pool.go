package backend

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/vmcp/vmcp/internal/jsonrpc"
)

const (
	defaultWarmIdle = 5 * time.Minute
	defaultWarmInit = 5 * time.Second
	// warmRetryMax caps the wait between warm starts after failures, so a
	// broken command does not spawn in a loop.
	warmRetryMax = time.Minute
)

// warmPool keeps up to size started and initialized processes of one stdio
// backend for new sessions to take. Each process serves exactly one
// session: a taken process is the session's and never comes back.
//
// The handshake of a warm process is fixed before its session exists, and
// vmcp forwards each client's capabilities to the backends, which may shape
// what they offer by them (server-filesystem asks for roots only of a
// client that has them). So the pool learns its handshake from the
// sessions: it fills with the capabilities of the last session's client,
// and only a session whose client declares the same takes a warm process.
// The first session, and the first after a client that declares
// different capabilities, starts a process of its own.
//
// A warm process no session took within the idle timeout is stopped, and
// the pool stays empty until the next session comes: an unused backend
// costs nothing. One goroutine (run) refills and reaps; close stops it and
// terminates every idle process.
type warmPool struct {
	x    *stdioConnector
	size int
	idle time.Duration
	init time.Duration
	now  func() time.Time

	ctx  context.Context // ends with the pool; bounds warm starts
	stop context.CancelFunc
	wake chan struct{}  // buffered: asks run to refill
	done chan struct{}  // closed when run returns
	wg   sync.WaitGroup // warm starts and retirements under way

	mu       sync.Mutex
	profile  *ConnectOptions // the handshake warm processes get; nil until the first session
	key      string          // profileKey of profile
	ready    []*warmProc     // oldest first
	starting int
	dormant  bool // reaped for idleness: no refill until a session comes
	failures int  // consecutive failed warm starts
	retryAt  time.Time
	closed   bool
}

// warmProc is one idle, initialized process.
type warmProc struct {
	c     *client
	res   *InitializeResult
	park  *parkedHandler
	since time.Time
}

func newWarmPool(x *stdioConnector) *warmPool {
	o := x.opts
	p := &warmPool{
		x: x, size: o.Warm, idle: o.WarmIdleTimeout, init: o.InitTimeout, now: o.Now,
		wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
	if p.idle <= 0 {
		p.idle = defaultWarmIdle
	}
	if p.init <= 0 {
		p.init = defaultWarmInit
	}
	if p.now == nil {
		p.now = time.Now
	}
	p.ctx, p.stop = context.WithCancel(context.Background())
	go p.run()
	return p
}

// profileKey identifies a handshake: the initialize params as sent,
// compared as JSON values, so that key order and spacing do not matter.
func profileKey(o ConnectOptions) string {
	pv := o.ProtocolVersion
	if pv == "" {
		pv = LatestProtocolVersion
	}
	raw, err := initializeParams(pv, o)
	var v any
	if err != nil || json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	b, _ := json.Marshal(v) // maps marshal with sorted keys
	return string(b)
}

// take returns a warm process initialized with opts' handshake, now
// delivering to opts.Handler, or nil if there is none. It never blocks on
// a process start.
func (p *warmPool) take(opts ConnectOptions) (*client, *InitializeResult) {
	key := profileKey(opts)
	var stale []*warmProc
	var w *warmProc
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, nil
	}
	if key != p.key {
		// The ready processes do not fit this client; those to come will.
		stale, p.ready = p.ready, nil
		prof := opts
		prof.Handler, prof.ResumeSessionID = nil, ""
		p.profile, p.key = &prof, key
		p.failures, p.retryAt = 0, time.Time{}
	}
	p.dormant = false
	for len(p.ready) > 0 && w == nil {
		w, p.ready = p.ready[0], p.ready[1:]
		if w.c.conn.(*stdioConn).exitedEarly() {
			stale, w = append(stale, w), nil
		}
	}
	p.mu.Unlock()
	p.retire(stale)
	p.signal()
	if w == nil {
		return nil, nil
	}
	if w.park.bind(opts.Handler) {
		// The backend asked for roots while nobody could answer and gave
		// up; now that a client is there, tell it to ask again.
		w.c.goTracked(func() {
			ctx, cancel := context.WithTimeout(w.c.ctx, replyTimeout)
			defer cancel()
			_ = w.c.Notify(ctx, "notifications/roots/list_changed", nil)
		})
	}
	return w.c, w.res
}

// signal asks run to refill, without blocking.
func (p *warmPool) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *warmPool) run() {
	defer close(p.done)
	tick := time.NewTicker(max(p.idle/4, time.Second))
	defer tick.Stop()
	retry := time.NewTimer(0)
	<-retry.C
	defer retry.Stop()
	for {
		if d := p.fill(); d > 0 {
			retry.Reset(d)
		}
		select {
		case <-p.ctx.Done():
			return
		case <-p.wake:
		case <-retry.C:
		case <-tick.C:
			p.reap()
		}
	}
}

// fill starts the processes the pool lacks. While warm starts are failing
// it starts none and returns how long to wait.
func (p *warmPool) fill() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.profile == nil || p.dormant {
		return 0
	}
	if wait := p.retryAt.Sub(p.now()); wait > 0 {
		return wait
	}
	for len(p.ready)+p.starting < p.size {
		p.starting++
		prof, key := *p.profile, p.key
		p.wg.Go(func() { p.start(prof, key) })
	}
	return 0
}

// start makes one warm process with the handshake prof.
func (p *warmPool) start(prof ConnectOptions, key string) {
	park := newParkedHandler()
	prof.Handler = park
	ctx, cancel := context.WithTimeout(p.ctx, p.init)
	c, res, err := p.x.connectCold(ctx, prof)
	cancel()
	p.mu.Lock()
	p.starting--
	if err != nil {
		closing := p.closed
		if !closing {
			p.failed()
		}
		p.mu.Unlock()
		p.signal() // run waits out the backoff
		switch {
		case closing:
		case errors.Is(err, ErrProcessLimit):
			p.x.opts.Logger.Debug("warm stdio process not started", "backend", p.x.opts.Name, "err", err)
		default:
			p.x.opts.Logger.Warn("warm stdio process failed to start", "backend", p.x.opts.Name, "err", err)
		}
		return
	}
	if p.closed || key != p.key {
		p.mu.Unlock()
		_ = c.Close()
		return
	}
	p.failures = 0
	p.ready = append(p.ready, &warmProc{c: c, res: res, park: park, since: p.now()})
	p.mu.Unlock()
}

// failed records a failed warm start (or a warm process that died) and
// sets when to try again: 1s, 2s, 4s... up to warmRetryMax. p.mu is held.
func (p *warmPool) failed() {
	p.failures++
	wait := min(time.Second<<min(p.failures-1, 6), warmRetryMax)
	p.retryAt = p.now().Add(wait)
}

// reap stops the warm processes idle longer than the idle timeout, and
// those whose process exited on its own.
func (p *warmPool) reap() {
	now := p.now()
	var stale []*warmProc
	p.mu.Lock()
	keep := p.ready[:0]
	for _, w := range p.ready {
		switch {
		case w.c.conn.(*stdioConn).exitedEarly():
			p.failed()
			stale = append(stale, w)
		case now.Sub(w.since) >= p.idle:
			p.dormant = true
			stale = append(stale, w)
		default:
			keep = append(keep, w)
		}
	}
	clear(p.ready[len(keep):])
	p.ready = keep
	p.mu.Unlock()
	p.retire(stale)
}

// retire terminates processes in the background; close waits for them.
// Once the pool is closed it terminates them before it returns.
func (p *warmPool) retire(ws []*warmProc) {
	if len(ws) == 0 {
		return
	}
	p.mu.Lock()
	if !p.closed {
		for _, w := range ws {
			p.wg.Go(func() { _ = w.c.Close() })
		}
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	// close may be waiting on wg already, and no Add may race its Wait.
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Go(func() { _ = w.c.Close() })
	}
	wg.Wait()
}

// close stops run, terminates every idle process and waits until all of
// them, and any being started, are reaped.
func (p *warmPool) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.done
		p.wg.Wait()
		return
	}
	p.closed = true
	stale := p.ready
	p.ready = nil
	p.mu.Unlock()
	p.stop()
	<-p.done
	p.retire(stale)
	p.wg.Wait()
}

// idleCount is the number of idle warm processes.
func (p *warmPool) idleCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ready)
}

// exitedEarly reports whether the child has already exited.
func (s *stdioConn) exitedEarly() bool {
	select {
	case <-s.exited:
		return true
	default:
		return false
	}
}

// parkedHandler is the connect-time handler of a warm process. Until a
// session takes the process nobody can be told anything: notifications
// are dropped (the session lists everything once it has the process, so a
// list_changed from before is already covered), pings are answered, and
// other requests wait for the session and then go to its handler.
type parkedHandler struct {
	bound chan struct{}
	h     Handler // set before bound is closed

	mu      sync.Mutex
	isSet   bool
	lapsed  bool // a roots/list ended before a session was there
	waiting int  // roots/list requests parked now
}

func newParkedHandler() *parkedHandler { return &parkedHandler{bound: make(chan struct{})} }

// bind directs everything to h from now on. It reports whether a roots/list
// the backend asked before may go unanswered: one that lapsed, or one still
// parked, which the backend may have given up on already (its cancellation
// can be in flight). Asking the backend to list again is harmless when the
// parked one is answered after all.
func (p *parkedHandler) bind(h Handler) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.isSet {
		return false
	}
	p.isSet, p.h = true, h
	close(p.bound)
	return p.lapsed || p.waiting > 0
}

func (p *parkedHandler) Notify(ctx context.Context, method string, params json.RawMessage) {
	select {
	case <-p.bound:
		if p.h != nil {
			p.h.Notify(ctx, method, params)
		}
	default:
	}
}

// await waits for a session to bind. roots says the request is a
// roots/list, which bind must know about.
func (p *parkedHandler) await(ctx context.Context, roots bool) error {
	if roots {
		p.mu.Lock()
		p.waiting++
		p.mu.Unlock()
		defer func() {
			p.mu.Lock()
			p.waiting--
			p.mu.Unlock()
		}()
	}
	select {
	case <-p.bound:
		return nil
	case <-ctx.Done():
		if roots {
			p.mu.Lock()
			p.lapsed = p.lapsed || !p.isSet
			p.mu.Unlock()
		}
		return ctx.Err()
	}
}

func (p *parkedHandler) Request(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	select {
	case <-p.bound:
	default:
		if method == "ping" {
			return json.RawMessage("{}"), nil
		}
		if err := p.await(ctx, method == "roots/list"); err != nil {
			return nil, err
		}
	}
	if p.h == nil {
		if method == "ping" {
			return json.RawMessage("{}"), nil
		}
		return nil, jsonrpc.Errorf(jsonrpc.CodeMethodNotFound, "method not found: %s", method)
	}
	return p.h.Request(ctx, method, params)
}
