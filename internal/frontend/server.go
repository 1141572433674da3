// Package frontend is vmcp's client-facing side: the Streamable HTTP
// endpoint with its JSON-RPC dispatch, and the operational endpoints
// (/health, /readyz, /status, /metrics). It turns HTTP requests into calls
// on sessions and knows nothing about backends. One endpoint serves both
// protocol eras, chosen per request: the legacy one (legacy.go), whose
// sessions come from a session.Manager, and the stateless 2026-07-28 one
// (modern.go), whose requests borrow sessions from a SessionPool.
package frontend

import (
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/vmcp/vmcp/internal/jsonrpc"
	"github.com/vmcp/vmcp/internal/redact"
	"github.com/vmcp/vmcp/internal/session"
)

// Options configure a Server. Manager is required.
type Options struct {
	Manager *session.Manager
	// Path is the MCP endpoint, default "/mcp".
	Path string
	// MaxBodyBytes caps a request body (413 beyond); default 4 MiB.
	MaxBodyBytes int64
	// ReadTimeout bounds reading a request's body, from the end of its
	// head; default 30s. A body that has not arrived by then is answered
	// 408 and its connection closed.
	ReadTimeout time.Duration
	// WriteTimeout bounds each write to an SSE stream, so a client that
	// stops reading cannot hold its writer; default 30s. A stream has no
	// deadline between writes.
	WriteTimeout time.Duration
	// MaxMessageDepth caps JSON nesting; default 64.
	MaxMessageDepth int
	// RetryAfter is sent with 503 when admission fails; default 30s.
	RetryAfter time.Duration
	// ServerInfo is the serverInfo answered to initialize.
	ServerInfo json.RawMessage
	// Status, if set, adds fields to GET /status. It must return no secret.
	Status func() any
	// Ready reports readiness for /readyz; nil means always ready.
	Ready func() error
	// Metrics serves /metrics when set.
	Metrics http.Handler
	// SeparateAdmin serves /status, /metrics and Debug only on
	// AdminHandler, for a listener of their own; the main handler keeps
	// /health and /readyz, which probes need. By default the main handler
	// serves /status and /metrics too, and Debug nowhere.
	SeparateAdmin bool
	// Debug, if set, serves the paths under /debug/ on AdminHandler
	// (profiles).
	Debug http.Handler
	// EventBuffer bounds the events each stream keeps for Last-Event-ID
	// replay; default 256.
	EventBuffer int
	// AlwaysStream answers every request from a client that accepts SSE
	// with an event stream, priming event first. By default a call that
	// sent nothing before a quick response is answered with plain JSON.
	AlwaysStream bool
	// ProtectLocalhost makes the server reject requests whose Host is not a
	// loopback name, against DNS rebinding; set it when listening on
	// loopback. AllowedHosts adds accepted Host names.
	ProtectLocalhost bool
	AllowedHosts     []string
	// AllowedOrigins adds accepted Origin values besides loopback ones. A
	// request with any other Origin is rejected.
	AllowedOrigins []string
	// Redactor hides configured secrets in backend text before it reaches
	// a client in an error; nil hides bearer credentials only.
	Redactor *redact.Redactor
	// Auth, if set, authenticates every request to the MCP endpoint and
	// its metadata is served at /.well-known/oauth-protected-resource;
	// nil lets every caller in as anonymous.
	Auth Authenticator
	// Observer, if set, is told about every answered request.
	Observer Observer
	// Pool lends the sessions that serve modern (2026-07-28) requests;
	// without one vmcp serves the legacy era only. Modern configures that
	// era (modern.go).
	Pool   SessionPool
	Modern ModernOptions
	Logger *slog.Logger
}

// Observer records request outcomes (metrics). Safe for concurrent use.
type Observer interface {
	ObserveRequest(method string, d time.Duration, failed bool)
	// ObserveRefused counts a request refused before it was read as
	// JSON-RPC, so before any method: reason is origin, content_type,
	// body_too_large, body_timeout, body_unreadable or malformed.
	ObserveRefused(reason string)
}

// countRefused tells o, if set, of a request refused before it was read
// as JSON-RPC, whatever its era.
func countRefused(o Observer, reason string) {
	if o != nil {
		o.ObserveRefused(reason)
	}
}

// Server is the front end. Create it with New; it is an http.Handler and
// safe for concurrent use.
type Server struct {
	opts   Options
	log    *slog.Logger
	mux    *http.ServeMux
	legacy *legacyHandler
	modern *modernHandler

	stop     chan struct{} // closed by CloseStreams
	stopOnce sync.Once

	// forwardClient carries a modern retry to the replica of its call
	// (forward.go); the request's context bounds it.
	forwardClient *http.Client
}

// CloseStreams ends every open SSE stream. Call it when shutting down so
// that long-lived GET streams do not hold the server's drain open; the
// events stay buffered for a client that reconnects elsewhere.
func (s *Server) CloseStreams() { s.stopOnce.Do(func() { close(s.stop) }) }

