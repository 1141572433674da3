package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/vmcp/vmcp/internal/jsonrpc"
)

// The _meta keys of the modern era.
const (
	metaProtocolVersion    = "io.modelcontextprotocol/protocolVersion"
	metaClientInfo         = "io.modelcontextprotocol/clientInfo"
	metaServerInfo         = "io.modelcontextprotocol/serverInfo"
	metaClientCapabilities = "io.modelcontextprotocol/clientCapabilities"
	metaLogLevel           = "io.modelcontextprotocol/logLevel"

	hdrMethod = "Mcp-Method"
	hdrName   = "Mcp-Name"
)

// modernClient is a Client of a 2026-07-28 backend. The backend keeps no
// session: every request carries, in _meta, the protocol version and the
// client info and capabilities of the vmcp session (those of the client in
// front), and the headers the transport requires (MCP-Protocol-Version,
// Mcp-Method, Mcp-Name, Mcp-Param-*). What a legacy backend session would
// remember, the client remembers for its vmcp session and sends again with
// each request: the log level. A backend's InputRequiredResult is answered
// by the call's Handler (inputrequired.go), so the client in front sees the
// legacy server-to-client requests it knows.
//
// SessionID is always "": there is no backend session to store, resume or
// lose, so no error of this client wraps ErrSessionNotFound. Safe for
// concurrent use; Close ends nothing on the backend.
type modernClient struct {
	*client // the JSON-RPC exchange, on an httpConn in modern mode
	h       *httpConn
	x       *streamableConnector

	info, caps json.RawMessage        // the vmcp session's client, as sent in _meta
	meta       atomic.Pointer[[]byte] // the _meta members every request carries
	metaBare   atomic.Pointer[[]byte] // meta without clientInfo and clientCapabilities, for a modern caller's requests
	mu         sync.Mutex             // guards level, params, cache
	level      json.RawMessage        // logging/setLevel's level; nil: none set
	params     map[string][]paramHeader
	cache      map[string]Cacheability
}

func newModernClient(x *streamableConnector, opts ConnectOptions) *modernClient {
	s := x.s
	c := newClient(s.name, s.timeout, s.log, opts.Handler)
	c.ids = &s.ids
	h := &httpConn{c: c, s: s, token: opts.Token, modern: true, pv: ModernProtocolVersion}
	h.post = s.header("Accept", "application/json, text/event-stream", "Content-Type", "application/json",
		hdrProtocolVersion, ModernProtocolVersion)
	c.conn = h
	mc := &modernClient{client: c, h: h, x: x, info: opts.ClientInfo, caps: opts.Capabilities}
	if len(mc.info) == 0 {
		mc.info = json.RawMessage(`{"name":"vmcp","version":"dev"}`)
	}
	if len(mc.caps) == 0 || string(mc.caps) == "null" {
		mc.caps = json.RawMessage("{}")
	}
	mc.buildMeta()
	return mc
}

// Stateless reports that the client holds no backend session: nothing to
// keep alive with pings, and nothing a re-initialization would restore.
func (c *modernClient) Stateless() bool { return true }

// buildMeta renders the _meta members every request carries. It runs at
// creation and when the log level changes, so a call only splices bytes.
func (c *modernClient) buildMeta() {
	b := []byte(`"` + metaProtocolVersion + `":"` + ModernProtocolVersion + `",`)
	b = jsonrpc.AppendString(b, metaClientInfo)
	b = append(append(b, ':'), c.info...)
	b = append(b, ',')
	b = jsonrpc.AppendString(b, metaClientCapabilities)
	b = append(append(b, ':'), c.caps...)
	bare := []byte(`"` + metaProtocolVersion + `":"` + ModernProtocolVersion + `"`)
	c.mu.Lock()
	if c.level != nil {
		for _, x := range []*[]byte{&b, &bare} {
			*x = append(*x, ',')
			*x = jsonrpc.AppendString(*x, metaLogLevel)
			*x = append(append(*x, ':'), c.level...)
		}
	}
	c.mu.Unlock()
	c.meta.Store(&b)
	c.metaBare.Store(&bare)
}

