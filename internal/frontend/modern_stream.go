package frontend

import (
	"net/http"
	"time"
)

// modernKeepAlive is how often a modern stream with nothing to say gets a
// comment line, so proxies keep it open and a dead client is noticed.
const modernKeepAlive = 15 * time.Second

// modernOut writes one modern request's answer: plain JSON when nothing
// came before the result, else an SSE stream scoped to the request (its
// notifications, then its result). The stream starts with the first
// notification or keep-alive, and only for a client that accepts SSE; a
// JSON-only client misses the notifications. With server.sseResponses:
// always, an answer with HTTP status 200 (a result, or a JSON-RPC error
// such as an unknown tool's) to a client that accepts SSE is a stream even
// when nothing came before it; one with another status (a request vmcp
// refuses: 400, 404) stays JSON. Not safe for concurrent use.
type modernOut struct {
	w       http.ResponseWriter
	sse     bool // the client accepts text/event-stream
	always  bool // stream every 200 answer to an SSE client
	started bool
	out     sseWriter
	buf     []byte
}

func (h *modernHandler) newOut(w http.ResponseWriter, r *http.Request) *modernOut {
	return &modernOut{w: w, sse: acceptsSSE(r), always: h.s.opts.AlwaysStream,
		out: sseWriter{w: w, rc: http.NewResponseController(w), timeout: h.s.opts.WriteTimeout}}
}

func (o *modernOut) start() {
	if o.started {
		return
	}
	o.started = true
	h := o.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	o.w.WriteHeader(http.StatusOK)
}

// events writes notifications; it does nothing for a JSON-only client.
func (o *modernOut) events(msgs [][]byte) error {
	if !o.sse || len(msgs) == 0 {
		return nil
	}
	o.start()
	o.buf = o.buf[:0]
	for _, m := range msgs {
		o.buf = append(o.buf, "event: message\n"...)
		o.buf = appendData(o.buf, m)
	}
	return o.out.write(o.buf, true)
}

// keepAlive writes a comment line, starting the stream if need be.
func (o *modernOut) keepAlive() error {
	if !o.sse {
		return nil
	}
	o.start()
	return o.out.write([]byte(":\n\n"), true)
}

// final writes the response: as the stream's last event, or as plain JSON
// with status.
func (o *modernOut) final(status int, b []byte) {
	if o.always && o.sse && status == http.StatusOK {
		o.start()
	}
	if o.started {
		o.buf = append(o.buf[:0], "event: message\n"...)
		o.buf = appendData(o.buf, b)
		o.out.write(o.buf, false) // the handler's return flushes it
		return
	}
	o.w.Header().Set("Content-Type", "application/json")
	o.w.WriteHeader(status)
	o.w.Write(b)
}
