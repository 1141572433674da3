package session

import (
	"encoding/json"

	"github.com/vmcp/vmcp/internal/aggregate"
	"github.com/vmcp/vmcp/internal/jsonrpc"
)

// Capability returns the server capability key ("tools", "resources",
// "prompts", "completions", "logging"...) merged over the backends that
// declared it when the session connected them (aggregate.MergeCapability),
// or nil when none did.
func (s *Session) Capability(key string) json.RawMessage {
	var caps []json.RawMessage
	for _, m := range s.roster.Load().members() {
		raw, _ := jsonrpc.Member(s.backendCapabilities(m.name), key)
		caps = append(caps, raw)
	}
	return aggregate.MergeCapability(caps)
}
