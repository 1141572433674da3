package frontend

import (
	"encoding/json"

	"github.com/vmcp/vmcp/internal/jsonrpc"
	"github.com/vmcp/vmcp/internal/session"
)

// discover answers server/discover: the versions vmcp serves, the
// capabilities its backends declared, merged (modernCapabilities), its own
// serverInfo and the backends' instructions, labelled by backend.
func (h *modernHandler) discover(s *session.Session) json.RawMessage {
	meta := map[string]any{metaServerInfo: h.s.opts.ServerInfo}
	if u := s.Unavailable(); len(u) > 0 {
		meta[session.MetaBackends] = map[string]any{"unavailable": u}
	}
	b, _ := json.Marshal(struct {
		ResultType        string          `json:"resultType"`
		SupportedVersions []string        `json:"supportedVersions"`
		Capabilities      json.RawMessage `json:"capabilities"`
		Instructions      string          `json:"instructions,omitempty"`
		Meta              map[string]any  `json:"_meta"`
	}{"complete", supportedVersions(), modernCapabilities(s), s.Instructions(), meta})
	return h.cacheable(b, false)
}

// modernCapabilities is what vmcp offers a modern client on s: a feature
// some backend declared, as vmcp serves it. vmcp owns the merged catalog,
// so it tells of list changes whatever the backends say, and it routes
// resource subscriptions when a backend takes them.
func modernCapabilities(s *session.Session) json.RawMessage {
	caps := make(map[string]json.RawMessage)
	if s.Capability("tools") != nil {
		caps["tools"] = json.RawMessage(`{"listChanged":true}`)
	}
	if r := s.Capability("resources"); r != nil {
		caps["resources"] = json.RawMessage(`{"listChanged":true}`)
		if sub, _ := jsonrpc.Member(r, "subscribe"); string(sub) == "true" {
			caps["resources"] = json.RawMessage(`{"subscribe":true,"listChanged":true}`)
		}
	}
	if s.Capability("prompts") != nil {
		caps["prompts"] = json.RawMessage(`{"listChanged":true}`)
	}
	for _, k := range []string{"completions", "logging"} {
		if s.Capability(k) != nil {
			caps[k] = json.RawMessage(`{}`)
		}
	}
	if tasks := s.TasksCapability(); tasks != nil {
		caps["tasks"] = tasks
	}
	b, _ := json.Marshal(caps)
	return b
}

// methodCapability is the capability each modern request needs.
var methodCapability = map[string]string{
	"tools/list": "tools", "tools/call": "tools",
	"resources/list": "resources", "resources/read": "resources", "resources/templates/list": "resources",
	"prompts/list": "prompts", "prompts/get": "prompts",
	"completion/complete": "completions",
}

// offered reports whether s offers what method needs, as discover says. A
// session that started without some backend is not judged: the request
// then reports what is wrong.
func offered(s *session.Session, method string) bool {
	k, ok := methodCapability[method]
	return !ok || len(s.Unavailable()) > 0 || s.Capability(k) != nil
}
