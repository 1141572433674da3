package aggregate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// kind describes one of the four item lists.
type kind struct {
	noun  string // for messages: "tool", "resource template", ...
	field string // the identifying field: "name", "uri", "uriTemplate"
	// renamed kinds are resolved by the strategy; the others are never
	// renamed and always resolved by rank.
	renamed bool
}

var (
	kindTool     = kind{noun: "tool", field: "name", renamed: true}
	kindPrompt   = kind{noun: "prompt", field: "name", renamed: true}
	kindResource = kind{noun: "resource", field: "uri"}
	kindTemplate = kind{noun: "resource template", field: "uriTemplate"}
)

// entry is one candidate item of the catalog.
type entry struct {
	key     string // exposed name, or the URI / URI template
	orig    string // the backend's own name (equal to key for resources)
	backend int    // index into the backends
	item    json.RawMessage
}

// decode parses one item and returns its fields and identifying value. A
// non-empty problem means the item must be skipped.
func decode(raw json.RawMessage, field string) (fields map[string]json.RawMessage, key, problem string) {
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return nil, "", "not a JSON object"
	}
	v, ok := fields[field]
	if !ok {
		return nil, "", fmt.Sprintf("missing %q", field)
	}
	if err := json.Unmarshal(v, &key); err != nil || bytes.Equal(v, []byte("null")) {
		return nil, "", fmt.Sprintf("%q is not a string", field)
	}
	if key == "" {
		return nil, "", fmt.Sprintf("%q is empty", field)
	}
	return fields, key, ""
}

// decoded is a well-formed item of one backend.
type decoded struct {
	fields map[string]json.RawMessage
	key    string
	raw    json.RawMessage
}

// valid decodes a backend's items, skipping malformed ones with a warning.
func (a *aggregator) valid(backend int, k kind, raw []json.RawMessage) []decoded {
	out := make([]decoded, 0, len(raw))
	for i, r := range raw {
		fields, key, problem := decode(r, k.field)
		if problem != "" {
			a.warnf("backend %s: skipping %s at index %d: %s", quote(a.names[backend]), k.noun, i, problem)
			continue
		}
		out = append(out, decoded{fields: fields, key: key, raw: r})
	}
	return out
}

// tools applies the backend's filter and overrides and then the strategy's
// naming to its tools.
func (a *aggregator) tools(backend int) []entry {
	name := a.names[backend]
	rule := a.opts.Tools[name]
	list := a.valid(backend, kindTool, a.backends[backend].Tools)

	offered := make(map[string]bool, len(list))
	for _, d := range list {
		offered[d.key] = true
	}
	var keep map[string]bool
	if len(rule.Filter) > 0 {
		keep = make(map[string]bool, len(rule.Filter))
		for _, f := range rule.Filter {
			if !offered[f] && !keep[f] {
				a.warnf("backend %s: filter names tool %s, which the backend does not offer", quote(name), quote(f))
			}
			keep[f] = true
		}
	}
	// Sorted so that warnings come out in the same order every time.
	for _, orig := range slices.Sorted(maps.Keys(rule.Overrides)) {
		switch {
		case !offered[orig]:
			a.warnf("backend %s: override for tool %s ignored: the backend does not offer it", quote(name), quote(orig))
		case keep != nil && !keep[orig]:
			a.warnf("backend %s: override for tool %s ignored: the tool is filtered out", quote(name), quote(orig))
		}
	}

	out := make([]entry, 0, len(list))
	for _, d := range list {
		if keep != nil && !keep[d.key] {
			continue
		}
		ov := rule.Overrides[d.key]
		exposed := d.key
		switch {
		case ov.Name != "":
			exposed = ov.Name // an explicit choice: never prefixed
		case a.opts.Strategy == StrategyPrefix:
			exposed = a.prefix(backend) + d.key
		}
		e, ok := a.entry(backend, kindTool, d, exposed, ov.Description)
		if ok {
			out = append(out, e)
		}
	}
	return out
}

// prompts applies the strategy's naming to the backend's prompts.
func (a *aggregator) prompts(backend int) []entry {
	list := a.valid(backend, kindPrompt, a.backends[backend].Prompts)
	out := make([]entry, 0, len(list))
	for _, d := range list {
		exposed := d.key
		if a.opts.Strategy == StrategyPrefix {
			exposed = a.prefix(backend) + d.key
		}
		if e, ok := a.entry(backend, kindPrompt, d, exposed, ""); ok {
			out = append(out, e)
		}
	}
	return out
}

