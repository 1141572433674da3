package session

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/vmcp/vmcp/internal/jsonrpc"
)

// Params are handled as raw JSON: the few members routing needs are found
// by scanning, and a rewritten member is spliced in, so every other byte
// reaches the backend as the client sent it.

// paramString reads one string field of a params object.
func paramString(params json.RawMessage, key string) (string, error) {
	raw, err := jsonrpc.Member(params, key)
	if err != nil {
		return "", fmt.Errorf("%w: params must be an object", errBadParams)
	}
	if raw == nil {
		return "", fmt.Errorf("%w: missing %q", errBadParams, key)
	}
	s, ok := jsonrpc.Unquote(raw)
	if !ok {
		return "", fmt.Errorf("%w: %q must be a string", errBadParams, key)
	}
	return s, nil
}

// setParam returns params with the string field key set to v; every other
// field passes through as it was.
func setParam(params json.RawMessage, key, v string) (json.RawMessage, error) {
	return setRaw(params, key, jsonrpc.AppendString(nil, v))
}

func setRaw(params json.RawMessage, key string, v json.RawMessage) (json.RawMessage, error) {
	out, err := jsonrpc.SetMember(params, key, v)
	if err != nil {
		return nil, fmt.Errorf("%w: params must be an object", errBadParams)
	}
	return out, nil
}

func mustRaw(params json.RawMessage, key string) json.RawMessage {
	raw, _ := jsonrpc.Member(params, key)
	return raw
}

// forwarded lists, per method whose params vmcp routes on, the members a
// backend receives; the first is the one routed on. Everything else a
// client sends is dropped (see CanonicalParams).
var forwarded = map[string][]string{
	// inputResponses and requestState carry a 2026-07-28 client's retry
	// (MRTR) to a backend that asked for input in its own result.
	"tools/call":     {"name", "arguments", "_meta", "task", "inputResponses", "requestState"},
	"prompts/get":    {"name", "arguments", "_meta", "inputResponses", "requestState"},
	"resources/read": {"uri", "_meta", "inputResponses", "requestState"},
}

// maxForwarded is the longest list in forwarded.
const maxForwarded = 6

// CanonicalParams returns the params of a tools/call, prompts/get or
// resources/read as the backend will receive them: an object of only the
// members vmcp routes on and forwards (name, arguments, _meta and, for a
// task-augmented tools/call, task; or uri and _meta), each value byte for
// byte as the client sent it. Params of other methods come back as they
// are.
//
// A backend may decode differently from vmcp: Go's encoding/json matches
// member names case-insensitively and takes the last duplicate. So a params
// object with a duplicate of one of those members, or a member whose name
// differs from one only in case ("NAME", "Uri"), is refused with an error
// wrapping errBadParams (-32602): whatever vmcp filtered and routed on is
// what the backend acts on.
func CanonicalParams(method string, params json.RawMessage) (json.RawMessage, error) {
	keep, ok := forwarded[method]
	if !ok {
		return params, nil
	}
	var vals [maxForwarded]json.RawMessage
	var bad error
	err := jsonrpc.EachMember(params, func(name []byte, v json.RawMessage) {
		for i, k := range keep {
			switch {
			case string(name) == k:
				if vals[i] != nil && bad == nil {
					bad = fmt.Errorf("%w: duplicate member %q in %s params", errBadParams, k, method)
				}
				vals[i] = v
			case bad == nil && bytes.EqualFold(name, []byte(k)):
				bad = fmt.Errorf("%w: member %q of %s params must be spelled %q (member names are case-sensitive)",
					errBadParams, shorten(name), method, k)
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("%w: params must be an object", errBadParams)
	}
	if bad != nil {
		return nil, bad
	}
	out := make([]byte, 0, len(params)+2)
	out = append(out, '{')
	for i, k := range keep {
		if vals[i] == nil {
			continue
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = jsonrpc.AppendString(out, k)
		out = append(out, ':')
		out = append(out, vals[i]...)
	}
	return append(out, '}'), nil
}

// shorten bounds a client's member name quoted in an error.
func shorten(name []byte) string {
	const maxName = 64
	if len(name) > maxName {
		return string(name[:maxName]) + "..."
	}
	return string(name)
}
