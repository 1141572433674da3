// Package backend connects vmcp to backend MCP servers. A Connector holds
// what is shared per configured backend (an HTTP connection pool, a command
// line); each Connect makes one live Client, owned by exactly one vmcp
// session.
//
// Payloads are raw JSON: a Client never decodes results, so they pass
// through the gateway unchanged.
package backend

import (
	"context"
	"encoding/json"
	"errors"
)

// Client is one live MCP client session with a backend.
//
// Call, Notify and SessionID are safe for concurrent use. Close ends the
// backend session (HTTP DELETE, or stdio SIGTERM then SIGKILL) and is
// idempotent: only the first call has effect. The owner (a vmcp session)
// must not call Close while calls are in flight if it wants them to finish.
type Client interface {
	// Call sends a request and waits for its response. A JSON-RPC error
	// returned by the backend comes back as a *jsonrpc.Error, unchanged.
	// Transport failures wrap ErrSessionNotFound, ErrUnavailable or
	// ErrClosed where they apply.
	Call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error)
	// Notify sends a notification.
	Notify(ctx context.Context, method string, params json.RawMessage) error
	// SessionID is the backend's own Mcp-Session-Id ("" for stdio). It is a
	// secret: never log it.
	SessionID() string
	Close() error
}

// Connector makes Clients for one configured backend. It is safe for
// concurrent use and shared by all sessions.
type Connector interface {
	// Connect starts a client and runs the MCP initialize handshake, or,
	// when opts.ResumeSessionID is set and the transport allows it, resumes
	// that backend session without a new initialize.
	Connect(ctx context.Context, opts ConnectOptions) (Client, *InitializeResult, error)
	// Close releases what the connector shares (idle pooled connections).
	Close() error
}

// ConnectOptions describe the client side of the handshake.
type ConnectOptions struct {
	// ProtocolVersion is the version vmcp asks the backend for.
	ProtocolVersion string
	// ClientInfo and Capabilities are sent in initialize as they are.
	ClientInfo   json.RawMessage
	Capabilities json.RawMessage
	// ResumeSessionID, if set, is a backend session ID to reuse (HTTP only).
	ResumeSessionID string
	// Handler receives server-to-client messages that no call's context
	// claims. It may be nil: requests then get a method-not-found error.
	Handler Handler
	// Token, if set, is asked for the bearer token of every HTTP request
	// the client sends (as "Authorization: Bearer ..."), so that a
	// refreshed credential takes effect at once. Ignored by stdio.
	Token TokenSource
}

// TokenSource yields a client's current bearer token. It must be safe for
// concurrent use; a token is a secret and is never logged.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// InitializeResult is what the backend answered to initialize.
type InitializeResult struct {
	ProtocolVersion string          `json:"protocolVersion"`
	Capabilities    json.RawMessage `json:"capabilities"`
	ServerInfo      json.RawMessage `json:"serverInfo"`
	Instructions    string          `json:"instructions,omitempty"`
	// Resumed is true when the session was resumed rather than initialized.
	Resumed bool `json:"-"`
}

// Handler receives messages a backend sends to vmcp: notifications
// (progress, logging, list_changed) and requests (sampling, elicitation,
// roots, ping). Implementations must be safe for concurrent use.
type Handler interface {
	Notify(ctx context.Context, method string, params json.RawMessage)
	Request(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error)
}

type handlerKey struct{}

// WithHandler returns a context whose calls deliver server-to-client
// messages that belong to that call (for example progress sent on a
// Streamable HTTP response stream) to h instead of the connect-time Handler.
func WithHandler(ctx context.Context, h Handler) context.Context {
	return context.WithValue(ctx, handlerKey{}, h)
}

// HandlerFrom returns the call-scoped Handler in ctx, or fallback.
func HandlerFrom(ctx context.Context, fallback Handler) Handler {
	if h, ok := ctx.Value(handlerKey{}).(Handler); ok && h != nil {
		return h
	}
	return fallback
}

var (
	// ErrSessionNotFound means the backend no longer knows the session
	// (HTTP 404, or a JSON-RPC "session not found"): re-initialize.
	ErrSessionNotFound = errors.New("backend session not found")
	// ErrUnavailable means the backend could not be reached or the
	// connection broke (refused, EOF, child exited).
	ErrUnavailable = errors.New("backend unavailable")
	// ErrUnauthorized means the backend refused vmcp's credential (HTTP
	// 401 or 403): fresh credentials and a new client may help.
	ErrUnauthorized = errors.New("backend refused the credential")
	// ErrClosed means the client was closed. Alone it means the call was
	// refused before anything was sent; with ErrInFlight, that the client
	// closed while the call was under way.
	ErrClosed = errors.New("backend client closed")
	// ErrInFlight marks a call that failed after its request may have
	// reached the backend. Such a call must not be re-sent: a tool that
	// pays, books or deletes would run twice.
	ErrInFlight = errors.New("the request may have reached the backend")
	// ErrNoResponse means the backend ended a response stream cleanly
	// without the response and without an event ID to resume it from
	// (an SSE polling server with no event store): it is reachable, but
	// that call's result is lost.
	ErrNoResponse = errors.New("backend ended the response stream without the response")
)

// LatestProtocolVersion is the newest legacy-era protocol version vmcp speaks
// to backends.
const LatestProtocolVersion = "2025-11-25"
