package jsonrpc

import "errors"

// maxNesting is the nesting limit when the caller sets none. It is
// encoding/json's own limit, so that scan accepts exactly what json.Valid
// accepts.
const maxNesting = 10000

var errSyntax = errors.New("invalid JSON")

// scanner validates JSON and finds the byte spans of values without
// building anything: the hot path needs only a few members of one object,
// and the rest passes through raw.
type scanner struct {
	data     []byte
	pos      int
	depth    int
	maxDepth int
}

func (s *scanner) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// value checks the JSON value at pos (after whitespace) and moves past it.
func (s *scanner) value() error {
	s.ws()
	if s.pos >= len(s.data) {
		return errSyntax
	}
	switch c := s.data[s.pos]; {
	case c == '{':
		return s.object(nil)
	case c == '[':
		return s.array()
	case c == '"':
		_, err := s.str()
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return errSyntax
}

func (s *scanner) push() error {
	s.depth++
	if s.maxDepth > 0 && s.depth > s.maxDepth {
		return ErrTooDeep
	}
	if s.depth > maxNesting {
		return errSyntax
	}
	return nil
}

// object checks an object at pos. If member is set, it is called with the
// raw key (quotes included) and the value's span for every member at this
// level, after the value has been checked.
func (s *scanner) object(member func(key []byte, start, end int)) error {
	if err := s.push(); err != nil {
		return err
	}
	s.pos++ // '{'
	s.ws()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		s.depth--
		return nil
	}
	for {
		s.ws()
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return errSyntax
		}
		k0 := s.pos
		if _, err := s.str(); err != nil {
			return err
		}
		key := s.data[k0:s.pos]
		s.ws()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return errSyntax
		}
		s.pos++
		s.ws()
		v0 := s.pos
		if err := s.value(); err != nil {
			return err
		}
		if member != nil {
			member(key, v0, s.pos)
		}
		s.ws()
		if s.pos >= len(s.data) {
			return errSyntax
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case '}':
			s.pos++
			s.depth--
			return nil
		default:
			return errSyntax
		}
	}
}

func (s *scanner) array() error {
	if err := s.push(); err != nil {
		return err
	}
	s.pos++ // '['
	s.ws()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		s.depth--
		return nil
	}
	for {
		if err := s.value(); err != nil {
			return err
		}
		s.ws()
		if s.pos >= len(s.data) {
			return errSyntax
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case ']':
			s.pos++
			s.depth--
			return nil
		default:
			return errSyntax
		}
	}
}

// str checks a string at pos and moves past its closing quote. It reports
// whether the string holds escapes.
func (s *scanner) str() (escaped bool, err error) {
	s.pos++ // '"'
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			s.pos++
			return escaped, nil
		case c == '\\':
			escaped = true
			s.pos++
			if s.pos >= len(s.data) {
				return escaped, errSyntax
			}
			switch s.data[s.pos] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.pos++
			case 'u':
				if s.pos+4 >= len(s.data) {
					return escaped, errSyntax
				}
				for _, h := range s.data[s.pos+1 : s.pos+5] {
					if !isHex(h) {
						return escaped, errSyntax
					}
				}
				s.pos += 5
			default:
				return escaped, errSyntax
			}
		case c < 0x20:
			return escaped, errSyntax
		default:
			s.pos++
		}
	}
	return escaped, errSyntax
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func (s *scanner) digits() int {
	n := 0
	for s.pos < len(s.data) && s.data[s.pos] >= '0' && s.data[s.pos] <= '9' {
		s.pos++
		n++
	}
	return n
}

// number checks -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() error {
	if s.data[s.pos] == '-' {
		s.pos++
	}
	if s.pos >= len(s.data) {
		return errSyntax
	}
	if s.data[s.pos] == '0' {
		s.pos++
	} else if s.digits() == 0 {
		return errSyntax
	}
	if s.pos < len(s.data) && s.data[s.pos] == '.' {
		s.pos++
		if s.digits() == 0 {
			return errSyntax
		}
	}
	if s.pos < len(s.data) && (s.data[s.pos] == 'e' || s.data[s.pos] == 'E') {
		s.pos++
		if s.pos < len(s.data) && (s.data[s.pos] == '+' || s.data[s.pos] == '-') {
			s.pos++
		}
		if s.digits() == 0 {
			return errSyntax
		}
	}
	return nil
}

func (s *scanner) literal(lit string) error {
	if len(s.data)-s.pos < len(lit) || string(s.data[s.pos:s.pos+len(lit)]) != lit {
		return errSyntax
	}
	s.pos += len(lit)
	return nil
}

// Valid reports whether data is one valid JSON value (surrounded by
// optional whitespace). It accepts what json.Valid accepts, without
// allocating.
func Valid(data []byte) bool {
	s := scanner{data: data}
	if s.value() != nil {
		return false
	}
	s.ws()
	return s.pos == len(data)
}
