package jsonrpc

import (
	"bytes"
	"encoding/json"
	"errors"
)

// ErrTooDeep is returned by Decode for a message nested deeper than allowed.
var ErrTooDeep = errors.New("message nested too deeply")

// Decode parses one JSON-RPC message. It returns an *Error with
// CodeParseError for malformed JSON (or nesting beyond maxDepth, if > 0)
// and CodeInvalidRequest for JSON that is not a JSON-RPC 2.0 message.
//
// The whole message is validated, raw members included, in one pass that
// builds nothing but the Message. Members other than jsonrpc, id, method,
// params, result and error are ignored; names match exactly, since
// JSON-RPC names are case-sensitive, and a repeated member keeps its last
// value. The Message does not alias data: the caller may reuse data at once.
func Decode(data []byte, maxDepth int) (*Message, *Error) { return decode(data, maxDepth, true) }

// DecodeOwned is Decode for a buffer the caller hands over: the Message's
// raw members alias data, which the caller must not change afterwards. It
// saves a copy of a large message.
func DecodeOwned(data []byte, maxDepth int) (*Message, *Error) { return decode(data, maxDepth, false) }

func decode(data []byte, maxDepth int, clone bool) (*Message, *Error) {
	s := scanner{data: data, maxDepth: maxDepth}
	s.ws()
	if s.pos >= len(data) || data[s.pos] != '{' {
		return nil, nonObject(&s)
	}
	if clone {
		// One copy holds every raw member, so the Message owns its bytes.
		s.data = bytes.Clone(data)
	}
	var f fields
	err := s.object(f.member(s.data))
	if err == nil {
		s.ws()
		if s.pos != len(s.data) {
			err = errSyntax
		}
	}
	if err != nil {
		return nil, parseError(err)
	}
	return f.message()
}

// fields are the raw members of a message as the scanner found them.
type fields struct {
	m                       Message
	version, method, errRaw []byte
	hasVersion, hasError    bool
}

func (f *fields) member(data []byte) func(key []byte, a, b int) {
	return func(key []byte, a, b int) {
		name := key[1 : len(key)-1]
		if bytes.IndexByte(name, '\\') >= 0 {
			// A member name spelled with escapes is rare; resolve it the
			// slow way and treat it like the plain spelling.
			var k string
			if json.Unmarshal(key, &k) != nil {
				return
			}
			name = []byte(k)
		}
		v := data[a:b]
		switch string(name) {
		case "jsonrpc":
			f.version, f.hasVersion = v, true
		case "id":
			f.m.ID = v
		case "method":
			f.method = v
		case "params":
			f.m.Params = v
		case "result":
			f.m.Result = v
		case "error":
			f.errRaw, f.hasError = v, true
		}
	}
}

// message applies JSON-RPC's rules to the members found.
func (f *fields) message() (*Message, *Error) {
	m := &f.m
	if f.hasVersion {
		v, ok := unquote(f.version)
		if !ok {
			return nil, Errorf(CodeInvalidRequest, `invalid request: "jsonrpc" must be a string`)
		}
		m.JSONRPC = v
	}
	if f.method != nil && !isNull(f.method) {
		v, ok := unquote(f.method)
		if !ok {
			return nil, Errorf(CodeInvalidRequest, `invalid request: "method" must be a string`)
		}
		m.Method = v
	}
	if f.hasError && !isNull(f.errRaw) {
		if err := json.Unmarshal(f.errRaw, &m.Error); err != nil {
			return nil, Errorf(CodeInvalidRequest, "invalid request: %v", err)
		}
	}
	if m.JSONRPC != Version {
		return nil, Errorf(CodeInvalidRequest, `invalid request: "jsonrpc" must be "2.0"`)
	}
	if m.ID != nil {
		if isNull(m.ID) {
			m.ID = nil
			if m.Method != "" {
				return nil, Errorf(CodeInvalidRequest, "invalid request: id must not be null")
			}
		} else if !validID(m.ID) {
			return nil, Errorf(CodeInvalidRequest, "invalid request: id must be a string or a number")
		}
	}
	if m.Method == "" && m.Result == nil && m.Error == nil {
		return nil, Errorf(CodeInvalidRequest, "invalid request: missing method")
	}
	if m.Method != "" && (m.Result != nil || m.Error != nil) {
		return nil, Errorf(CodeInvalidRequest, "invalid request: a request cannot carry a result or error")
	}
	if m.Params != nil && !isNull(m.Params) && m.Params[0] != '{' && m.Params[0] != '[' {
		return nil, Errorf(CodeInvalidRequest, "invalid request: params must be an object or array")
	}
	return m, nil
}

// nonObject classifies a message that does not start with '{' (the
// scanner is at its first non-space byte).
func nonObject(s *scanner) *Error {
	batch := s.pos < len(s.data) && s.data[s.pos] == '['
	if err := s.value(); err != nil {
		return parseError(err)
	}
	if s.ws(); s.pos != len(s.data) {
		return parseError(errSyntax)
	}
	if batch {
		return Errorf(CodeInvalidRequest, "invalid request: JSON-RPC batches are not supported")
	}
	return Errorf(CodeInvalidRequest, "invalid request: expected a JSON-RPC object")
}

func parseError(err error) *Error {
	if errors.Is(err, ErrTooDeep) {
		return Errorf(CodeParseError, "parse error: %v", err)
	}
	return Errorf(CodeParseError, "parse error: invalid JSON")
}

// unquote returns the text of a checked JSON value if it is a string.
func unquote(raw []byte) (string, bool) {
	if raw[0] != '"' {
		return "", false
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return intern(raw[1 : len(raw)-1]), true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// intern returns b as a string without allocating for the version and the
// methods seen on every call.
func intern(b []byte) string {
	switch string(b) {
	case "2.0":
		return "2.0"
	case "tools/call":
		return "tools/call"
	case "tools/list":
		return "tools/list"
	case "resources/read":
		return "resources/read"
	case "resources/list":
		return "resources/list"
	case "resources/templates/list":
		return "resources/templates/list"
	case "prompts/get":
		return "prompts/get"
	case "prompts/list":
		return "prompts/list"
	case "completion/complete":
		return "completion/complete"
	case "ping":
		return "ping"
	case "initialize":
		return "initialize"
	case "notifications/initialized":
		return "notifications/initialized"
	case "notifications/progress":
		return "notifications/progress"
	case "notifications/cancelled":
		return "notifications/cancelled"
	case "notifications/message":
		return "notifications/message"
	}
	return string(b)
}

func isNull(raw json.RawMessage) bool { return len(raw) == 4 && string(raw) == "null" }

func validID(raw json.RawMessage) bool {
	switch c := raw[0]; {
	case c == '"':
		return true
	case c == '-' || (c >= '0' && c <= '9'):
		return true
	}
	return false
}