// New returns a Server.
func New(opts Options) *Server {
	if opts.Path == "" {
		opts.Path = "/mcp"
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 4 << 20
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = 30 * time.Second
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 30 * time.Second
	}
	if opts.MaxMessageDepth <= 0 {
		opts.MaxMessageDepth = 64
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = 30 * time.Second
	}
	if opts.ServerInfo == nil {
		opts.ServerInfo = json.RawMessage(`{"name":"vmcp","version":"dev"}`)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.EventBuffer <= 0 {
		opts.EventBuffer = 256
	}
	s := &Server{opts: opts, log: opts.Logger, mux: http.NewServeMux(), stop: make(chan struct{}), forwardClient: &http.Client{}}
	s.legacy = &legacyHandler{opts: &s.opts, log: s.log, m: opts.Manager, stop: s.stop}
	s.legacy.bufs.New = func() any { b := make([]byte, 0, 4096); return &b }
	s.modern = newModernHandler(s)
	s.mux.HandleFunc(opts.Path, s.serveMCP)
	s.mux.HandleFunc("GET /health", s.health)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	if !opts.SeparateAdmin {
		s.mountAdmin(s.mux)
	}
	s.serveMetadata()
	return s
}

// mountAdmin registers the endpoints that may move to the admin listener.
func (s *Server) mountAdmin(mux *http.ServeMux) {
	mux.HandleFunc("GET /status", s.status)
	if s.opts.Metrics != nil {
		mux.Handle("GET /metrics", s.opts.Metrics)
	}
}

// AdminHandler is the handler of the admin listener: /health, /readyz,
// /status, /metrics and Debug, behind the same Host and Origin checks as
// the MCP endpoint; protectLocalhost is whether the admin listener is on
// loopback. Without SeparateAdmin, /status and /metrics are on both.
func (s *Server) AdminHandler(protectLocalhost bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", s.health)
	mux.HandleFunc("GET /readyz", s.readyz)
	s.mountAdmin(mux)
	if s.opts.Debug != nil {
		mux.Handle("/debug/", s.opts.Debug)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.checkHostOrigin(r, protectLocalhost); err != nil {
			http.Error(w, "Forbidden: "+err.Error(), http.StatusForbidden)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Body != http.NoBody {
		// A body must arrive within ReadTimeout, whoever reads it: the
		// POST handler, which clears the deadline once it has the body
		// (see readBody), or net/http draining it after any other
		// handler.
		http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.opts.ReadTimeout))
	}
	// The MCP endpoint is nearly every request: an exact match skips the
	// mux's pattern matching and its allocations.
	if r.URL.Path == s.opts.Path {
		s.serveMCP(w, r)
		return
	}
	// Every endpoint, not only MCP's, is guarded against DNS rebinding:
	// /status and /metrics describe the gateway to whoever can read them.
	if err := s.checkOrigin(r); err != nil {
		http.Error(w, "Forbidden: "+err.Error(), http.StatusForbidden)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// ConnState is the http.Server's ConnState hook. An SSE stream's last
// write leaves its write deadline on an HTTP/1 connection, for the
// handler's return to flush within it; when the connection goes idle the
// hook clears it, so the next request on the connection starts with none.
func (s *Server) ConnState(c net.Conn, state http.ConnState) {
	if state == http.StateIdle {
		c.SetWriteDeadline(time.Time{})
	}
}

// Path is the MCP endpoint's path.
func (s *Server) Path() string { return s.opts.Path }

// serveMCP routes by protocol era, per request. Legacy-era versions
// (2025-11-25 and earlier) carry protocol sessions, started by initialize;
// a modern (2026-07-28) request stands alone, its version in its _meta
// and its MCP-Protocol-Version header (isModernRequest).
func (s *Server) serveMCP(w http.ResponseWriter, r *http.Request) {
	if err := s.checkOrigin(r); err != nil {
		countRefused(s.opts.Observer, "origin")
		writeHTTPError(w, http.StatusForbidden, nil, errorf(codeInvalidRequest, "Forbidden: %v", err))
		return
	}
	r, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	if r.Method == http.MethodPost {
		s.post(w, r)
		return
	}
	s.legacy.ServeHTTP(w, r)
}

// post reads and decodes a POST's message, then hands it to its era's
// handler.
func (s *Server) post(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !isJSONMediaType(ct) {
		countRefused(s.opts.Observer, "content_type")
		writeHTTPError(w, http.StatusUnsupportedMediaType, nil, errorf(codeInvalidRequest, "Content-Type must be application/json"))
		return
	}
	bp, ok := s.legacy.readBody(w, r)
	if !ok {
		return
	}
	defer s.legacy.bufs.Put(bp)
	msg, jerr := jsonrpc.Decode(*bp, s.opts.MaxMessageDepth)
	if jerr != nil {
		countRefused(s.opts.Observer, "malformed")
		writeHTTPError(w, http.StatusBadRequest, nil, jerr)
		return
	}
	if isModernRequest(r, msg) {
		s.modern.serve(w, r, msg)
		return
	}
	s.legacy.post(w, r, msg)
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"status":"ok"}`))
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if s.opts.Ready != nil {
		if err := s.opts.Ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			json.NewEncoder(w).Encode(map[string]string{"status": "not ready", "reason": err.Error()})
			return
		}
	}
	w.Write([]byte(`{"status":"ready"}`))
}

func (s *Server) status(w http.ResponseWriter, _ *http.Request) {
	st := map[string]any{"sessions": s.opts.Manager.Len(), "waitingCalls": s.modern.waiting.Len()}
	if s.opts.Status != nil {
		st["gateway"] = s.opts.Status()
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(st)
}
