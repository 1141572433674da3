package frontend

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/vmcp/vmcp/internal/backend"
	"github.com/vmcp/vmcp/internal/identity"
	"github.com/vmcp/vmcp/internal/jsonrpc"
	"github.com/vmcp/vmcp/internal/mrtr"
	"github.com/vmcp/vmcp/internal/session"
	"github.com/vmcp/vmcp/internal/store"
)

// SessionPool lends warm sessions to modern (2026-07-28) requests, which
// carry no session of their own (internal/warm implements it). A session
// lent for identity is only ever lent to that identity. Safe for
// concurrent use.
type SessionPool interface {
	// Acquire returns a session for identity and the func that gives it
	// back, to be called once when the request is over.
	Acquire(ctx context.Context, identity string) (s *session.Session, release func(), err error)
	// Listen is Acquire for a subscriptions/listen stream: it holds the
	// session until release without keeping it from identity's requests,
	// which the pool hands it first, so that the calls a client makes
	// build their backend state where its stream listens.
	Listen(ctx context.Context, identity string) (s *session.Session, release func(), err error)
}

// ModernOptions configure the modern era. The zero value serves it with
// the defaults below once Options.Pool is set.
type ModernOptions struct {
	// StateKey seals requestState (AES-256-GCM, mrtr.KeySize bytes).
	// Replicas behind one load balancer need the same key; nil means a
	// random key per process.
	StateKey []byte
	// InputTimeout is how long a call waits for the client's retry with
	// the input a backend asked for, and how long a requestState lives;
	// default 5m.
	InputTimeout time.Duration
	// MaxWaiting bounds the calls waiting for input; default 1024.
	MaxWaiting int
	// CacheTTL and CacheScope are the caching hints of list results, and
	// of reads whose backend gave none; defaults 0 and "private" (what a
	// caller sees may depend on who it is).
	CacheTTL   time.Duration
	CacheScope string
	// AdvertiseURL is this replica's MCP endpoint as other replicas reach
	// it. A waiting call's requestState names it, and a replica that gets
	// a retry for a call it does not hold forwards the retry there.
	AdvertiseURL string
}

// Meta keys of the modern era.
const (
	metaProtocolVersion    = "io.modelcontextprotocol/protocolVersion"
	metaClientCapabilities = "io.modelcontextprotocol/clientCapabilities"
	metaLogLevel           = "io.modelcontextprotocol/logLevel"
	metaServerInfo         = "io.modelcontextprotocol/serverInfo"
	metaSubscriptionID     = "io.modelcontextprotocol/subscriptionId"
)

// modernMethods are the requests the modern era has. The legacy-only ones
// (initialize, ping, logging/setLevel, resources/subscribe...) are unknown
// to it: 404.
var modernMethods = map[string]bool{
	"server/discover": true, "subscriptions/listen": true,
	"tools/list": true, "tools/call": true,
	"resources/list": true, "resources/read": true, "resources/templates/list": true,
	"prompts/list": true, "prompts/get": true,
	"completion/complete": true,
}

// modernHandler serves the modern era: every request stands alone, served
// by a session the pool lends for the caller's identity.
type modernHandler struct {
	s       *Server
	opts    ModernOptions
	sealer  *mrtr.Sealer
	waiting *mrtr.Registry[*modernCall]
	counts  mrtrCounts
	hub     *listenHub
	// logging holds the pooled sessions whose backends were told to log
	// (see enableLogging); an entry goes when its session closes.
	logging sync.Map // *session.Session -> struct{}
}

func newModernHandler(s *Server) *modernHandler {
	o := s.opts.Modern
	if o.InputTimeout <= 0 {
		o.InputTimeout = 5 * time.Minute
	}
	if o.MaxWaiting <= 0 {
		o.MaxWaiting = 1024
	}
	if o.CacheScope == "" {
		o.CacheScope = "private"
	}
	key := o.StateKey
	if key == nil {
		key = mrtr.RandomKey()
	}
	sealer, err := mrtr.NewSealer(key, o.InputTimeout, nil)
	if err != nil {
		// Config validation checks the key's size; a bad key here is a
		// programming error, and a random one keeps the server safe.
		s.log.Error("modern.stateKey unusable; using a random key", "err", err)
		sealer, _ = mrtr.NewSealer(mrtr.RandomKey(), o.InputTimeout, nil)
	}
	return &modernHandler{s: s, opts: o, sealer: sealer,
		waiting: mrtr.NewRegistry[*modernCall](o.MaxWaiting, o.InputTimeout), hub: newListenHub()}
}

