package frontend

import (
	"net/http"

	"github.com/vmcp/vmcp/internal/identity"
)

// Authenticator establishes who sends a request to the MCP endpoint
// (internal/authn implements it). Safe for concurrent use.
type Authenticator interface {
	// Authenticate returns the caller of r; when it cannot, it has
	// answered r itself (401 or 403) and returns false.
	Authenticate(w http.ResponseWriter, r *http.Request) (*identity.Identity, bool)
	// Metadata is the RFC 9728 Protected Resource Metadata document, or
	// nil for none.
	Metadata() []byte
}

// metadataPath is where RFC 9728 puts Protected Resource Metadata.
const metadataPath = "/.well-known/oauth-protected-resource"

// authenticate runs the configured Authenticator and puts the caller in
// the request's context; without one every caller is anonymous.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	if s.opts.Auth == nil {
		return r, true
	}
	id, ok := s.opts.Auth.Authenticate(w, r)
	if !ok {
		return nil, false
	}
	return r.WithContext(identity.NewContext(r.Context(), id)), true
}

// serveMetadata registers the metadata document at the well-known path and
// at its form with the MCP path inserted (RFC 9728 §3.1), which is where
// clients that know the MCP URL look first.
func (s *Server) serveMetadata() {
	if s.opts.Auth == nil || s.opts.Auth.Metadata() == nil {
		return
	}
	doc := s.opts.Auth.Metadata()
	h := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Write(doc)
	}
	s.mux.HandleFunc("GET "+metadataPath, h)
	s.mux.HandleFunc("GET "+metadataPath+s.opts.Path, h)
}

// clientIdentity is the identity sessions are bound to and counted by:
// the authenticated caller's (iss, sub), or for an anonymous caller its
// address (which counts sessions but binds none; see
// session.IdentityAllowed).
func clientIdentity(r *http.Request) string {
	if k := identity.FromContext(r.Context()).Key(); k != "" {
		return k
	}
	return clientAddress(r)
}
