package h1server

import (
	"bytes"
	"net/http"
	"net/textproto"
)

// head is a parsed request head that the fast path serves. Its strings
// are substrings of one string made from the head, so parsing allocates
// once for all of them (plus the header map).
type head struct {
	path          string
	host          string
	header        http.Header
	contentLength int64
	close         bool     // Connection: close
	vals          []string // backs header's values
}

// knownKeys are the header names MCP clients send, canonical, so that a
// name in any case maps to one constant string.
var knownKeys = []string{
	"Accept", "Accept-Encoding", "Authorization", "Connection",
	"Content-Length", "Content-Type", "Host", "Last-Event-Id",
	"Mcp-Protocol-Version", "Mcp-Session-Id", "Origin", "User-Agent",
}

// parseHead parses raw, a request head up to and including the blank line
// that ends it, for a POST to path. It returns ok=false for anything the
// fast path leaves to net/http: another method or target, another HTTP
// version, a body that is not sized by exactly one Content-Length, Expect,
// Upgrade, Transfer-Encoding, obsolete line folding, bare LF line ends, or
// any byte net/http would reject. net/http then answers it, errors
// included, exactly as it always has.
//
// The header goes into hdr, which must be empty, and its values into vals
// when it is large enough: a connection reuses both from one request to
// the next (its handler has returned by then).
func parseHead(raw []byte, path string, hdr http.Header, vals []string) (h head, ok bool) {
	line, rest, found := bytes.Cut(raw, crlf)
	if !found {
		return h, false
	}
	target, found := bytes.CutPrefix(line, []byte("POST "))
	if !found {
		return h, false
	}
	target, found = bytes.CutSuffix(target, []byte(" HTTP/1.1"))
	if !found || string(target) != path {
		return h, false
	}
	h.path = path
	s := string(rest) // the one allocation for every name and value
	n := bytes.Count(rest, crlf) - 1
	if n < 1 {
		return h, false
	}
	h.header = hdr
	if cap(vals) < n {
		vals = make([]string, n)
	}
	h.vals = vals[:n]
	vals = h.vals
	sawLength := false
	for i := 0; ; i++ {
		end := indexCRLF(s)
		if end < 0 {
			return h, false
		}
		if end == 0 {
			if s != "\r\n" || !sawLength || h.host == "" {
				return h, false
			}
			return h, true
		}
		if i == n {
			return h, false // no blank line ends the head
		}
		field := s[:end]
		s = s[end+2:]
		colon := indexByte(field, ':')
		if colon <= 0 || !validName(field[:colon]) {
			return h, false
		}
		v := trimOWS(field[colon+1:])
		if !validValue(v) {
			return h, false
		}
		k := canonicalKey(field[:colon])
		switch k {
		case "Content-Length":
			if sawLength {
				return h, false
			}
			cl, ok := parseLength(v)
			if !ok {
				return h, false
			}
			sawLength, h.contentLength = true, cl
		case "Host":
			if h.host != "" || !validHost(v) {
				return h, false
			}
			h.host = v
		case "Connection":
			for _, tok := range splitComma(v) {
				switch {
				case equalFold(tok, "close"):
					h.close = true
				case !equalFold(tok, "keep-alive"):
					return h, false // upgrade and the like: net/http decides
				}
			}
		case "Transfer-Encoding", "Expect", "Upgrade", "Te", "Trailer":
			return h, false
		}
		if _, dup := h.header[k]; dup {
			h.header[k] = append(h.header[k], v)
			continue
		}
		vals[i] = v
		h.header[k] = vals[i : i+1 : i+1]
	}
}

var crlf = []byte("\r\n")

func indexCRLF(s string) int {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '\r' {
			if s[i+1] != '\n' {
				return -1 // a bare CR: leave it to net/http
			}
			return i
		}
		if s[i] == '\n' {
			return -1 // a bare LF
		}
	}
	return -1
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// canonicalKey returns the canonical form of name, a constant for the
// names MCP clients send.
func canonicalKey(name string) string {
	for _, k := range knownKeys {
		if len(k) == len(name) && equalFold(name, k) {
			return k
		}
	}
	return textproto.CanonicalMIMEHeaderKey(name)
}

// equalFold compares ASCII case-insensitively.
func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func splitComma(v string) []string {
	var out []string
	for v != "" {
		i := indexByte(v, ',')
		tok := v
		if i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			v = ""
		}
		if tok = trimOWS(tok); tok != "" {
			out = append(out, tok)
		}
	}
	return out
}

func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// parseLength accepts 1 to 18 decimal digits, as net/http does (no sign,
// no spaces, no overflow).
func parseLength(v string) (int64, bool) {
	if v == "" || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// validName reports whether name is an RFC 9110 token.
func validName(name string) bool {
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return false
		}
	}
	return name != ""
}

func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return c < 0x80 && bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), c) >= 0
}

// validHost accepts the bytes net/http accepts in a Host header.
func validHost(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			bytes.IndexByte([]byte("!$%&'()*+,-.:;=[]_~"), c) >= 0
		if !ok {
			return false
		}
	}
	return v != ""
}

// validValue rejects control bytes other than tab, as net/http does.
func validValue(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
