package frontend

import (
	"encoding/json"

	"github.com/vmcp/vmcp/internal/jsonrpc"
	"github.com/vmcp/vmcp/internal/session"
)

// discover answers server/discover: the versions vmcp serves, what it can
// route (the capabilities it declares to legacy clients, with the
// backends' tasks capability merged in), its own serverInfo and the
// backends' instructions, labelled by backend.
func (h *modernHandler) discover(s *session.Session) json.RawMessage {
	caps := json.RawMessage(serverCapabilities)
	if tasks := s.TasksCapability(); tasks != nil {
		if withTasks, err := jsonrpc.SetMember(caps, "tasks", tasks); err == nil {
			caps = withTasks
		}
	}
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
	}{"complete", supportedVersions(), caps, s.Instructions(), meta})
	return h.cacheable(b, false)
}
