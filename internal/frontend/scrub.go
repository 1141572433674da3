package frontend

import (
	"regexp"

	"github.com/vmcp/vmcp/internal/backend"
	"github.com/vmcp/vmcp/internal/jsonrpc"
)

// scrub returns a backend's JSON-RPC error with configured secrets hidden
// in its message and data: a backend may echo the credential vmcp sent it
// ("401: bad Authorization: Bearer …").
func (h *legacyHandler) scrub(e *jsonrpc.Error) *jsonrpc.Error {
	r := h.opts.Redactor
	msg, data := r.Redact(e.Message), r.RedactJSON(e.Data)
	if msg == e.Message && string(data) == string(e.Data) {
		return e
	}
	return &jsonrpc.Error{Code: e.Code, Message: msg, Data: data}
}

// backendName finds the backend an error names; errors from the backend
// and session packages start with it, and names are [a-z0-9_-]+.
var backendName = regexp.MustCompile(`backend "([a-z0-9_-]+)"`)

// failureText is what a client sees of a backend failure whose cause may
// show an internal address or the backend's own text: the backend's name
// and the category only. The log has the whole error, redacted.
func failureText(err error) string {
	if m := backendName.FindStringSubmatch(err.Error()); m != nil {
		return `backend "` + m[1] + `": ` + backend.Category(err)
	}
	return "backend " + backend.Category(err)
}
