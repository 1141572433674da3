package backend

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/vmcp/vmcp/internal/jsonrpc"
	"github.com/vmcp/vmcp/internal/recovery"
)

var (
	// ErrTooLarge means a message from the backend exceeded the size limit.
	ErrTooLarge = errors.New("backend message too large")
	// ErrMismatchedID means the backend answered a request with another
	// request's JSON-RPC id. The answer is dropped, never delivered.
	ErrMismatchedID = errors.New("backend response does not match the request's id")
)

// opError names the backend and the operation that failed. Transports build
// the cause (wrapping one of the package's sentinel errors where one
// applies); this is the only place the backend name is added, so every error
// reads the same way. Causes never carry session IDs, header values or URLs.
func opError(backend, op string, cause error) error {
	return fmt.Errorf("backend %q: %s: %w", backend, op, cause)
}

// unavailable wraps cause as ErrUnavailable, stripping the URL that
// *url.Error would print (a URL may carry a credential in its query).
// Causes that say what happened already (a lost session, a refused or
// missing credential) stay as they are.
func unavailable(cause error) error {
	var ue *url.Error
	if errors.As(cause, &ue) {
		cause = ue.Err
	}
	var ce *credentialError
	if errors.Is(cause, ErrSessionNotFound) || errors.Is(cause, ErrUnavailable) ||
		errors.Is(cause, ErrUnauthorized) || errors.As(cause, &ce) {
		return cause
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, cause)
}

// rpcError maps a JSON-RPC error from the backend. A "session not found"
// error wraps ErrSessionNotFound so the owner knows to re-initialize. Any
// other keeps its code and data, and its message says which backend sent
// it: the client sees one server for many.
func rpcError(backend, op string, e *jsonrpc.Error) error {
	if strings.Contains(strings.ToLower(e.Message), "session not found") {
		return opError(backend, op, fmt.Errorf("%w: %w", ErrSessionNotFound, e))
	}
	prefix := fmt.Sprintf("backend %q: ", backend)
	if strings.HasPrefix(e.Message, prefix) {
		return e
	}
	return &jsonrpc.Error{Code: e.Code, Message: prefix + e.Message, Data: e.Data}
}

// sessionLost reports whether a non-2xx answer to a request that carried a
// session ID means the backend no longer knows that session, in the forms
// real servers use: HTTP 404 (the spec's), unless it carries -32601 (a
// 2026-07-28 backend saying it has no such method), and HTTP 400 whose
// JSON-RPC error or body says the session ID is missing, invalid or
// unknown (the TypeScript SDK's servers: "Bad Request: No valid session ID
// provided", "Bad Request: Mcp-Session-Id header is required", "Bad
// Request: Server not initialized"). e is the body's JSON-RPC error, if
// any; body is the body read so far.
func sessionLost(status int, e *jsonrpc.Error, body []byte) bool {
	switch status {
	case http.StatusNotFound:
		return e == nil || e.Code != jsonrpc.CodeMethodNotFound
	case http.StatusBadRequest:
		if e != nil {
			return saysSessionLost(e.Message)
		}
		return saysSessionLost(string(body))
	}
	return false
}

// saysSessionLost reports whether a backend's error text says the session
// it was sent is missing, invalid, unknown or gone.
func saysSessionLost(msg string) bool {
	m := strings.ToLower(msg)
	if strings.Contains(m, "server not initialized") {
		return true // a restarted single-session server
	}
	if !strings.Contains(m, "session") {
		return false
	}
	for _, w := range []string{"not found", "no valid", "invalid", "unknown", "missing", "required", "expired", "terminated"} {
		if strings.Contains(m, w) {
			return true
		}
	}
	return false
}

// SettingTimeout is the cause of a deadline that a configuration setting
// set: its message names the setting to change, and it is
// context.DeadlineExceeded for errors.Is.
type SettingTimeout struct {
	Setting string // as in the config file, e.g. "backends[].timeout"
	After   time.Duration
}

func (e *SettingTimeout) Error() string {
	return fmt.Sprintf("no answer within %s (%s)", e.Setting, e.After)
}

// Is makes the error context.DeadlineExceeded.
func (e *SettingTimeout) Is(target error) bool { return target == context.DeadlineExceeded }

// HTTPStatusError is an HTTP status that says the backend failed (5xx).
type HTTPStatusError struct{ Status int }

func (e *HTTPStatusError) Error() string { return fmt.Sprintf("HTTP %d", e.Status) }

// Category names the kind of a backend failure in words safe for logs,
// /status and clients: never the backend's own text, which may hold a
// secret. "" means err is nil.
func Category(err error) string {
	var st *HTTPStatusError
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrSessionNotFound):
		return "session lost"
	case errors.Is(err, ErrUnauthorized):
		return "credential refused"
	case errors.As(err, new(*credentialError)):
		return "no credential"
	case errors.As(err, &st) && st.Status >= 500:
		return "http 5xx"
	case errors.Is(err, ErrProcessLimit):
		return "process limit"
	case errors.Is(err, ErrUnavailable):
		return "unreachable"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, ErrClosed):
		return "closed"
	case errors.Is(err, ErrTooLarge):
		return "message too large"
	case errors.Is(err, recovery.ErrPanic):
		return "internal error"
	}
	var e *jsonrpc.Error
	if errors.As(err, &e) {
		return "backend error"
	}
	return "protocol error"
}

// tooLarge reports a message beyond limit bytes, naming the setting.
func tooLarge(limit int) error {
	return fmt.Errorf("%w: exceeds maxResponseBytes (%d bytes)", ErrTooLarge, limit)
}
