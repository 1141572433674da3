package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/vmcp/vmcp/internal/jsonrpc"
)

const (
	// drainWait is how long to keep reading a POST's event stream after its
	// response for the server to end it, so that the connection can be
	// reused rather than torn down.
	drainWait = 200 * time.Millisecond
	// maxResumes bounds reconnections of a POST stream that bring nothing.
	maxResumes = 3
)

// readStream reads a POST's text/event-stream until the response to id
// arrives, delivering the server's notifications and requests meanwhile to
// the call's handler. If the server ends the stream early after giving
// event IDs, the stream is resumed with GET and Last-Event-ID.
func (h *httpConn) readStream(ctx context.Context, resp *response, id int64, res *reservation) (*jsonrpc.Message, error) {
	r := h.s.readers.Get().(*sseReader)
	defer func() { r.release(); h.s.readers.Put(r) }()
	handler := HandlerFrom(ctx, h.c.handler)
	body := resp.body
	var (
		lastID string
		retry  time.Duration
		idle   int
	)
	for {
		err := r.reset(ctx, body, res)
		var (
			m          *jsonrpc.Message
			progressed bool
		)
		if err == nil {
			m, progressed, err = h.readEvents(ctx, r, handler, id, &lastID, &retry)
		}
		if m != nil {
			h.drain(ctx, r, body, handler)
			return m, nil
		}
		_ = body.Close()
		if h.modern {
			lastID = "" // a 2026-07-28 stream cannot be resumed
		}
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, ErrTooLarge), errors.Is(err, ErrOverBudget), errors.Is(err, ErrMismatchedID):
			return nil, err
		case lastID == "" && errors.Is(err, io.EOF):
			return nil, fmt.Errorf("%w, and sent no event ID to resume it with", ErrNoResponse)
		case lastID == "":
			return nil, fmt.Errorf("%w: response stream ended before the response: %v", ErrUnavailable, err)
		}
		if progressed {
			idle = 0
		} else if idle++; idle > maxResumes {
			return nil, fmt.Errorf("%w: response stream could not be resumed: %v", ErrUnavailable, err)
		}
		if retry > 0 {
			t := time.NewTimer(retry)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			}
		}
		resp, err := h.do(ctx, http.MethodGet, h.resumeHeader(lastID), nil)
		if err != nil {
			return nil, transportError(err)
		}
		if resp.status/100 != 2 {
			err := h.s.statusError(resp, true)
			discard(resp)
			if errors.Is(err, ErrSessionNotFound) || jsonrpc.AsError(err) != nil {
				// The backend took the call before it forgot the session: it
				// may have run, so this must not read as a call the owner
				// can re-send on a new session.
				err = fmt.Errorf("%w: the backend session ended while the call ran", ErrNoResponse)
			}
			return nil, err
		}
		body = resp.body
	}
}

// readEvents reads events until the response to id, or the end of the
// stream. It reports whether any event arrived.
func (h *httpConn) readEvents(ctx context.Context, r *sseReader, handler Handler, id int64, lastID *string, retry *time.Duration) (*jsonrpc.Message, bool, error) {
	progressed := false
	for {
		ev, err := r.next()
		if err != nil {
			return nil, progressed, err
		}
		progressed = true
		if ev.hasID {
			*lastID = ev.id
		}
		if ev.retry > 0 {
			*retry = ev.retry
		}
		if len(ev.data) == 0 {
			continue // e.g. a priming event
		}
		m, derr := r.decode(ev.data)
		if derr != nil {
			h.s.log.DebugContext(ctx, "malformed message on response stream", "backend", h.s.name, "error", derr)
			continue
		}
		if m.Method == "" {
			if answers(m, id) {
				return m, true, nil
			}
			// A response on this request's stream answers another request:
			// never deliver it, and do not wait for ours either.
			return nil, true, h.corrupt(ctx, ErrMismatchedID)
		}
		h.deliver(ctx, handler, m)
	}
}

// deliver hands a server message that came on a POST's stream to the
// call's handler, by mux.route's rule: a call without a handler of its own
// (vmcp's listing while the session is built) does not claim it, and a
// session request (roots/list) is the session's if the client has a
// connect-time handler. Either then lives as long as the client, not as
// the POST that carried it: a backend that asks on the stream of a call
// about to end (the go-sdk relates a request to the one its handler
// serves) is still answered.
func (h *httpConn) deliver(ctx context.Context, handler Handler, m *jsonrpc.Message) {
	if m.IsRequest() && sessionRequest(m.Method) {
		h.deliverToSession(ctx, handler, m)
		return
	}
	h.c.deliver(ctx, handler, m, h.send)
}

// deliverToSession hands a server request to the connect-time handler,
// with the client's context, if there is one; else to the call's handler.
func (h *httpConn) deliverToSession(ctx context.Context, handler Handler, m *jsonrpc.Message) {
	if h.c.handler != nil {
		ctx, handler = h.c.ctx, h.c.handler
	}
	h.c.deliver(ctx, handler, m, h.send)
}

// drain reads the rest of the stream after the response. Servers end it
// right after the response; one that does not gets its connection closed
// after drainWait instead of holding the call. A request that comes after
// the response no longer has a call to belong to: as on stdio, where the
// answered call no longer claims what follows, it is the session's.
func (h *httpConn) drain(ctx context.Context, r *sseReader, body io.ReadCloser, handler Handler) {
	t := time.AfterFunc(drainWait, func() { _ = body.Close() })
	defer t.Stop()
	for {
		ev, err := r.next()
		if err != nil {
			break
		}
		if len(ev.data) == 0 {
			continue
		}
		m, derr := jsonrpc.Decode(ev.data, 0)
		switch {
		case derr != nil || m.Method == "":
		case m.IsRequest():
			h.deliverToSession(ctx, handler, m)
		default:
			h.c.deliver(ctx, handler, m, h.send)
		}
	}
	_ = body.Close()
}
