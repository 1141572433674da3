// Package redact hides secrets in text that came from outside vmcp
// (backend errors, a stdio child's stderr) before vmcp logs it or returns
// it to a client: every configured secret value, and the credential of
// any "Bearer <token>".
//
// A Redactor is built from the configuration; a config reload may Add the
// values a new config brings. It is safe for concurrent use. A nil
// *Redactor still hides bearer tokens.
package redact

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/vmcp/vmcp/internal/jsonrpc"
)

// MinLen is the length below which a configured value is not hidden: "1",
// "dev" or "true" are no secrets, and hiding them would garble every line.
const MinLen = 6

// Mask replaces what is hidden.
const Mask = "[REDACTED]"

// bearer matches the credential of a Bearer authorization value, however
// it was quoted or escaped; shorter words ("Bearer token") are left.
var bearer = regexp.MustCompile(`(?i)(\bbearer(?:[\s:=]|\\u0020)+)[A-Za-z0-9\-._~+/\\]{6,}=*`)

// Redactor hides a set of secret values, which only grows.
type Redactor struct {
	secrets atomic.Pointer[strings.Replacer] // nil: no secret values
	mu      sync.Mutex                       // serialises Add
	values  []string
}

// New returns a Redactor for the given secret values. Values shorter than
// MinLen are ignored. For each value it also hides the credential of a
// "<scheme> <credential>" value (such as "Bearer abc…"), and the value as
// it reads inside a JSON string, escaped.
func New(values ...string) *Redactor {
	r := &Redactor{}
	r.Add(values...)
	return r
}

// Add hides values too, from now on; those hidden already stay hidden
// (a secret a reload removed may still be in a backend's text).
func (r *Redactor) Add(values ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.values)
	for _, v := range values {
		if !slices.Contains(r.values, v) {
			r.values = append(r.values, v)
		}
	}
	if len(r.values) > n || n == 0 {
		r.secrets.Store(replacer(r.values))
	}
}

// replacer replaces each form of values with Mask; nil: nothing to hide.
func replacer(values []string) *strings.Replacer {
	var forms []string
	for _, v := range values {
		own := []string{v}
		if scheme, cred, ok := strings.Cut(v, " "); ok && scheme != "" {
			own = append(own, strings.TrimSpace(cred))
		}
		for _, f := range own {
			if len(f) < MinLen {
				continue
			}
			forms = append(forms, f)
			// As it reads inside a JSON string; Go's encoders also
			// escape <, > and &.
			if q, err := json.Marshal(f); err == nil && string(q[1:len(q)-1]) != f {
				forms = append(forms, string(q[1:len(q)-1]))
			}
		}
	}
	if len(forms) == 0 {
		return nil
	}
	// The longest first: a value that holds another is hidden whole.
	slices.SortFunc(forms, func(a, b string) int { return len(b) - len(a) })
	forms = slices.Compact(forms)
	pairs := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		pairs = append(pairs, f, Mask)
	}
	return strings.NewReplacer(pairs...)
}

// Redact returns s with every secret value and bearer credential replaced
// by Mask.
func (r *Redactor) Redact(s string) string {
	if r != nil {
		if rep := r.secrets.Load(); rep != nil {
			s = rep.Replace(s)
		}
	}
	if containsFold(s, "bearer") {
		s = bearer.ReplaceAllString(s, "${1}"+Mask)
	}
	return s
}

// RedactJSON returns raw JSON with the secrets in it hidden. If hiding one
// broke the JSON (a secret that spans its syntax), it returns the hidden
// text as one JSON string instead.
func (r *Redactor) RedactJSON(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return raw
	}
	s := r.Redact(string(raw))
	if s == string(raw) {
		return raw
	}
	if json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	q, _ := json.Marshal(s)
	return q
}

// Error returns a JSON-RPC error (a backend's, which may quote the
// credential it was sent) with the secrets in its message and data
// hidden; e itself when it holds none.
func (r *Redactor) Error(e *jsonrpc.Error) *jsonrpc.Error {
	msg, data := r.Redact(e.Message), r.RedactJSON(e.Data)
	if msg == e.Message && string(data) == string(e.Data) {
		return e
	}
	return &jsonrpc.Error{Code: e.Code, Message: msg, Data: data}
}

// containsFold reports whether s contains the lower-case ASCII word w in
// any case, without allocating.
func containsFold(s, w string) bool {
	for i := 0; i+len(w) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(w)], w) {
			return true
		}
	}
	return false
}
