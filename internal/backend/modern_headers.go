package backend

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vmcp/vmcp/internal/jsonrpc"
)

// What a modern client learns from the results it passes on: the
// x-mcp-header bindings of each tool (from tools/list), which the
// transport requires as Mcp-Param-* headers on tools/call, and the caching
// hints of list results.

// paramHeader binds a (possibly nested) tool argument to a header.
type paramHeader struct {
	path   []string
	header string // Mcp-Param-<name>
}

// Cacheability is what a backend said of how long a result may be cached:
// its ttlMs and cacheScope ("public" or "private").
type Cacheability struct {
	TTL   time.Duration
	Scope string
}

// ListCache reports the caching hint of the last result of a list method
// (tools/list, prompts/list, resources/list, resources/templates/list):
// over all its pages, the shortest ttlMs, and private if any page was.
// ok is false if the backend sent none.
func (c *modernClient) ListCache(method string) (Cacheability, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.cache[method]
	return h, ok
}

// observe records what a result teaches: caching hints of lists and the
// header bindings of tools.
func (c *modernClient) observe(method string, params, res json.RawMessage) {
	switch method {
	case "tools/list", "prompts/list", "resources/list", "resources/templates/list":
	default:
		return
	}
	first := true
	if cur, _ := jsonrpc.Member(params, "cursor"); cur != nil && string(cur) != "null" {
		first = false
	}
	hint, hasHint := cacheHint(res)
	var bindings map[string][]paramHeader
	if method == "tools/list" && bytes.Contains(res, []byte(`"x-mcp-header"`)) {
		bindings = toolBindings(res)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cache == nil {
		c.cache = make(map[string]Cacheability)
	}
	prev, had := c.cache[method]
	switch {
	case !hasHint && first:
		delete(c.cache, method)
	case !hasHint:
	case first || !had:
		c.cache[method] = hint
	default:
		if hint.TTL < prev.TTL {
			prev.TTL = hint.TTL
		}
		if hint.Scope == "private" {
			prev.Scope = "private"
		}
		c.cache[method] = prev
	}
	if method != "tools/list" {
		return
	}
	if first {
		c.params = nil
	}
	for name, b := range bindings {
		if c.params == nil {
			c.params = make(map[string][]paramHeader)
		}
		c.params[name] = b
	}
}

// cacheHint reads ttlMs and cacheScope of a result.
func cacheHint(res json.RawMessage) (Cacheability, bool) {
	ttl, _ := jsonrpc.Member(res, "ttlMs")
	if ttl == nil {
		return Cacheability{}, false
	}
	ms, err := strconv.ParseInt(string(ttl), 10, 64)
	if err != nil || ms < 0 {
		return Cacheability{}, false
	}
	h := Cacheability{TTL: time.Duration(min(ms, math.MaxInt64/int64(time.Millisecond))) * time.Millisecond, Scope: "public"}
	if raw, _ := jsonrpc.Member(res, "cacheScope"); raw != nil {
		if s, ok := jsonrpc.Unquote(raw); ok && s == "private" {
			h.Scope = s
		}
	}
	return h, true
}

// schemaProperty is what x-mcp-header needs of a JSON Schema.
type schemaProperty struct {
	Header     string                    `json:"x-mcp-header"`
	Properties map[string]schemaProperty `json:"properties"`
}

// toolBindings reads the x-mcp-header annotations of each tool of a
// tools/list result. A malformed one is skipped: the backend will say so
// if it needs the header.
func toolBindings(res json.RawMessage) map[string][]paramHeader {
	var r struct {
		Tools []struct {
			Name        string         `json:"name"`
			InputSchema schemaProperty `json:"inputSchema"`
		} `json:"tools"`
	}
	_ = json.Unmarshal(res, &r)
	out := make(map[string][]paramHeader)
	for _, t := range r.Tools {
		var bs []paramHeader
		collectBindings(t.InputSchema.Properties, nil, &bs, 0)
		if len(bs) > 0 {
			out[t.Name] = bs
		}
	}
	return out
}

// maxSchemaDepth bounds the walk of a backend's schema, and
// maxParamHeaders the headers one tool may ask for.
const maxSchemaDepth, maxParamHeaders = 32, 32

func collectBindings(props map[string]schemaProperty, prefix []string, out *[]paramHeader, depth int) {
	if depth > maxSchemaDepth {
		return
	}
	for name, p := range props {
		if len(*out) >= maxParamHeaders {
			return
		}
		path := append(append([]string(nil), prefix...), name)
		if p.Header != "" && validHeader("Mcp-Param-"+p.Header, "") {
			*out = append(*out, paramHeader{path: path, header: "Mcp-Param-" + p.Header})
		}
		collectBindings(p.Properties, path, out, depth+1)
	}
}

// paramHeaders adds to h the Mcp-Param-* headers tool's bindings ask for,
// from the call's arguments. An argument absent, null or not a primitive
// gets no header, as the spec says.
func (c *modernClient) paramHeaders(h http.Header, tool string, params json.RawMessage) {
	c.mu.Lock()
	bs := c.params[tool]
	c.mu.Unlock()
	if len(bs) == 0 {
		return
	}
	args, _ := jsonrpc.Member(params, "arguments")
	for _, b := range bs {
		v := args
		for _, k := range b.path {
			if v, _ = jsonrpc.Member(v, k); v == nil {
				break
			}
		}
		if s, ok := primitive(v); ok {
			h[b.header] = []string{encodeHeaderValue(s)}
		}
	}
}

// primitive renders a string, boolean or safe integer argument as the
// header carries it.
func primitive(v json.RawMessage) (string, bool) {
	if len(v) == 0 {
		return "", false
	}
	switch v[0] {
	case '"':
		return jsonrpc.Unquote(v)
	case 't', 'f':
		return string(v), string(v) == "true" || string(v) == "false"
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53-1 {
		return "", false
	}
	return strconv.FormatInt(int64(f), 10), true
}

// encodeHeaderValue carries s as it is if it is plain printable ASCII
// without edge whitespace, else in the =?base64?…?= form, as is any value
// that looks like that form already.
func encodeHeaderValue(s string) string {
	plain := s == "" || (s[0] != ' ' && s[0] != '\t' && s[len(s)-1] != ' ' && s[len(s)-1] != '\t')
	for i := 0; plain && i < len(s); i++ {
		plain = s[i] >= 0x20 && s[i] <= 0x7e
	}
	if plain && !(strings.HasPrefix(s, "=?base64?") && strings.HasSuffix(s, "?=")) {
		return s
	}
	return "=?base64?" + base64.StdEncoding.EncodeToString([]byte(s)) + "?="
}
