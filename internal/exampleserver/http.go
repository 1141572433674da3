package exampleserver

import (
	"context"
	"net/http"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Handler serves an example server over one of the HTTP transports. Besides
// serving, it can drop all its sessions, as a restarted server would
// ([Handler.Forget]), and close them for shutdown ([Handler.Close]).
//
// A Handler is safe for concurrent use. Per-session state (counter, notes)
// belongs to one generation of the server: Forget starts a new one.
type Handler struct {
	opts Options
	wrap func(*mcp.Server) http.Handler

	mu  sync.Mutex
	gen *generation // nil once closed
}

// generation is one incarnation of the server, from start (or Forget) to the
// next Forget or Close.
type generation struct {
	server *mcp.Server
	http   http.Handler
	cancel context.CancelFunc
}

// HTTPHandler returns a handler serving Streamable HTTP with stateful
// sessions (Mcp-Session-Id). It counts DELETE requests and initializes in
// opts.Stats. Mount it at the MCP endpoint path, e.g. /mcp.
//
// Call Close when shutting down, before http.Server.Shutdown: open GET
// streams would otherwise keep Shutdown waiting.
func HTTPHandler(opts Options) *Handler {
	return newHandler(opts, func(srv *mcp.Server) http.Handler {
		return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	})
}

// SSEHandler returns a handler serving the legacy HTTP+SSE transport
// (protocol 2024-11-05): a GET opens the event stream, whose first event names
// the endpoint, with a sessionid query parameter, to POST messages to. Mount
// it at the SSE endpoint path, e.g. /sse; the POST endpoint is the same path.
//
// As with HTTPHandler, call Close before http.Server.Shutdown.
func SSEHandler(opts Options) *Handler {
	return newHandler(opts, func(srv *mcp.Server) http.Handler {
		return mcp.NewSSEHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	})
}

func newHandler(opts Options, wrap func(*mcp.Server) http.Handler) *Handler {
	h := &Handler{opts: opts, wrap: wrap}
	h.gen = h.newGeneration()
	return h
}

func (h *Handler) newGeneration() *generation {
	life, cancel := context.WithCancel(context.Background())
	srv := newServer(h.opts, life)
	return &generation{server: srv, http: h.wrap(srv), cancel: cancel}
}

// ServeHTTP implements http.Handler. After Close it answers 503.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodDelete {
		h.opts.Stats.addDelete()
	}
	h.mu.Lock()
	g := h.gen
	h.mu.Unlock()
	if g == nil {
		http.Error(w, "server closed", http.StatusServiceUnavailable)
		return
	}
	g.http.ServeHTTP(w, r)
}

// Forget drops every session, as if the server process had restarted: it
// cancels in-flight requests, closes all sessions and their streams, and
// starts afresh. Later requests bearing an old session ID get 404; new
// sessions work and start with fresh state. Stats keep counting across
// Forget. It returns once the old sessions are closed. After Close, Forget
// does nothing.
//
// Forget is meant for fault-injection tests. A request racing with it may be
// served by either the old or the new server.
func (h *Handler) Forget() {
	h.mu.Lock()
	old := h.gen
	if old != nil {
		h.gen = h.newGeneration()
	}
	h.mu.Unlock()
	if old != nil {
		old.stop()
	}
}

// Close cancels in-flight requests and closes every session. After Close,
// the handler answers every request with 503. Close is idempotent.
func (h *Handler) Close() {
	h.mu.Lock()
	old := h.gen
	h.gen = nil
	h.mu.Unlock()
	if old != nil {
		old.stop()
	}
}

// stop cancels in-flight requests first, because closing a session waits for
// them, then closes the sessions concurrently.
func (g *generation) stop() {
	g.cancel()
	var wg sync.WaitGroup
	for ss := range g.server.Sessions() {
		wg.Go(func() { _ = ss.Close() })
	}
	wg.Wait()
}
