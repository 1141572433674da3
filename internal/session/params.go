package session

import (
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