// plain returns the backend's resources or templates, which are never renamed.
func (a *aggregator) plain(backend int, k kind, raw []json.RawMessage) []entry {
	list := a.valid(backend, k, raw)
	out := make([]entry, 0, len(list))
	for _, d := range list {
		out = append(out, entry{key: d.key, orig: d.key, backend: backend, item: d.raw})
	}
	return out
}

// entry builds a catalog entry, rewriting the item only if its name or
// description changes; an unchanged item keeps the backend's exact bytes.
func (a *aggregator) entry(backend int, k kind, d decoded, exposed, description string) (entry, bool) {
	e := entry{key: exposed, orig: d.key, backend: backend, item: d.raw}
	if exposed == d.key && description == "" {
		return e, true
	}
	d.fields["name"] = marshal(exposed)
	// Route by the name clients will read back: encoding replaces invalid
	// UTF-8 (say, in a configured override), so decode it again.
	_ = json.Unmarshal(d.fields["name"], &e.key)
	if description != "" {
		d.fields["description"] = marshal(description)
	}
	item, err := encode(d.fields)
	if err != nil { // cannot happen: the fields were just decoded
		a.warnf("backend %s: skipping %s %s: %v", quote(a.names[backend]), k.noun, quote(d.key), err)
		return entry{}, false
	}
	e.item = item
	return e, true
}

// resolve removes colliding entries, keeping the input order of the rest.
// Tools and prompts under prefix or manual fail with ErrConflict; everything
// else keeps the entry of the higher-ranked backend and warns.
func (a *aggregator) resolve(k kind, entries []entry) ([]entry, error) {
	byRank := !k.renamed || a.opts.Strategy == StrategyPriority
	winner := make(map[string]int, len(entries))
	dropped := make([]bool, len(entries))
	for i, e := range entries {
		j, seen := winner[e.key]
		if !seen {
			winner[e.key] = i
			continue
		}
		w := entries[j]
		if w.backend == e.backend {
			if w.orig == e.orig || byRank {
				a.warnf("backend %s: skipping duplicate %s %s", quote(a.names[e.backend]), k.noun, quote(e.key))
				dropped[i] = true
				continue
			}
			return nil, fmt.Errorf("%w: %s %s: backend %s exposes both %s and %s under that name; change an override",
				ErrConflict, k.noun, quote(e.key), quote(a.names[e.backend]), quote(w.orig), quote(e.orig))
		}
		if !byRank {
			return nil, a.conflict(k, e.key, w.backend, e.backend)
		}
		win, lose := j, i
		if a.rank[e.backend] < a.rank[w.backend] {
			win, lose = i, j
			winner[e.key] = i
		}
		dropped[lose] = true
		a.warnf("%s %s from backend %s hidden by backend %s", k.noun, quote(e.key),
			quote(a.names[entries[lose].backend]), quote(a.names[entries[win].backend]))
	}
	out := entries[:0]
	for i, e := range entries {
		if !dropped[i] {
			out = append(out, e)
		}
	}
	return out, nil
}

func (a *aggregator) conflict(k kind, name string, first, second int) error {
	b1, b2 := quote(a.names[first]), quote(a.names[second])
	if a.opts.Strategy == StrategyPrefix {
		return fmt.Errorf("%w: prefix conflict resolution: %s %s is offered by backends %s and %s; change the prefix format or an override",
			ErrConflict, k.noun, quote(name), b1, b2)
	}
	hint := "add an override to rename one"
	if k != kindTool {
		hint = k.noun + "s cannot be renamed; use prefix or priority conflict resolution"
	}
	return fmt.Errorf("%w: manual conflict resolution: %s %s is offered by backends %s and %s; %s",
		ErrConflict, k.noun, quote(name), b1, b2, hint)
}

// marshal encodes a string as JSON. Strings always encode.
func marshal(s string) json.RawMessage {
	b, _ := encode(s)
	return b
}

// encode marshals v without HTML escaping, so rewritten items differ from the
// backend's only where they must.
func encode(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
