package aggregate

import "strings"

// ResourceBackend returns the backend owning uri: the backend listing it as a
// resource, else the backend of the first template in [Catalog.Templates]
// that matches it. ok is false if none does.
//
// Matching is deliberately loose (RFC 6570 levels 1-3): literal parts must
// match exactly and each {expression} is a wildcard that may be empty. Simple
// {var}, {.var} and {;var} do not span "/", because their expansion would
// percent-encode it; {+var}, {#var}, {/var}, {?var}, {&var} and exploded
// {var*} match anything.
func (c *Catalog) ResourceBackend(uri string) (string, bool) {
	if b, ok := c.ResourceRoutes[uri]; ok {
		return b, true
	}
	for _, t := range c.Templates {
		if matchTemplate(t.URITemplate, uri) {
			return t.Backend, true
		}
	}
	return "", false
}

// TemplateBackend returns the backend owning the exact uriTemplate, as named
// by a completion/complete reference.
func (c *Catalog) TemplateBackend(uriTemplate string) (string, bool) {
	for _, t := range c.Templates {
		if t.URITemplate == uriTemplate {
			return t.Backend, true
		}
	}
	return "", false
}

// part is a piece of a parsed URI template: a literal or a wildcard.
type part struct {
	literal  string
	wildcard bool
	slashes  bool // the wildcard may match "/"
}

// parseTemplate splits a URI template into literals and wildcards. An
// unclosed "{" is taken literally.
func parseTemplate(t string) []part {
	var parts []part
	for t != "" {
		open := strings.IndexByte(t, '{')
		if open < 0 {
			break
		}
		end := strings.IndexByte(t[open:], '}')
		if end < 0 {
			break
		}
		if open > 0 {
			parts = append(parts, part{literal: t[:open]})
		}
		expr := t[open+1 : open+end]
		slashes := strings.Contains(expr, "*") ||
			(expr != "" && strings.IndexByte("+#/?&", expr[0]) >= 0)
		parts = append(parts, part{wildcard: true, slashes: slashes})
		t = t[open+end+1:]
	}
	if t != "" {
		parts = append(parts, part{literal: t})
	}
	return parts
}

// matchTemplate reports whether uri is an expansion of template t. It tracks
// the set of uri offsets reachable after each part, so its cost is
// O(len(parts) × len(uri)) however many wildcards a template has.
func matchTemplate(t, uri string) bool {
	n := len(uri)
	reach := make([]bool, n+1)
	next := make([]bool, n+1)
	reach[0] = true
	for _, p := range parseTemplate(t) {
		clear(next)
		alive := false
		switch {
		case !p.wildcard:
			for i := 0; i+len(p.literal) <= n; i++ {
				if reach[i] && strings.HasPrefix(uri[i:], p.literal) {
					next[i+len(p.literal)] = true
					alive = true
				}
			}
		case p.slashes:
			for i := 0; i <= n; i++ {
				next[i] = reach[i] || (i > 0 && next[i-1])
				alive = alive || next[i]
			}
		default:
			for i := 0; i <= n; i++ {
				next[i] = reach[i] || (i > 0 && next[i-1] && uri[i-1] != '/')
				alive = alive || next[i]
			}
		}
		if !alive {
			return false
		}
		reach, next = next, reach
	}
	return reach[n]
}