// ModernPeer is the session-level Peer a pooled session of identity gets: what
// backends send outside any call (list changes, resource updates) goes to
// that identity's subscriptions/listen streams.
func (s *Server) ModernPeer(identity string) session.Peer {
	return hubPeer{hub: s.modern.hub, identity: identity}
}

// WaitingCalls returns how many calls wait for a modern client's input.
func (s *Server) WaitingCalls() int { return s.modern.waiting.Len() }

// isModernRequest reports whether a POST belongs to the modern era: its
// MCP-Protocol-Version is a modern one, or its body carries the modern
// _meta and it is not an initialize (which always starts a legacy session).
func isModernRequest(r *http.Request, msg *jsonrpc.Message) bool {
	if v := r.Header.Get(headerProtocolVersion); v != "" && isModern(v) {
		return true
	}
	return msg.Method != "initialize" && r.Header.Get(headerSessionID) == "" && hasMetaVersion(msg.Params)
}

// requestMeta is what a modern request says about its client.
type requestMeta struct {
	version  string
	caps     clientCaps
	hasCaps  bool
	logLevel int // index in logLevels; -1: no log messages
}

type clientCaps struct{ elicitation, sampling, roots bool }

var logLevels = []string{"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"}

func levelIndex(l string) int {
	for i, v := range logLevels {
		if v == l {
			return i
		}
	}
	return -1
}

func hasMetaVersion(params json.RawMessage) bool {
	m, _ := parseMetaMap(params)
	_, ok := m[metaProtocolVersion]
	return ok
}

func parseMetaMap(params json.RawMessage) (map[string]json.RawMessage, bool) {
	var p struct {
		Meta map[string]json.RawMessage `json:"_meta"`
	}
	if len(params) == 0 || json.Unmarshal(params, &p) != nil || p.Meta == nil {
		return nil, false
	}
	return p.Meta, true
}

// checkRequest checks a modern request's _meta, its headers and its
// method, in the order the spec's errors are tested: the version first
// (-32602 without one, -32020 if the header disagrees, -32022 if vmcp does
// not serve it), then the method (404), then the rest of _meta and the
// mirrored headers. It returns the HTTP status to answer an error with.
func checkRequest(r *http.Request, msg *jsonrpc.Message) (requestMeta, int, *jsonrpc.Error) {
	rm := requestMeta{logLevel: -1}
	meta, ok := parseMetaMap(msg.Params)
	if !ok {
		return rm, http.StatusBadRequest, errorf(jsonrpc.CodeInvalidParams, "Invalid params: _meta with %s is required", metaProtocolVersion)
	}
	if json.Unmarshal(meta[metaProtocolVersion], &rm.version) != nil || rm.version == "" {
		return rm, http.StatusBadRequest, errorf(jsonrpc.CodeInvalidParams, "Invalid params: _meta is missing %s", metaProtocolVersion)
	}
	hv, ok := headerValue(r.Header, headerProtocolVersion)
	if !ok {
		return rm, http.StatusBadRequest, headerMismatch("the MCP-Protocol-Version header is required")
	}
	if hv != rm.version {
		return rm, http.StatusBadRequest, headerMismatch("MCP-Protocol-Version header %q does not match %s %q", hv, metaProtocolVersion, rm.version)
	}
	if !isServedModern(rm.version) {
		data, _ := json.Marshal(map[string]any{"supported": supportedVersions(), "requested": rm.version})
		return rm, http.StatusBadRequest, &jsonrpc.Error{Code: codeUnsupportedVersion, Message: "Unsupported protocol version", Data: data}
	}
	if !modernMethods[msg.Method] {
		return rm, http.StatusNotFound, errorf(jsonrpc.CodeMethodNotFound, "Method not found: %s", msg.Method)
	}
	rawCaps, ok := meta[metaClientCapabilities]
	var caps map[string]json.RawMessage
	if !ok || json.Unmarshal(rawCaps, &caps) != nil || caps == nil {
		return rm, http.StatusBadRequest, errorf(jsonrpc.CodeInvalidParams, "Invalid params: _meta is missing %s", metaClientCapabilities)
	}
	has := func(k string) bool { v, ok := caps[k]; return ok && string(v) != "null" }
	rm.caps = clientCaps{elicitation: has("elicitation"), sampling: has("sampling"), roots: has("roots")}
	rm.hasCaps = true
	var level string
	if json.Unmarshal(meta[metaLogLevel], &level) == nil {
		rm.logLevel = levelIndex(level)
	}
	if e := checkStandardHeaders(r.Header, msg.Method, msg.Params); e != nil {
		return rm, http.StatusBadRequest, e
	}
	return rm, 0, nil
}

