package frontend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/vmcp/vmcp/internal/backend"
	"github.com/vmcp/vmcp/internal/jsonrpc"
	"github.com/vmcp/vmcp/internal/session"
)

// pageSize is how many items one page of vmcp's own lists carries.
const pageSize = 500

// dispatch runs one client request against its session's Operations, so
// that the session's decorators (policy, rate limits) see every request.
func dispatch(ctx context.Context, s *session.Session, method string, params json.RawMessage) (json.RawMessage, error) {
	if len(params) == 0 || string(params) == "null" {
		params = json.RawMessage(`{}`)
	}
	// What vmcp routes and filters on must be what the backend acts on.
	params, err := session.CanonicalParams(method, params)
	if err != nil {
		return nil, err
	}
	ops := s.Operations()
	switch method {
	case "ping":
		return json.RawMessage(`{}`), nil
	case "tools/list":
		return page(ctx, params, "tools", ops, session.ListTools)
	case "resources/list":
		return page(ctx, params, "resources", ops, session.ListResources)
	case "resources/templates/list":
		return page(ctx, params, "resourceTemplates", ops, session.ListResourceTemplates)
	case "prompts/list":
		return page(ctx, params, "prompts", ops, session.ListPrompts)
	case "tasks/list":
		return page(ctx, params, "tasks", ops, session.ListTasks)
	case "tools/call", "resources/read", "prompts/get", "completion/complete",
		"resources/subscribe", "resources/unsubscribe", "logging/setLevel",
		"tasks/get", "tasks/result", "tasks/cancel":
		return ops.Call(ctx, method, params)
	}
	return nil, jsonrpc.Errorf(jsonrpc.CodeMethodNotFound, "method not found: %s", method)
}

// notify handles a client notification. notifications/initialized needs
// no answer, but until it arrives the client may not be sent requests:
// backend requests that came earlier wait for it (session.ClientInitialized).
func notify(ctx context.Context, s *session.Session, c *clientSession, msg *jsonrpc.Message) {
	switch msg.Method {
	case "notifications/cancelled":
		c.cancelRequest(msg.Params)
	case "notifications/initialized":
		s.ClientInitialized()
	case "notifications/roots/list_changed":
		s.NotifyBackends(ctx, msg.Method, msg.Params)
	}
}

// page answers a list request with one page of the session's list.
func page(ctx context.Context, params json.RawMessage, key string, ops session.Operations, list session.List) (json.RawMessage, error) {
	var p struct {
		Cursor *string `json:"cursor"`
	}
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "invalid params: %v", err)
	}
	all, err := ops.List(ctx, list)
	if err != nil {
		return nil, err
	}
	start := 0
	if p.Cursor != nil {
		if start, err = decodeCursor(*p.Cursor); err != nil || start > len(all) {
			return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "invalid cursor")
		}
	}
	end := min(start+pageSize, len(all))
	b := make([]byte, 0, 256)
	b = append(b, `{"`...)
	b = append(b, key...)
	b = append(b, `":[`...)
	for i, it := range all[start:end] {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it...)
	}
	b = append(b, ']')
	if end < len(all) {
		b = append(b, `,"nextCursor":"`...)
		b = append(b, encodeCursor(end)...)
		b = append(b, '"')
	}
	return append(b, '}'), nil
}

// toRPCError maps a call's error to what the client sees. Backend JSON-RPC
// errors pass through, scrubbed of configured secrets; a backend that is
// unavailable is named with that category only, since the cause (a dial
// error, an HTTP status text) may show internal addresses; everything else
// gets a clear message that names the backend where one is involved,
// scrubbed too, and never a session ID.
func (h *legacyHandler) toRPCError(ctx context.Context, err error) *jsonrpc.Error {
	if e := jsonrpc.AsError(err); e != nil {
		return h.opts.Redactor.Error(e)
	}
	switch {
	case session.InvalidParams(err):
		return jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "%s", h.opts.Redactor.Redact(err.Error()))
	case errors.Is(err, session.ErrClosed):
		return jsonrpc.Errorf(codeServerError, "session closed")
	case errors.Is(err, backend.ErrTooLarge):
		// vmcp's own words, naming the setting.
		return jsonrpc.Errorf(codeServerError, "%s", h.opts.Redactor.Redact(err.Error()))
	case errors.Is(err, backend.ErrUnavailable) && !errors.Is(err, session.ErrCircuitOpen):
		h.log.WarnContext(ctx, "backend call failed", "backend", failedBackend(err), "err", err)
		return jsonrpc.Errorf(codeServerError, "%s", failureText(err))
	case errors.Is(err, session.ErrNoBackends),
		errors.Is(err, session.ErrTooManyCalls),
		errors.Is(err, backend.ErrUnavailable),
		errors.Is(err, backend.ErrProcessLimit),
		errors.Is(err, backend.ErrNoResponse),
		errors.Is(err, backend.ErrSessionNotFound),
		errors.Is(err, backend.ErrClosed),
		errors.Is(err, backend.ErrTooLarge),
		errors.Is(err, backend.ErrOverBudget),
		errors.Is(err, backend.ErrMismatchedID),
		errors.Is(err, context.DeadlineExceeded):
		return jsonrpc.Errorf(codeServerError, "%s", h.opts.Redactor.Redact(err.Error()))
	case errors.Is(err, context.Canceled):
		return jsonrpc.Errorf(codeServerError, "request cancelled")
	}
	h.log.ErrorContext(ctx, "request failed", "err", err)
	return jsonrpc.Errorf(jsonrpc.CodeInternalError, "internal error: %s", h.opts.Redactor.Redact(fmt.Sprint(err)))
}
