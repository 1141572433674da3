package frontend

import (
	"regexp"

	"github.com/vmcp/vmcp/internal/backend"
)

// backendName finds the backend an error names; errors from the backend
// and session packages start with it, and names are [a-z0-9_-]+.
var backendName = regexp.MustCompile(`backend "([a-z0-9_-]+)"`)

// failedBackend is the name of the backend err names, or "".
func failedBackend(err error) string {
	if m := backendName.FindStringSubmatch(err.Error()); m != nil {
		return m[1]
	}
	return ""
}

// failureText is what a client sees of a backend failure whose cause may
// show an internal address or the backend's own text: the backend's name
// and the category only. The log has the whole error, redacted.
func failureText(err error) string {
	if name := failedBackend(err); name != "" {
		return `backend "` + name + `": ` + backend.Category(err)
	}
	return "backend " + backend.Category(err)
}