// modernIdentity is the identity a modern request's pooled session
// belongs to: the authenticated caller, or "anonymous".
func modernIdentity(r *http.Request) string {
	if k := identity.FromContext(r.Context()).Key(); k != "" {
		return k
	}
	return "anonymous"
}

// serve answers one modern request; its body has been read and decoded.
func (h *modernHandler) serve(w http.ResponseWriter, r *http.Request, msg *jsonrpc.Message) {
	start := time.Now()
	err := h.serveMessage(w, r, msg)
	if msg.IsRequest() && msg.Method != "subscriptions/listen" {
		h.s.legacy.observe(msg.Method, start, err)
	}
}

// errAnswered marks a request answered with an error, for metrics.
var errAnswered = errors.New("answered with an error")

func (h *modernHandler) serveMessage(w http.ResponseWriter, r *http.Request, msg *jsonrpc.Message) error {
	switch {
	case msg.IsResponse():
		writeHTTPError(w, http.StatusBadRequest, nil, errorf(codeInvalidRequest, "Bad Request: the modern era has no server-to-client requests to answer"))
		return errAnswered
	case msg.IsNotification():
		// Closing a request's stream is its cancellation on HTTP; no
		// notification means anything here.
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	rm, status, jerr := checkRequest(r, msg)
	if jerr != nil {
		writeHTTPError(w, status, msg.ID, jerr)
		return errAnswered
	}
	if h.s.opts.Pool == nil {
		// Without a pool vmcp serves the legacy era only; a client that
		// reads the supported versions falls back to initialize.
		data, _ := json.Marshal(map[string]any{"supported": legacyVersions, "requested": rm.version})
		writeHTTPError(w, http.StatusBadRequest, msg.ID, &jsonrpc.Error{Code: codeUnsupportedVersion, Message: "Unsupported protocol version", Data: data})
		return errAnswered
	}
	ident := modernIdentity(r)
	switch msg.Method {
	case "tools/call", "prompts/get", "resources/read":
		return h.call(w, r, msg, rm, ident)
	}
	take := h.s.opts.Pool.Acquire
	if msg.Method == "subscriptions/listen" {
		take = h.s.opts.Pool.Listen
	}
	s, release, ok := h.acquire(w, r, msg.ID, ident, take)
	if !ok {
		return errAnswered
	}
	if msg.Method == "subscriptions/listen" {
		defer release()
		return h.listen(w, r, msg, s, ident)
	}
	// As for a call (modernCall.run), s goes back before the answer is
	// written; release may be called again.
	defer release()
	if !offered(s, msg.Method) {
		writeHTTPError(w, http.StatusNotFound, msg.ID, errorf(jsonrpc.CodeMethodNotFound, "Method not found: %s (no backend offers it)", msg.Method))
		return errAnswered
	}
	ctx, hold := backend.WithHold(r.Context())
	defer hold.Release()
	if rm.logLevel >= 0 {
		h.enableLogging(ctx, s)
	}
	params := forwardParams(msg.Params, nil)
	var result json.RawMessage
	var err error
	switch msg.Method {
	case "server/discover":
		result = h.discover(s)
	case "tools/list", "resources/list", "resources/templates/list", "prompts/list":
		result, err = dispatch(ctx, s, msg.Method, params)
		if err == nil {
			result = h.listCacheable(s, msg.Method, result)
		}
	default:
		result, err = dispatch(ctx, s, msg.Method, params)
		if err == nil {
			result = h.complete(result)
		}
	}
	release()
	h.respond(ctx, w, r, msg.ID, result, err)
	return err
}

// enableLogging has s's backends send log messages, once per session: a
// legacy backend logs only after logging/setLevel, and a modern request
// that asks for a log level must get them. They are asked for everything
// (debug); each request's stream carries only those at or above its own
// level (levelAllowed).
func (h *modernHandler) enableLogging(ctx context.Context, s *session.Session) {
	if _, done := h.logging.LoadOrStore(s, struct{}{}); done {
		return
	}
	go func() {
		<-s.Done()
		h.logging.Delete(s)
	}()
	if _, err := s.Operations().Call(ctx, "logging/setLevel", json.RawMessage(`{"level":"debug"}`)); err != nil {
		h.s.log.DebugContext(ctx, "asking a pooled session's backends to log", "err", err)
	}
}

// acquire borrows a session for ident with take (the pool's Acquire or
// Listen), answering the request itself when none can be had.
func (h *modernHandler) acquire(w http.ResponseWriter, r *http.Request, id json.RawMessage, ident string, take func(context.Context, string) (*session.Session, func(), error)) (*session.Session, func(), bool) {
	s, release, err := take(r.Context(), ident)
	if err == nil {
		return s, release, true
	}
	if rl, ok := errors.AsType[*session.RateLimitedError](err); ok {
		w.Header().Set("Retry-After", retryAfter(math.Ceil(rl.RetryAfter.Seconds())))
		writeHTTPError(w, http.StatusTooManyRequests, id, errorf(codeServerError, "Too many requests; retry later"))
		return nil, nil, false
	}
	if errors.Is(err, store.ErrUnavailable) {
		h.s.legacy.unavailable(w, id)
		return nil, nil, false
	}
	if errors.Is(err, backend.ErrProcessLimit) {
		h.s.legacy.processLimit(r.Context(), w, id, err)
		return nil, nil, false
	}
	if errors.Is(err, context.Canceled) {
		return nil, nil, false // the client is gone
	}
	// The pool is exhausted, closed, or reached no backend: all transient.
	h.s.log.WarnContext(r.Context(), "no session for a modern request", "err", err)
	w.Header().Set("Retry-After", retryAfter(h.s.opts.RetryAfter.Seconds()))
	writeHTTPError(w, http.StatusServiceUnavailable, id, errorf(codeServerError, "No backend session available; retry later"))
	return nil, nil, false
}

// respond answers with a result or the error err maps to. A missing
// client capability is answered 400, as the spec asks.
func (h *modernHandler) respond(ctx context.Context, w http.ResponseWriter, r *http.Request, id, result json.RawMessage, err error) {
	out := h.newOut(w, r)
	if err != nil {
		status, e := h.rpcError(ctx, err)
		out.final(status, jsonrpc.AppendError(nil, id, e))
		return
	}
	out.final(http.StatusOK, jsonrpc.AppendResult(nil, id, result))
}

// rpcError maps a call's error to what the client sees and its HTTP
// status: 400 for a missing client capability, as the spec asks, else 200.
func (h *modernHandler) rpcError(ctx context.Context, err error) (int, *jsonrpc.Error) {
	e := h.s.legacy.toRPCError(ctx, err)
	if e.Code == codeMissingCapability {
		return http.StatusBadRequest, e
	}
	return http.StatusOK, e
}

// complete marks a result "complete" unless it has a resultType, and
// names vmcp as the server in its _meta (SEP-2575: each result says which
// server answered; a modern backend's own serverInfo is replaced, since
// vmcp is the server the client talks to).
func (h *modernHandler) complete(result json.RawMessage) json.RawMessage {
	if v, err := jsonrpc.Member(result, "resultType"); err != nil || len(v) == 0 {
		if out, err := jsonrpc.SetMember(result, "resultType", []byte(`"complete"`)); err == nil {
			result = out
		}
	}
	return h.withServerInfo(result)
}

// withServerInfo sets _meta's serverInfo to vmcp's.
func (h *modernHandler) withServerInfo(result json.RawMessage) json.RawMessage {
	if out, err := jsonrpc.SetMeta(result, metaServerInfo, h.s.opts.ServerInfo); err == nil {
		return out
	}
	return result
}

// cacheable adds resultType and the caching hints to a list or read
// result. A read keeps the hints its backend gave; a list is vmcp's own,
// merged from every backend's, and gets the configured ones.
func (h *modernHandler) cacheable(result json.RawMessage, keepBackend bool) json.RawMessage {
	return h.withHints(h.complete(result), h.opts.CacheTTL, h.opts.CacheScope, keepBackend)
}

// withHints sets result's ttlMs and cacheScope; with keepBackend, a hint
// the result already has stays.
func (h *modernHandler) withHints(result json.RawMessage, ttl time.Duration, scope string, keepBackend bool) json.RawMessage {
	set := func(key string, val []byte) {
		if v, err := jsonrpc.Member(result, key); keepBackend && err == nil && len(v) > 0 && string(v) != "null" {
			return
		}
		if out, err := jsonrpc.SetMember(result, key, val); err == nil {
			result = out
		}
	}
	ttlJSON, _ := json.Marshal(ttl.Milliseconds())
	scopeJSON, _ := json.Marshal(scope)
	set("ttlMs", ttlJSON)
	set("cacheScope", scopeJSON)
	return result
}

// listCacheable adds resultType and the caching hints to a list result
// of s. Where every backend of s gave hints for the list (2026-07-28
// backends do), the TTL is theirs, merged (Session.ListCache: the
// shortest), capped by modern.cacheTTL if that is set; else
// modern.cacheTTL. The scope is private if the backends or
// modern.cacheScope say so: only the operator knows whether vmcp's own
// policies make a list depend on its caller.
func (h *modernHandler) listCacheable(s *session.Session, method string, result json.RawMessage) json.RawMessage {
	var l session.List
	switch method {
	case "tools/list":
		l = session.ListTools
	case "resources/list":
		l = session.ListResources
	case "resources/templates/list":
		l = session.ListResourceTemplates
	case "prompts/list":
		l = session.ListPrompts
	default:
		return h.cacheable(result, false)
	}
	hint, ok := s.ListCache(l)
	if !ok {
		return h.cacheable(result, false)
	}
	ttl, scope := hint.TTL, h.opts.CacheScope
	if h.opts.CacheTTL > 0 {
		ttl = min(ttl, h.opts.CacheTTL)
	}
	if hint.Scope == "private" {
		scope = "private"
	}
	return h.withHints(h.complete(result), ttl, scope, false)
}

// forwardParams returns a modern request's params as a backend gets them:
// without the protocol version in _meta, which would make a legacy
// backend session refuse the request (the client's capabilities stay, for
// the backend to honour). With state non-nil, requestState is replaced by
// *state, or removed when *state is empty.
func forwardParams(params json.RawMessage, state *string) json.RawMessage {
	var p map[string]json.RawMessage
	if json.Unmarshal(params, &p) != nil || p == nil {
		return params
	}
	if raw, ok := p["_meta"]; ok {
		var meta map[string]json.RawMessage
		if json.Unmarshal(raw, &meta) == nil {
			delete(meta, metaProtocolVersion)
			delete(meta, metaLogLevel)
			if len(meta) == 0 {
				delete(p, "_meta")
			} else if b, err := json.Marshal(meta); err == nil {
				p["_meta"] = b
			}
		}
	}
	if state != nil {
		if *state == "" {
			delete(p, "requestState")
		} else {
			b, _ := json.Marshal(*state)
			p["requestState"] = b
		}
	}
	out, err := json.Marshal(p)
	if err != nil {
		return params
	}
	return out
}
