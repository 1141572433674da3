package frontend

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/vmcp/vmcp/internal/jsonrpc"
)

// The modern era (2026-07-28) mirrors parts of the body into headers so
// that intermediaries can route without parsing it; a server that parses
// it must check that the two agree.
const (
	headerMethod      = "Mcp-Method"
	headerName        = "Mcp-Name"
	headerParamPrefix = "Mcp-Param-"

	codeHeaderMismatch     = -32020
	codeMissingCapability  = -32021
	codeUnsupportedVersion = -32022

	base64Prefix = "=?base64?"
	base64Suffix = "?="
)

// modernVersions are the stateless-era versions vmcp serves, newest first.
var modernVersions = []string{"2026-07-28"}

func isServedModern(v string) bool {
	for _, m := range modernVersions {
		if v == m {
			return true
		}
	}
	return false
}

// supportedVersions is every version vmcp serves, newest first.
func supportedVersions() []string {
	return append(append([]string(nil), modernVersions...), legacyVersions...)
}

func headerMismatch(format string, args ...any) *jsonrpc.Error {
	return errorf(codeHeaderMismatch, "Header mismatch: "+format, args...)
}

// namedMethods are the requests whose target travels in Mcp-Name.
func nameOf(method string, params json.RawMessage) (string, bool) {
	var p struct {
		Name *string `json:"name"`
		URI  *string `json:"uri"`
	}
	switch method {
	case "tools/call", "prompts/get":
		if json.Unmarshal(params, &p) != nil || p.Name == nil {
			return "", true
		}
		return *p.Name, true
	case "resources/read":
		if json.Unmarshal(params, &p) != nil || p.URI == nil {
			return "", true
		}
		return *p.URI, true
	}
	return "", false
}

// checkStandardHeaders checks Mcp-Method and, for the requests that name a
// target, Mcp-Name against the body.
func checkStandardHeaders(h http.Header, method string, params json.RawMessage) *jsonrpc.Error {
	hm, ok := headerValue(h, headerMethod)
	if !ok {
		return headerMismatch("the %s header is required", headerMethod)
	}
	if hm != method {
		return headerMismatch("%s header value %q does not match body value %q", headerMethod, hm, method)
	}
	body, named := nameOf(method, params)
	if !named {
		return nil
	}
	hn, ok := headerValue(h, headerName)
	if !ok {
		return headerMismatch("the %s header is required for %s", headerName, method)
	}
	decoded, ok := decodeHeaderValue(hn)
	if !ok {
		return headerMismatch("%s header holds invalid Base64", headerName)
	}
	if decoded != body {
		return headerMismatch("%s header value %q does not match body value %q", headerName, hn, body)
	}
	return nil
}

// headerValue returns a header's value without surrounding whitespace
// (RFC 9110 §5.5), and whether it is present and non-empty.
func headerValue(h http.Header, name string) (string, bool) {
	vs := h.Values(name)
	if len(vs) == 0 {
		return "", false
	}
	v := strings.TrimSpace(vs[0])
	return v, v != ""
}

// decodeHeaderValue undoes the =?base64?…?= form; any other value is
// literal. It reports false for a wrapped value that is not valid
// (padded, standard-alphabet) Base64.
func decodeHeaderValue(v string) (string, bool) {
	inner, ok := strings.CutPrefix(v, base64Prefix)
	if !ok {
		return v, true
	}
	inner, ok = strings.CutSuffix(inner, base64Suffix)
	if !ok {
		return v, true
	}
	b, err := base64.StdEncoding.Strict().DecodeString(inner)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// paramBinding is a tool parameter its schema mirrors into a header.
type paramBinding struct {
	path   []string
	header string // full header name, Mcp-Param-…
}

type schemaProps struct {
	Properties map[string]struct {
		XMCPHeader json.RawMessage `json:"x-mcp-header"`
		schemaProps
	} `json:"properties"`
}

// paramBindings returns the x-mcp-header annotations of a tool's
// inputSchema, at any depth.
func paramBindings(tool json.RawMessage) []paramBinding {
	if !bytes.Contains(tool, []byte(`"x-mcp-header"`)) {
		return nil // the common case, without a parse
	}
	var t struct {
		InputSchema schemaProps `json:"inputSchema"`
	}
	if json.Unmarshal(tool, &t) != nil {
		return nil
	}
	var out []paramBinding
	var walk func(p schemaProps, prefix []string, depth int)
	walk = func(p schemaProps, prefix []string, depth int) {
		if depth > 16 {
			return
		}
		for name, prop := range p.Properties {
			path := append(append([]string(nil), prefix...), name)
			var hn string
			if json.Unmarshal(prop.XMCPHeader, &hn) == nil && hn != "" {
				out = append(out, paramBinding{path: path, header: headerParamPrefix + hn})
			}
			walk(prop.schemaProps, path, depth+1)
		}
	}
	walk(t.InputSchema, nil, 0)
	return out
}

// checkParamHeaders checks the Mcp-Param-* headers of a tools/call against
// its arguments, for the parameters tool mirrors into headers, and returns
// the headers to pass on to the backend.
func checkParamHeaders(h http.Header, tool, params json.RawMessage) (http.Header, *jsonrpc.Error) {
	bindings := paramBindings(tool)
	if len(bindings) == 0 {
		return nil, nil
	}
	var p struct {
		Arguments map[string]json.RawMessage `json:"arguments"`
	}
	_ = json.Unmarshal(params, &p)
	var fwd http.Header
	for _, b := range bindings {
		hv, present := headerValue(h, b.header)
		arg, ok := lookupArg(p.Arguments, b.path)
		if !ok || string(arg) == "null" {
			if present {
				return nil, headerMismatch("unexpected %s header for an absent parameter %q", b.header, strings.Join(b.path, "."))
			}
			continue
		}
		if !present {
			return nil, headerMismatch("missing %s header for parameter %q", b.header, strings.Join(b.path, "."))
		}
		decoded, ok := decodeHeaderValue(hv)
		if !ok {
			return nil, headerMismatch("%s header holds invalid Base64", b.header)
		}
		if !primitiveEqual(decoded, arg) {
			return nil, headerMismatch("%s header value does not match the body value of %q", b.header, strings.Join(b.path, "."))
		}
		if fwd == nil {
			fwd = make(http.Header, len(bindings))
		}
		fwd[http.CanonicalHeaderKey(b.header)] = []string{hv}
	}
	return fwd, nil
}

func lookupArg(args map[string]json.RawMessage, path []string) (json.RawMessage, bool) {
	cur, ok := args[path[0]]
	for _, part := range path[1:] {
		if !ok {
			return nil, false
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(cur, &obj) != nil {
			return nil, false
		}
		cur, ok = obj[part]
	}
	return cur, ok
}

// primitiveEqual compares a decoded header value with a JSON argument: a
// string literally, a boolean as true/false, an integer numerically (so
// "42.0" matches 42). Other JSON values never match.
func primitiveEqual(header string, arg json.RawMessage) bool {
	var v any
	if json.Unmarshal(arg, &v) != nil {
		return false
	}
	switch v := v.(type) {
	case string:
		return header == v
	case bool:
		return header == strconv.FormatBool(v)
	case float64:
		if v != math.Trunc(v) || math.Abs(v) > 1<<53-1 {
			return false
		}
		f, err := strconv.ParseFloat(header, 64)
		return err == nil && f == v
	}
	return false
}