// Call sends one request. Methods the modern era dropped are served here:
// ping has no session to check (answered at once, with nothing sent),
// logging/setLevel is remembered and sent with every later request, and
// resources/subscribe and unsubscribe change what the client's
// subscriptions/listen stream asks for (modern_listen.go).
func (c *modernClient) Call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	if c.closed.Load() {
		return nil, opError(c.name, method, ErrClosed)
	}
	switch method {
	case "ping":
		return json.RawMessage("{}"), nil
	case "logging/setLevel":
		level, err := jsonrpc.Member(params, "level")
		if err != nil || level == nil {
			return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "logging/setLevel: params must have a level")
		}
		c.mu.Lock()
		c.level = slices.Clone(level)
		c.mu.Unlock()
		c.buildMeta()
		return json.RawMessage("{}"), nil
	case "resources/subscribe", "resources/unsubscribe":
		// 2026-07-28 replaced them with subscriptions/listen.
		return c.subscribe(ctx, method, params)
	}
	return c.callWithInput(ctx, method, params)
}

// send sends one request of the modern era and returns its result, which
// may be an InputRequiredResult.
func (c *modernClient) send(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	p, err := c.withMeta(ctx, params)
	if err != nil {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "%s: params and their _meta must be objects", method)
	}
	ctx = withRequestHeader(ctx, c.header(method, p))
	res, err := c.client.Call(ctx, method, p)
	if err != nil {
		if e := jsonrpc.AsError(err); e != nil && e.Code == codeUnsupportedVersion {
			// The backend may have been replaced by a legacy one.
			c.x.era.forget()
			c.x.discovered.forget()
		}
		return nil, noSession(err)
	}
	c.observe(method, params, res)
	return res, nil
}

// anonymous drops the backend's serverInfo from the _meta of a result it
// names itself in (SEP-2575): vmcp's clients talk to vmcp, which names
// itself to modern ones, and need not learn what runs behind it.
func anonymous(res json.RawMessage) json.RawMessage {
	if bytes.Contains(res, []byte(metaServerInfo)) {
		if out, err := jsonrpc.DropMeta(res, metaServerInfo); err == nil {
			return out
		}
	}
	return res
}

// noSession undoes the one mapping that cannot apply without a session: a
// JSON-RPC error whose text says "session not found" is the backend's
// error, not a lost backend session.
func noSession(err error) error {
	if !errors.Is(err, ErrSessionNotFound) {
		return err
	}
	if e := jsonrpc.AsError(err); e != nil {
		return e
	}
	return err
}

// withMeta returns params with vmcp's _meta members added, keeping the
// members of a _meta the client sent (a progress token, say) and every
// other byte as it was. For a modern caller (WithModernCaller) that sent
// its own clientCapabilities, its clientInfo and clientCapabilities are
// kept in place of the session's.
func (c *modernClient) withMeta(ctx context.Context, params json.RawMessage) (json.RawMessage, error) {
	ours := *c.meta.Load()
	own := false // the caller's clientInfo and clientCapabilities stay
	if modernCaller(ctx) {
		if meta, err := jsonrpc.Member(params, "_meta"); err == nil && meta != nil {
			if caps, _ := jsonrpc.Member(meta, metaClientCapabilities); caps != nil {
				own, ours = true, *c.metaBare.Load()
			}
		}
	}
	if len(bytes.TrimSpace(params)) == 0 || string(params) == "null" {
		out := make([]byte, 0, len(ours)+12)
		out = append(append(append(out, `{"_meta":{`...), ours...), "}}"...)
		return out, nil
	}
	meta, err := jsonrpc.Member(params, "_meta")
	if err != nil {
		return nil, err
	}
	if meta == nil || string(meta) == "null" {
		return jsonrpc.SetMember(params, "_meta", append(append([]byte{'{'}, ours...), '}'))
	}
	// The client's own _meta (a progress token, say) is kept, but not its
	// values for the keys vmcp sets: those are the session's.
	merged := make([]byte, 0, len(meta)+len(ours)+1)
	merged = append(merged, '{')
	err = jsonrpc.EachMember(meta, func(name []byte, v json.RawMessage) {
		switch string(name) {
		case metaClientInfo, metaClientCapabilities:
			if !own {
				return
			}
		case metaProtocolVersion, metaLogLevel:
			return
		}
		merged = jsonrpc.AppendString(merged, string(name))
		merged = append(append(append(merged, ':'), v...), ',')
	})
	if err != nil {
		return nil, errors.New("_meta must be an object")
	}
	merged = append(append(merged, ours...), '}')
	return jsonrpc.SetMember(params, "_meta", merged)
}

