package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/vmcp/vmcp/internal/jsonrpc"
	"github.com/vmcp/vmcp/internal/recovery"
)

// msgConn is a framed, bidirectional message connection: a child's
// stdin/stdout or a legacy SSE session.
type msgConn interface {
	// read returns the next message. It is called from one goroutine only;
	// the slice is valid until the next call.
	read() ([]byte, error)
	// write sends one message. It is safe for concurrent use.
	write(ctx context.Context, msg []byte) error
}

// mux runs JSON-RPC over a msgConn: one reader goroutine matches responses
// to waiting calls by id and hands everything else to the client's
// handlers. It implements the request half of conn.
type mux struct {
	c  *client
	mc msgConn

	mu      sync.Mutex
	pending map[int64]*pending
	err     error         // terminal error, set once
	done    chan struct{} // closed when err is set
}

type pending struct {
	ctx context.Context
	ch  chan reply // buffered: the reader never blocks on it
}

// reply is a call's response, or why it has none (its response was over
// the size limit).
type reply struct {
	msg *jsonrpc.Message
	err error
}

func newMux(c *client, mc msgConn) *mux {
	return &mux{c: c, mc: mc, pending: make(map[int64]*pending), done: make(chan struct{})}
}

func (m *mux) roundTrip(ctx context.Context, id int64, req []byte) (*jsonrpc.Message, error) {
	p := &pending{ctx: ctx, ch: make(chan reply, 1)}
	m.mu.Lock()
	if m.err != nil {
		m.mu.Unlock()
		return nil, m.ended()
	}
	m.pending[id] = p
	m.mu.Unlock()

	if err := m.send(ctx, req); err != nil {
		m.remove(id)
		return nil, err
	}
	select {
	case r := <-p.ch:
		return r.msg, r.err
	case <-ctx.Done():
		m.remove(id)
		return nil, ctx.Err()
	case <-m.done:
		select {
		case r := <-p.ch: // the response beat the failure
			return r.msg, r.err
		default:
			return nil, m.err // immutable once done is closed
		}
	}
}

func (m *mux) send(ctx context.Context, msg []byte) error {
	select {
	case <-m.done:
		return m.ended()
	default:
	}
	if err := m.mc.write(ctx, msg); err != nil {
		if errors.Is(err, errConnEnded) {
			// Nothing was sent: as ended, before the reader has seen the
			// end (or as ended itself, vmcp's close staying ErrClosed).
			select {
			case <-m.done:
				return m.ended()
			default:
			}
			return fmt.Errorf("%w: %w", ErrSessionNotFound, unavailable(err))
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		select {
		case <-m.done:
			return m.err
		default:
		}
		return unavailable(err)
	}
	return nil
}

// errConnEnded is what a msgConn's write returns, wrapped, when it sent
// nothing because the connection had ended on its own (the child exited,
// the event stream broke), which its reader may not have seen yet.
var errConnEnded = errors.New("the connection had ended; nothing sent")

// ended is the error for a message not sent because the connection had
// already ended. A stdio child's or an SSE stream's backend session lives
// and dies with its connection, so one that ended on its own (the child
// exited, the stream broke) is a lost session, and the owner may replace
// it and send the request there: this one never reached the backend. One
// that vmcp closed stays ErrClosed. Only called once done is closed.
func (m *mux) ended() error {
	if errors.Is(m.err, ErrUnavailable) {
		return fmt.Errorf("%w: %w", ErrSessionNotFound, m.err)
	}
	return m.err
}

func (m *mux) remove(id int64) {
	m.mu.Lock()
	delete(m.pending, id)
	m.mu.Unlock()
}

// fail ends the mux: pending and later calls get err. Only the first error
// counts.
func (m *mux) fail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err == nil {
		m.err = err
		m.pending = nil
		close(m.done)
	}
}

