package session

import "github.com/vmcp/vmcp/internal/backend"

// listMethods are the backend methods behind the catalog's lists.
var listMethods = map[List]string{
	ListTools:             "tools/list",
	ListResources:         "resources/list",
	ListResourceTemplates: "resources/templates/list",
	ListPrompts:           "prompts/list",
}

// ListCache is the caching hint (ttlMs, cacheScope) of one of the
// session's lists, merged over its backends as a cache must read it: the
// shortest TTL, and private if any backend said private. ok is false
// unless every backend of the session gave one: a legacy backend gives
// none, and one the session has not connected yet (a retry may bring it,
// and its items) none either. The front end then decides by its own
// configuration.
func (s *Session) ListCache(l List) (backend.Cacheability, bool) {
	method, ok := listMethods[l]
	if !ok || s.noBackends() != nil || len(s.Unavailable()) > 0 {
		return backend.Cacheability{}, false
	}
	var merged backend.Cacheability
	n := 0
	for _, m := range s.roster.Load().members() {
		c := m.current()
		if c == nil {
			continue
		}
		lc, ok := c.(interface {
			ListCache(method string) (backend.Cacheability, bool)
		})
		if !ok {
			return backend.Cacheability{}, false
		}
		h, ok := lc.ListCache(method)
		if !ok {
			return backend.Cacheability{}, false
		}
		if n == 0 || h.TTL < merged.TTL {
			merged.TTL = h.TTL
		}
		if n == 0 || h.Scope == "private" {
			merged.Scope = h.Scope
		}
		n++
	}
	return merged, n > 0
}
