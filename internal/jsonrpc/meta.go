package jsonrpc

import "encoding/json"

// SetMeta returns a copy of obj whose _meta has member key set to value
// (valid JSON, not checked), adding _meta if obj has none or a null one.
// It fails with ErrNotObject if obj or its _meta is not an object.
func SetMeta(obj []byte, key string, value []byte) (json.RawMessage, error) {
	meta, err := Member(obj, "_meta")
	if err != nil {
		return nil, err
	}
	if len(meta) == 0 || string(meta) == "null" {
		meta = json.RawMessage("{}")
	}
	m, err := SetMember(meta, key, value)
	if err != nil {
		return nil, err
	}
	return SetMember(obj, "_meta", m)
}

// DropMeta returns obj without the member key of its _meta, or obj itself
// if its _meta has no such member. It fails with ErrNotObject if obj or
// its _meta is not an object.
func DropMeta(obj []byte, key string) (json.RawMessage, error) {
	meta, err := Member(obj, "_meta")
	if err != nil || len(meta) == 0 || string(meta) == "null" {
		return obj, err
	}
	found := false
	kept := make([]byte, 0, len(meta))
	kept = append(kept, '{')
	err = EachMember(meta, func(name []byte, v json.RawMessage) {
		if string(name) == key {
			found = true
			return
		}
		if len(kept) > 1 {
			kept = append(kept, ',')
		}
		kept = AppendString(kept, string(name))
		kept = append(append(kept, ':'), v...)
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return obj, nil
	}
	return SetMember(obj, "_meta", append(kept, '}'))
}
