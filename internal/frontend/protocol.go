package frontend

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/vmcp/vmcp/internal/jsonrpc"
	"github.com/vmcp/vmcp/internal/session"
)

const (
	headerSessionID       = "Mcp-Session-Id"
	headerProtocolVersion = "Mcp-Protocol-Version"

	codeInvalidRequest = jsonrpc.CodeInvalidRequest
	codeServerError    = jsonrpc.CodeServerError
	// codeSessionNotFound accompanies HTTP 404 for an unknown session.
	codeSessionNotFound = -32001
)

// legacyVersions are the protocol versions with protocol sessions that vmcp
// speaks to clients, newest first.
var legacyVersions = []string{"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}

func isLegacy(v string) bool {
	for _, l := range legacyVersions {
		if v == l {
			return true
		}
	}
	return false
}

// isModern reports whether v belongs to the stateless era (2026-07-28 on).
func isModern(v string) bool { return v >= "2026-07-28" && len(v) == 10 }

// negotiate picks the version to answer initialize with: the client's if
// vmcp speaks it, else the newest legacy version.
func negotiate(requested string) string {
	if isLegacy(requested) {
		return requested
	}
	return legacyVersions[0]
}

// serverCapabilities is what vmcp advertises whatever its backends: the
// union of what it can route; backends that lack a feature simply
// contribute nothing to it. The tasks capability is the backends' own,
// merged (initializeResult).
const serverCapabilities = `{"tools":{"listChanged":true},"resources":{"subscribe":true,"listChanged":true},"prompts":{"listChanged":true},"completions":{},"logging":{}}`

// initializeResult is vmcp's answer to initialize for session s: its own
// capabilities plus what the session's backends declared (tasks,
// instructions labelled by backend).
func initializeResult(s *session.Session, version string, serverInfo json.RawMessage) any {
	caps := json.RawMessage(serverCapabilities)
	if tasks := s.TasksCapability(); tasks != nil {
		if withTasks, err := jsonrpc.SetMember(caps, "tasks", tasks); err == nil {
			caps = withTasks
		}
	}
	var meta any
	if u := s.Unavailable(); len(u) > 0 {
		// The client can see which backends its session started without.
		meta = map[string]any{session.MetaBackends: map[string]any{"unavailable": u}}
	}
	return struct {
		ProtocolVersion string          `json:"protocolVersion"`
		Capabilities    json.RawMessage `json:"capabilities"`
		ServerInfo      json.RawMessage `json:"serverInfo"`
		Instructions    string          `json:"instructions,omitempty"`
		Meta            any             `json:"_meta,omitempty"`
	}{version, caps, serverInfo, s.Instructions(), meta}
}

func errorf(code int, format string, args ...any) *jsonrpc.Error {
	return jsonrpc.Errorf(code, format, args...)
}

// writeHTTPError answers with an HTTP status and a JSON-RPC error body.
func writeHTTPError(w http.ResponseWriter, status int, id json.RawMessage, e *jsonrpc.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(jsonrpc.AppendError(nil, id, e))
}

// retryAfter formats a Retry-After value in whole seconds (at least 1).
func retryAfter(secs float64) string {
	n := int(secs + 0.5)
	if n < 1 {
		n = 1
	}
	return strconv.Itoa(n)
}

// cursor encodes an opaque pagination cursor over vmcp's own lists.
func encodeCursor(offset int) string { return fmt.Sprintf("v1.%d", offset) }

var errBadCursor = errors.New("invalid cursor")

func decodeCursor(c string) (int, error) {
	var n int
	if _, err := fmt.Sscanf(c, "v1.%d", &n); err != nil || n < 0 || encodeCursor(n) != c {
		return 0, errBadCursor
	}
	return n, nil
}
