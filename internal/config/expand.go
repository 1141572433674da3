package config

import (
	"fmt"
	"regexp"
	"strings"
)

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expand replaces each ${NAME} in s with lookup(NAME) and each $$ with $,
// in one pass: expanded text is not expanded again. It reports whether any
// variable was substituted. Its errors name variables, never values.
//
// A $ followed by a letter or underscore is an error rather than literal
// text, because "$FILES_KEY" is almost always a forgotten pair of braces,
// and sending it verbatim as an API key fails far from the cause. Any other
// lone $ ("$5", a trailing "$") is kept.
func expand(s string, lookup func(string) (string, bool)) (string, bool, error) {
	if !strings.Contains(s, "$") {
		return s, false, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	fromEnv := false
	for i := 0; i < len(s); {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			i++
			continue
		}
		switch next := s[i+1]; {
		case next == '$':
			b.WriteByte('$')
			i += 2
		case next == '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", false, fmt.Errorf(`unterminated "${": close it with "}", or write "$$" for a literal "$"`)
			}
			name := s[i+2 : i+2+end]
			if !envNameRE.MatchString(name) {
				return "", false, fmt.Errorf("invalid environment variable name %q in ${...}", name)
			}
			val, ok := lookup(name)
			if !ok {
				return "", false, fmt.Errorf("environment variable %s is not set", name)
			}
			b.WriteString(val)
			fromEnv = true
			i += 2 + end + 1
		case next == '_' || 'a' <= next && next <= 'z' || 'A' <= next && next <= 'Z':
			j := i + 1
			for j < len(s) && (s[j] == '_' || 'a' <= s[j] && s[j] <= 'z' || 'A' <= s[j] && s[j] <= 'Z' || '0' <= s[j] && s[j] <= '9') {
				j++
			}
			name := s[i+1 : j]
			return "", false, fmt.Errorf(`"$%s" is not expanded: write "${%s}" for a variable or "$$%s" for literal text`, name, name, name)
		default:
			b.WriteByte('$')
			i++
		}
	}
	return b.String(), fromEnv, nil
}