// header builds the HTTP header of one request: the client's, plus
// Mcp-Method, Mcp-Name for the methods that name something, and the
// Mcp-Param-* headers a tool's schema asks for (headers.go).
func (c *modernClient) header(method string, params json.RawMessage) http.Header {
	h := c.h.post.Clone()
	h[hdrMethod] = []string{method}
	key := ""
	switch method {
	case "tools/call", "prompts/get":
		key = "name"
	case "resources/read":
		key = "uri"
	}
	if key == "" {
		return h
	}
	raw, _ := jsonrpc.Member(params, key)
	name, ok := jsonrpc.Unquote(raw)
	if !ok {
		return h
	}
	h[hdrName] = []string{encodeHeaderValue(name)}
	if method == "tools/call" {
		c.paramHeaders(h, name, params)
	}
	return h
}

// Notify drops the notification: the modern era has none from client to
// server (initialized and roots/list_changed are gone, and closing a
// request's stream is what cancels it).
func (c *modernClient) Notify(ctx context.Context, method string, params json.RawMessage) error {
	if c.closed.Load() {
		return opError(c.name, method, ErrClosed)
	}
	c.log.DebugContext(ctx, "notification not sent: a 2026-07-28 backend takes none", "backend", c.name, "method", method)
	return nil
}

// discover sends server/discover, the modern era's first request, and
// returns the answer with its caching hint (ok: it gave one). It fails
// with errNotModern if the backend does not offer 2026-07-28.
func (c *modernClient) discover(ctx context.Context) (res *InitializeResult, hint Cacheability, ok bool, err error) {
	raw, err := c.send(ctx, "server/discover", nil)
	if err != nil {
		return nil, hint, false, err
	}
	var d struct {
		SupportedVersions []string        `json:"supportedVersions"`
		Capabilities      json.RawMessage `json:"capabilities"`
		Instructions      string          `json:"instructions"`
		Meta              struct {
			ServerInfo json.RawMessage `json:"io.modelcontextprotocol/serverInfo"` // metaServerInfo
		} `json:"_meta"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, hint, false, opError(c.name, "server/discover", fmt.Errorf("invalid result: %w", err))
	}
	if !slices.Contains(d.SupportedVersions, ModernProtocolVersion) {
		return nil, hint, false, opError(c.name, "server/discover", errNotModern)
	}
	caps := d.Capabilities
	if len(caps) == 0 || string(caps) == "null" {
		caps = json.RawMessage("{}")
	}
	hint, ok = cacheHint(raw)
	return &InitializeResult{
		ProtocolVersion: ModernProtocolVersion,
		Capabilities:    caps,
		ServerInfo:      d.Meta.ServerInfo,
		Instructions:    d.Instructions,
	}, hint, ok, nil
}

type requestHeaderKey struct{}

// withRequestHeader makes the requests of ctx carry h instead of the
// connection's fixed header.
func withRequestHeader(ctx context.Context, h http.Header) context.Context {
	return context.WithValue(ctx, requestHeaderKey{}, h)
}

func requestHeader(ctx context.Context) http.Header {
	h, _ := ctx.Value(requestHeaderKey{}).(http.Header)
	return h
}

// Stateless reports whether c holds no backend session (a 2026-07-28
// backend's client): there is nothing to ping or to lose.
func Stateless(c Client) bool {
	s, ok := c.(interface{ Stateless() bool })
	return ok && s.Stateless()
}
