package frontend

import (
	"bytes"
	"context"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// stream is one SSE stream of a session: the response stream of a POST, or
// the session's standalone stream that GET attaches to. Its events are kept,
// up to a bound, so a client that lost the connection can resume with
// Last-Event-ID. Producers never touch the network: push only appends, and
// the one attached writer copies events out without holding the lock while
// it writes.
type stream struct {
	id    int64
	limit int

	mu        sync.Mutex
	events    []event // ascending seq, at most limit
	next      int64   // seq of the next event; seq 0 is the priming event
	done      bool    // the response was pushed: no more events
	wake      chan struct{}
	delivered int64              // highest seq a writer wrote
	sent      bool               // the client was sent an event ID (set as its flush starts)
	detach    context.CancelFunc // ends the attached writer, if any
	pushed    func()             // called after each push; see onPush
}

type event struct {
	seq  int64
	data []byte
}

func newStream(id int64, limit int) *stream {
	return &stream{id: id, limit: limit, next: 1, wake: make(chan struct{})}
}

// push appends an event. After finish it does nothing, so nothing reaches a
// client after the response that ended the stream.
func (st *stream) push(data []byte) bool {
	st.mu.Lock()
	if st.done {
		st.mu.Unlock()
		return false
	}
	st.appendLocked(data)
	f := st.pushed
	st.mu.Unlock()
	if f != nil {
		f()
	}
	return true
}

// onPush sets a func called, outside the lock, after every push.
func (st *stream) onPush(f func()) {
	st.mu.Lock()
	st.pushed = f
	st.mu.Unlock()
}

// finish appends the last event (the response) and ends the stream.
func (st *stream) finish(data []byte) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.done {
		return
	}
	st.appendLocked(data)
	st.done = true
}

func (st *stream) appendLocked(data []byte) {
	st.events = append(st.events, event{seq: st.next, data: data})
	st.next++
	if len(st.events) > st.limit {
		n := copy(st.events, st.events[len(st.events)-st.limit:])
		clear(st.events[n:])
		st.events = st.events[:n]
	}
	close(st.wake)
	st.wake = make(chan struct{})
}

// sole reports whether the stream is done with a single event: the
// response, with nothing before it.
func (st *stream) sole() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.done && st.next == 2
}

// size returns the bytes of the events the stream keeps.
func (st *stream) size() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	n := 0
	for _, e := range st.events {
		n += len(e.data)
	}
	return n
}

// attach makes the caller the stream's only writer; an earlier writer (a
// connection the client has given up on) is ended.
func (st *stream) attach(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	st.mu.Lock()
	if st.detach != nil {
		st.detach()
	}
	st.detach = cancel
	st.mu.Unlock()
	return ctx, cancel
}

// pending returns the events after seq, whether the stream is done, and a
// channel closed when more arrive.
func (st *stream) pending(after int64) ([]event, bool, <-chan struct{}) {
	st.mu.Lock()
	defer st.mu.Unlock()
	i := sort.Search(len(st.events), func(i int) bool { return st.events[i].seq > after })
	out := append([]event(nil), st.events[i:]...)
	return out, st.done, st.wake
}

func (st *stream) markDelivered(seq int64) {
	st.mu.Lock()
	if seq > st.delivered {
		st.delivered = seq
	}
	st.mu.Unlock()
}

// primed reports whether the client was sent an event ID of the stream,
// and so can resume it.
func (st *stream) primed() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.sent
}

// markSent sets whether the client holds an event ID of the stream and
// reports whether that changed it.
func (st *stream) markSent(sent bool) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	changed := st.sent != sent
	st.sent = sent
	return changed
}

func (st *stream) lastDelivered() int64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.delivered
}

// eventID names an event across the session's streams.
func (st *stream) eventID(seq int64) string {
	return strconv.FormatInt(st.id, 10) + "-" + strconv.FormatInt(seq, 10)
}

func parseEventID(s string) (streamID, seq int64, ok bool) {
	a, b, found := strings.Cut(s, "-")
	if !found {
		return 0, 0, false
	}
	var err1, err2 error
	streamID, err1 = strconv.ParseInt(a, 10, 64)
	seq, err2 = strconv.ParseInt(b, 10, 64)
	return streamID, seq, err1 == nil && err2 == nil && streamID >= 0 && seq >= 0
}

