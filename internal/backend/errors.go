package backend

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/vmcp/vmcp/internal/jsonrpc"
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
func unavailable(cause error) error {
	var ue *url.Error
	if errors.As(cause, &ue) {
		cause = ue.Err
	}
	if errors.Is(cause, ErrSessionNotFound) || errors.Is(cause, ErrUnavailable) {
		return cause
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, cause)
}

// rpcError maps a JSON-RPC error from the backend: it comes back unchanged,
// except that a "session not found" error also wraps ErrSessionNotFound so
// the owner knows to re-initialize.
func rpcError(backend, op string, e *jsonrpc.Error) error {
	if strings.Contains(strings.ToLower(e.Message), "session not found") {
		return opError(backend, op, fmt.Errorf("%w: %w", ErrSessionNotFound, e))
	}
	return e
}

// tooLarge reports a message beyond limit bytes, naming the setting.
func tooLarge(limit int) error {
	return fmt.Errorf("%w: exceeds maxResponseBytes (%d bytes)", ErrTooLarge, limit)
}
