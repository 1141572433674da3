package session

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"
)

// Debug records of a session's life and calls. They name a session by a
// number counted per process, never by its ID (a secret), and never carry
// arguments or results.

// logStart records a session as it reaches its client.
func (m *Manager) logStart(ctx context.Context, s *Session, how string) {
	m.opts.Factory.hooks.started(ctx, s, how)
	if !m.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	var missing []string
	for _, u := range s.Unavailable() {
		missing = append(missing, u.Name+" ("+u.Reason+")")
	}
	attrs := []any{"session", s.seq, "by", how, "backends", len(s.roster.Load().members()) - len(missing)}
	if len(missing) > 0 {
		attrs = append(attrs, "unavailable", missing)
	}
	m.log.DebugContext(ctx, "session started", attrs...)
}

// logEnd records a session's end and why (detail, if set, says more than
// reason), and tells the hooks. ctx is the request that ended it, if
// one did: its trace goes on the line.
func (m *Manager) logEnd(ctx context.Context, s *Session, reason EndReason, detail string) {
	switch {
	case detail != "":
	case reason == EndDelete:
		detail = "DELETE" // the client's request, as it is named
	default:
		detail = string(reason)
	}
	m.log.DebugContext(ctx, "session ended", "session", s.seq, "reason", detail, "age", m.opts.Now().Sub(s.created).Round(time.Millisecond))
	m.opts.Factory.hooks.ended(s, reason)
}

// logCall records one call to a backend: the tool or prompt name (not a
// resource URI, which may carry a credential), how long it took, and its
// outcome as a category.
func (s *Session) logCall(ctx context.Context, backendName, method string, params, result json.RawMessage, start time.Time, err error) {
	log := s.factory.log
	if !log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs := []any{"session", s.seq, "backend", backendName, "method", method}
	if method == "tools/call" || method == "prompts/get" {
		if name, perr := paramString(params, "name"); perr == nil {
			attrs = append(attrs, "name", name)
		}
	}
	outcome := "ok"
	switch {
	case err != nil:
		outcome = reason(err)
	case method == "tools/call" && toolError(result):
		// A JSON-RPC success, but the tool failed: the call someone
		// debugging looks for.
		outcome = "tool error"
	}
	attrs = append(attrs, "took", time.Since(start).Round(time.Microsecond), "outcome", outcome)
	log.DebugContext(ctx, "backend call", attrs...)
}

// toolError reports whether a tools/call result says isError. It decodes
// the whole result, so only the debug log calls it.
func toolError(result json.RawMessage) bool {
	var r struct {
		IsError bool `json:"isError"`
	}
	return json.Unmarshal(result, &r) == nil && r.IsError
}
