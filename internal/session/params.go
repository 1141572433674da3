package session

import (
	"encoding/json"
	"fmt"
)

// paramString reads one string field of a params object.
func paramString(params json.RawMessage, key string) (string, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(params, &m); err != nil || m == nil {
		return "", fmt.Errorf("%w: params must be an object", errBadParams)
	}
	raw, ok := m[key]
	if !ok {
		return "", fmt.Errorf("%w: missing %q", errBadParams, key)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%w: %q must be a string", errBadParams, key)
	}
	return s, nil
}

// setParam returns params with the string field key set to v; every other
// field passes through as it was.
func setParam(params json.RawMessage, key, v string) (json.RawMessage, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return setRaw(params, key, b)
}

func setRaw(params json.RawMessage, key string, v json.RawMessage) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(params, &m); err != nil || m == nil {
		return nil, fmt.Errorf("%w: params must be an object", errBadParams)
	}
	m[key] = v
	return json.Marshal(m)
}

func mustRaw(params json.RawMessage, key string) json.RawMessage {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(params, &m)
	return m[key]
}
