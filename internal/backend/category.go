package backend

import (
	"context"
	"errors"

	"github.com/vmcp/vmcp/internal/jsonrpc"
)

// Category names the kind of a backend failure in words safe for logs,
// /status and clients: never the backend's own text, which may hold a
// secret, nor an address. "" means err is nil.
func Category(err error) string {
	var e *jsonrpc.Error
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrSessionNotFound):
		return "session lost"
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
	case errors.As(err, &e):
		return "backend error"
	}
	return "protocol error"
}
