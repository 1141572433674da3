package backend

import (
	"container/list"
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// streamQueue bounds the standalone GET streams of one connector. Each
// stream holds a pooled socket, so without a bound they could take the
// whole pool and starve calls. A client waiting for a slot costs a list
// entry rather than a parked goroutine: with thousands of sessions, most
// of them wait (SCALE held 8,400 such goroutines, some 70 MB of stacks).
type streamQueue struct {
	mu   sync.Mutex
	free int
	wait list.List // of *httpConn
}

// streamState is one client's standalone stream between connections.
type streamState struct {
	el *list.Element // in the queue; guarded by the queue's mu
	// Owned by whichever of the client's stream runs or backoff timers is
	// current; they follow one another.
	lastID  string
	backoff time.Duration
	// up, if set, is closed once the first GET has its answer (openStream
	// waits for it); set before the first run starts.
	up chan struct{}
}

const minStreamBackoff, maxStreamBackoff = 250 * time.Millisecond, 30 * time.Second

func newStreamQueue(n int) *streamQueue { return &streamQueue{free: n} }

// enqueue starts h's stream if a slot is free, or queues h for the next
// one. It reports whether the stream started. A client that closes while
// queued leaves the queue at once.
func (q *streamQueue) enqueue(h *httpConn) bool {
	q.mu.Lock()
	if h.c.ctx.Err() != nil {
		q.mu.Unlock()
		return false
	}
	if q.free > 0 {
		q.free--
		q.mu.Unlock()
		if !h.c.goTracked(func() { h.listen(q) }) {
			q.release()
			return false
		}
		return true
	}
	h.stream.el = q.wait.PushBack(h)
	q.mu.Unlock()
	return false
}

// release gives a slot to the first queued client still open, or frees it.
func (q *streamQueue) release() {
	for {
		q.mu.Lock()
		e := q.wait.Front()
		if e == nil {
			q.free++
			q.mu.Unlock()
			return
		}
		h := q.wait.Remove(e).(*httpConn)
		h.stream.el = nil
		q.mu.Unlock()
		if h.c.goTracked(func() { h.listen(q) }) {
			return
		}
	}
}

// forget takes a closed client out of the queue. The client calls it as
// it ends, after cancelling its context, so enqueue (which checks that
// context under mu) cannot put it back. A per-client context.AfterFunc did
// this before, at ~460 bytes per queued client: 4.6 MB at 1,000 sessions
// × 10 backends.
func (q *streamQueue) forget(h *httpConn) {
	q.mu.Lock()
	if h.stream.el != nil {
		q.wait.Remove(h.stream.el)
		h.stream.el = nil
	}
	q.mu.Unlock()
}

// listen runs one standalone GET stream, which carries server-initiated
// messages outside any call, on a slot of q. When it ends, the slot goes
// to the next client and this one queues again after a backoff, until
// Close, or for good if the backend has no such stream (405) or forgot
// the session (404, or 400 as TypeScript SDK servers answer).
func (h *httpConn) listen(q *streamQueue) {
	ctx := h.c.ctx
	st := &h.stream
	released := false
	defer func() {
		if !released { // listenOnce panicked: the slot must not leak
			q.release()
		}
	}()
	status, progressed, retry, err := h.listenOnce(ctx, &st.lastID)
	released = true
	q.release()
	if ctx.Err() != nil {
		return
	}
	if h.sub != nil && h.sub.restarting() {
		_ = q.enqueue(h) // a new filter: at once, not after a backoff
		return
	}
	if stopsForGood(status) {
		// 405: no such stream; 404 or 400 (how TypeScript SDK servers say
		// it): the backend session is gone, or a modern backend has no
		// subscriptions/listen.
		h.s.log.Debug("standalone stream: not available", "backend", h.s.name, "status", status)
		return
	}
	if err != nil {
		h.s.log.Debug("standalone stream dropped", "backend", h.s.name, "error", err)
	}
	if progressed || st.backoff == 0 {
		st.backoff = minStreamBackoff
	}
	wait := st.backoff
	if retry > 0 {
		wait = max(retry, minStreamBackoff) // a server cannot make us spin
	}
	st.backoff = min(2*st.backoff, maxStreamBackoff)
	// The wait needs no goroutine either: a timer queues the client again,
	// and the client's end stops it. That hook is dropped when the timer
	// fires: a stream that reconnects all day long must not pile one up
	// per reconnection on the client's context until the session ends.
	var unhook atomic.Pointer[func() bool]
	t := time.AfterFunc(wait, func() {
		if stop := unhook.Load(); stop != nil {
			(*stop)()
		}
		_ = q.enqueue(h)
	})
	stop := context.AfterFunc(ctx, func() { t.Stop() })
	unhook.Store(&stop)
}