// sseRetry is the reconnection delay vmcp suggests to clients.
const sseRetry = 1000 * time.Millisecond

// startSSE writes the event-stream headers and the priming event, which
// gives the client an event ID to resume from before any real event. It
// leaves them buffered: the caller flushes, or lets them go out with the
// response in one write.
func startSSE(w http.ResponseWriter, st *stream, after int64) error {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	b := make([]byte, 0, 48)
	b = append(b, "id: "...)
	b = append(b, st.eventID(after)...)
	b = append(b, "\nretry: "...)
	b = strconv.AppendInt(b, sseRetry.Milliseconds(), 10)
	b = append(b, "\ndata: \n\n"...)
	_, err := w.Write(b)
	return err
}

// heartbeat is how often an idle standalone stream gets a comment line, so
// proxies keep it open and a dead client is noticed.
const heartbeat = 25 * time.Second

// serve writes the stream's events after seq to w until the stream is done,
// ctx ends (client gone, writer replaced) or stop or closed is closed
// (shutdown, session closed). It flushes what is already buffered first
// (the priming event) unless the whole stream can go out at once; the last
// batch is left for the handler's return to send with the closing chunk.
//
// Each write must reach the connection within writeTimeout, so a client
// that stops reading cannot hold the writer forever. Between writes no
// deadline is set, so a healthy stream lives as long as its client. The
// deadline set for the last batch stays for the handler's return; on
// HTTP/1 the server's ConnState hook clears it (see [Server.ConnState]).
func (st *stream) serve(ctx context.Context, w http.ResponseWriter, after int64, stop, closed <-chan struct{}, writeTimeout time.Duration) error {
	out := sseWriter{w: w, rc: http.NewResponseController(w), timeout: writeTimeout}
	if _, done, _ := st.pending(after); !done {
		// Marked before the flush: a client may read the event ID and
		// hang up before the flush returns.
		first := st.markSent(true)
		if err := out.write(nil, true); err != nil {
			if first {
				st.markSent(false)
			}
			return err
		}
	}
	var buf []byte
	var tick <-chan time.Time
	if st.id == 0 {
		t := time.NewTicker(heartbeat)
		defer t.Stop()
		tick = t.C
	}
	for {
		evs, done, wake := st.pending(after)
		if len(evs) == 0 {
			if done {
				return nil
			}
			select {
			case <-wake:
				continue
			case <-ctx.Done():
				return ctx.Err()
			case <-stop:
				return nil
			case <-closed:
				return nil
			case <-tick:
				if err := out.write([]byte(": keepalive\n\n"), true); err != nil {
					return err
				}
				continue
			}
		}
		buf = buf[:0]
		for _, e := range evs {
			buf = append(buf, "id: "...)
			buf = append(buf, st.eventID(e.seq)...)
			buf = append(buf, "\nevent: message\n"...)
			buf = appendData(buf, e.data)
		}
		// The last batch is left for the handler's return to flush, with
		// the closing chunk.
		if err := out.write(buf, !done); err != nil {
			return err
		}
		after = evs[len(evs)-1].seq
		st.markDelivered(after)
		if done {
			return nil
		}
	}
}

// sseWriter writes a stream to its client, each write bounded in time.
type sseWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

// write writes b with a write deadline. With flush it sends b at once and
// then clears the deadline, so that an idle stream has none: on HTTP/2 a
// stream's deadline is a timer that resets the stream when it fires,
// writing or not.
func (o *sseWriter) write(b []byte, flush bool) error {
	// A ResponseWriter without deadlines (ErrNotSupported) writes
	// unbounded, as it would anyway.
	o.rc.SetWriteDeadline(time.Now().Add(o.timeout))
	if len(b) > 0 {
		if _, err := o.w.Write(b); err != nil {
			return err
		}
	}
	if !flush {
		return nil
	}
	if err := o.rc.Flush(); err != nil {
		return err
	}
	o.rc.SetWriteDeadline(time.Time{})
	return nil
}

// appendData appends data as SSE data lines. JSON from a backend may hold
// line breaks between tokens; each line gets its own "data:" field, which
// the client joins back with newlines.
func appendData(b, data []byte) []byte {
	for {
		b = append(b, "data: "...)
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			b = append(b, data...)
			return append(b, "\n\n"...)
		}
		b = append(b, data[:i]...)
		b = append(b, '\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
}
