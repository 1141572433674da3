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

// dispatch runs one client request against its session.
func dispatch(ctx context.Context, s *session.Session, method string, params json.RawMessage) (json.RawMessage, error) {
	if len(params) == 0 || string(params) == "null" {
		params = json.RawMessage(`{}`)
	}
	switch method {
	case "tools/call":
		return s.CallTool(ctx, params)
	case "ping":
		return json.RawMessage(`{}`), nil
	case "tools/list":
		return page(params, "tools", s.Tools)
	case "resources/list":
		return page(params, "resources", s.Resources)
	case "resources/templates/list":
		return page(params, "resourceTemplates", s.ResourceTemplates)
	case "prompts/list":
		return page(params, "prompts", s.Prompts)
	case "resources/read":
		return s.ReadResource(ctx, params)
	case "prompts/get":
		return s.GetPrompt(ctx, params)
	case "completion/complete":
		return s.Complete(ctx, params)
	case "resources/subscribe":
		return s.Subscribe(ctx, params)
	case "resources/unsubscribe":
		return s.Unsubscribe(ctx, params)
	case "tasks/get", "tasks/result", "tasks/cancel":
		return s.Task(ctx, method, params)
	case "tasks/list":
		return page(params, "tasks", func() ([]json.RawMessage, error) { return s.ListTasks(ctx) })
	case "logging/setLevel":
		if err := s.Broadcast(ctx, method, params); err != nil {
			return nil, err
		}
		return json.RawMessage(`{}`), nil
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
func page(params json.RawMessage, key string, items func() ([]json.RawMessage, error)) (json.RawMessage, error) {
	var p struct {
		Cursor *string `json:"cursor"`
	}
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "invalid params: %v", err)
	}
	all, err := items()
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
// errors pass through unchanged; everything else gets a clear message that
// names the backend where one is involved and never a session ID.
func (h *legacyHandler) toRPCError(err error) *jsonrpc.Error {
	if e := jsonrpc.AsError(err); e != nil {
		return e
	}
	switch {
	case session.InvalidParams(err):
		return jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "%v", err)
	case errors.Is(err, session.ErrClosed):
		return jsonrpc.Errorf(codeServerError, "session closed")
	case errors.Is(err, session.ErrNoBackends),
		errors.Is(err, session.ErrTooManyCalls),
		errors.Is(err, backend.ErrUnavailable),
		errors.Is(err, backend.ErrNoResponse),
		errors.Is(err, backend.ErrSessionNotFound),
		errors.Is(err, backend.ErrClosed),
		errors.Is(err, context.DeadlineExceeded):
		return jsonrpc.Errorf(codeServerError, "%v", err)
	case errors.Is(err, context.Canceled):
		return jsonrpc.Errorf(codeServerError, "request cancelled")
	}
	h.log.Error("request failed", "err", err)
	return jsonrpc.Errorf(jsonrpc.CodeInternalError, "internal error: %s", fmt.Sprint(err))
}