// readLoop reads until the connection fails; fatal turns the read error
// into the error that pending and later calls get. A panic while reading
// fails this connection only: its calls get ErrUnavailable, and the
// session replaces the client.
func (m *mux) readLoop(fatal func(error) error) {
	defer recovery.Recover(m.c.log, func(err error) {
		m.fail(fmt.Errorf("%w: %w", ErrUnavailable, err))
	}, "backend", m.c.name, "during", "reading")
	for {
		data, err := m.mc.read()
		var over *oversized
		if errors.As(err, &over) {
			m.skipped(over)
			continue
		}
		if err != nil {
			m.fail(fatal(err))
			return
		}
		msg, derr := jsonrpc.Decode(data, 0)
		if derr != nil {
			m.c.log.Debug("malformed message from backend", "backend", m.c.name, "error", derr)
			continue
		}
		if msg.Method == "" {
			id, ok := parseID(msg.ID)
			m.mu.Lock()
			p := m.pending[id]
			delete(m.pending, id)
			m.mu.Unlock()
			if ok && p != nil {
				p.ch <- reply{msg: msg}
			}
			continue
		}
		ctx, h := m.route(msg.Method)
		m.c.deliver(ctx, h, msg, m.send)
	}
}

// route picks where a server message goes. With exactly one client call
// in flight (one whose context carries a handler), it is that call's: the
// server most likely sent it while serving that call. Otherwise it goes to
// the connect-time handler, with the client's own context, as a message
// that belongs to no call: with several calls in flight the connection
// carries no sign of which one it serves, and tying a request to the wrong
// one would fail it when that call ended first. vmcp's own calls (the
// listing while the session is built) never claim a message, so a request
// the backend sent meanwhile does not end with them. roots/list is never
// claimed: the roots are the session's, and a server asks for them when
// it hears they changed, whatever call is in flight; a short call that
// claimed it would cancel it by ending.
func (m *mux) route(method string) (context.Context, Handler) {
	if sessionRequest(method) {
		return m.c.ctx, m.c.handler
	}
	m.mu.Lock()
	var owner *pending
	var h Handler
	claims := 0
	for _, p := range m.pending {
		if ph, ok := p.ctx.Value(handlerKey{}).(Handler); ok && ph != nil {
			owner, h = p, ph
			claims++
		}
	}
	m.mu.Unlock()
	if claims == 1 {
		return owner.ctx, h
	}
	return m.c.ctx, m.c.handler
}

// sessionRequest reports whether a server request belongs to the session
// whatever call carries it: roots/list, which a server sends when it hears
// the roots changed, on whichever stream it has at hand.
func sessionRequest(method string) bool { return method == "roots/list" }

// oversized is a msgConn's read error for a message over the size limit
// that it skipped, the connection going on: one response lost, not the
// backend session. head is the message's start, where a response's id
// usually is.
type oversized struct {
	err  error // wraps ErrTooLarge, naming the setting
	head []byte
}

func (o *oversized) Error() string { return o.err.Error() }
func (o *oversized) Unwrap() error { return o.err }

// skipped fails the call whose response was too large: the one its head
// names, else every call in flight, as any of them may have been it
// (their responses, if they come, are dropped). A request or notification
// from the backend that was too large fails no call.
func (m *mux) skipped(over *oversized) {
	m.c.log.Warn("a backend message over maxResponseBytes was dropped", "backend", m.c.name, "err", over.err)
	id, found, response := headID(over.head)
	if !response {
		return
	}
	m.mu.Lock()
	var failed []*pending
	if p := m.pending[id]; found && p != nil {
		failed = append(failed, p)
		delete(m.pending, id)
	} else {
		for id, p := range m.pending {
			failed = append(failed, p)
			delete(m.pending, id)
		}
	}
	m.mu.Unlock()
	for _, p := range failed {
		p.ch <- reply{err: over.err}
	}
}

// headID reads the start of a JSON-RPC message cut off by the size limit:
// response is false if it names a method (a request or notification),
// and found says whether its numeric id came before any member too long
// for head (as the Go and Python SDKs write it: jsonrpc, id, result).
func headID(head []byte) (id int64, found, response bool) {
	dec := json.NewDecoder(bytes.NewReader(head))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return 0, false, true
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			break
		}
		var v json.RawMessage
		switch key {
		case "method":
			return 0, false, false
		case "result", "error":
			return id, found, true // its value is what was too long
		case "id":
			var n json.Number
			if dec.Decode(&n) != nil {
				return id, found, true
			}
			if i, err := n.Int64(); err == nil {
				id, found = i, true
			}
			continue
		}
		if dec.Decode(&v) != nil {
			break
		}
	}
	return id, found, true
}
