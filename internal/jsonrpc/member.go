package jsonrpc

import (
	"bytes"
	"encoding/json"
	"errors"
)

// ErrNotObject is returned by Member and SetMember when their input is not
// a valid JSON object.
var ErrNotObject = errors.New("not a JSON object")

// span is where one member's value lies in an object.
type span struct{ v0, v1 int }

// members checks that obj is one valid JSON object and calls fn for each
// of its top-level members whose name is key, in order.
func members(obj []byte, key string, fn func(span)) error {
	return scanObject(obj, func(k []byte, a, b int) {
		if keyIs(k, key) {
			fn(span{v0: a, v1: b})
		}
	})
}

// scanObject checks that obj is one valid JSON object and calls member
// with the raw key (quotes included) and the value's span of each of its
// top-level members, in order.
func scanObject(obj []byte, member func(key []byte, start, end int)) error {
	s := scanner{data: obj}
	s.ws()
	if s.pos >= len(obj) || obj[s.pos] != '{' {
		return ErrNotObject
	}
	err := s.object(member)
	if err == nil {
		if s.ws(); s.pos != len(obj) {
			err = errSyntax
		}
	}
	if err != nil {
		return ErrNotObject
	}
	return nil
}

// keyIs reports whether the raw key (quotes included) names key.
func keyIs(raw []byte, key string) bool {
	name := raw[1 : len(raw)-1]
	if bytes.IndexByte(name, '\\') < 0 {
		return string(name) == key
	}
	var k string
	return json.Unmarshal(raw, &k) == nil && k == key
}

// Member returns the raw value of the member key of the JSON object obj,
// or nil if it has none (the last one if it is repeated, as
// encoding/json does). It fails with ErrNotObject unless all of obj is a
// valid JSON object. The result aliases obj.
func Member(obj []byte, key string) (json.RawMessage, error) {
	var v json.RawMessage
	err := members(obj, key, func(sp span) { v = obj[sp.v0:sp.v1] })
	if err != nil {
		return nil, err
	}
	return v, nil
}

// SetMember returns a copy of obj in which every member key has value
// (valid JSON, not checked), or, if obj has no such member, with
// "key":value added first. All other bytes of obj are kept as they are.
func SetMember(obj []byte, key string, value []byte) (json.RawMessage, error) {
	var spans []span
	var one [1]span
	err := members(obj, key, func(sp span) {
		if spans == nil {
			spans = one[:0]
		}
		spans = append(spans, sp)
	})
	if err != nil {
		return nil, err
	}
	if len(spans) == 0 {
		open := bytes.IndexByte(obj, '{') + 1
		rest := bytes.TrimLeft(obj[open:], " \t\r\n")
		out := make([]byte, 0, len(obj)+len(key)+len(value)+4)
		out = append(out, obj[:open]...)
		out = AppendString(out, key)
		out = append(out, ':')
		out = append(out, value...)
		if rest[0] != '}' {
			out = append(out, ',')
		}
		return append(out, obj[open:]...), nil
	}
	grow := 0
	for _, sp := range spans {
		grow += len(value) - (sp.v1 - sp.v0)
	}
	out := make([]byte, 0, len(obj)+max(grow, 0))
	last := 0
	for _, sp := range spans {
		out = append(out, obj[last:sp.v0]...)
		out = append(out, value...)
		last = sp.v1
	}
	return append(out, obj[last:]...), nil
}

// Unquote returns the text of raw, a valid JSON value, if it is a string.
func Unquote(raw []byte) (string, bool) {
	if len(raw) == 0 {
		return "", false
	}
	return unquote(raw)
}

// ErrNotArray is returned by Elements when its input is not a valid JSON
// array.
var ErrNotArray = errors.New("not a JSON array")

// Elements splits the JSON array arr into its raw elements, which alias
// arr.
func Elements(arr []byte) ([]json.RawMessage, error) {
	s := scanner{data: arr}
	s.ws()
	if s.pos >= len(arr) || arr[s.pos] != '[' {
		return nil, ErrNotArray
	}
	var out []json.RawMessage
	s.pos++
	s.depth = 1
	s.ws()
	if s.pos < len(arr) && arr[s.pos] == ']' {
		s.pos++
	} else {
		for {
			s.ws()
			v0 := s.pos
			if s.value() != nil {
				return nil, ErrNotArray
			}
			out = append(out, arr[v0:s.pos])
			s.ws()
			if s.pos >= len(arr) {
				return nil, ErrNotArray
			}
			c := arr[s.pos]
			s.pos++
			if c == ']' {
				break
			}
			if c != ',' {
				return nil, ErrNotArray
			}
		}
	}
	if s.ws(); s.pos != len(arr) {
		return nil, ErrNotArray
	}
	return out, nil
}

// EachMember checks that obj is one valid JSON object and calls fn for each
// of its top-level members in order, with the member's name decoded
// (escapes resolved) and its raw value. name is valid only during the
// call; value aliases obj. It fails with ErrNotObject unless all of obj is
// a valid JSON object; fn may have seen some members by then.
func EachMember(obj []byte, fn func(name []byte, value json.RawMessage)) error {
	return scanObject(obj, func(k []byte, a, b int) {
		name := k[1 : len(k)-1]
		if bytes.IndexByte(name, '\\') >= 0 {
			var d string
			if json.Unmarshal(k, &d) == nil {
				name = []byte(d)
			}
		}
		fn(name, obj[a:b])
	})
}
