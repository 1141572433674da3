// Package aggregate merges the capabilities of several MCP backends into one
// catalog and builds the routing table that maps every exposed tool, prompt
// and resource back to the backend that owns it.
//
// [Aggregate] is a pure function: it does no I/O and does not log. Problems
// that must not break a session (a malformed item from a buggy backend, a
// filter naming an absent tool, an item hidden by a higher-priority backend)
// come back as [Catalog.Warnings]; only conflicts the configuration must fix
// are errors.
//
// Items are raw JSON exactly as each backend listed them. An item that is not
// renamed is passed through byte for byte; a renamed item keeps every field
// except "name" (and "description" when overridden), though its keys may be
// reordered.
package aggregate

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Conflict resolution strategies for [Options.Strategy].
const (
	// StrategyPrefix exposes every tool and prompt as PrefixFormat(backend)+name.
	StrategyPrefix = "prefix"
	// StrategyPriority keeps names; on a collision the higher-ranked backend wins.
	StrategyPriority = "priority"
	// StrategyManual keeps names; any collision left after overrides is an error.
	StrategyManual = "manual"
)

// DefaultPrefixFormat is used when [Options.PrefixFormat] is empty.
const DefaultPrefixFormat = "{backend}_"

// ErrConflict is wrapped by errors about tool or prompt names that the chosen
// strategy cannot resolve. Test with errors.Is.
var ErrConflict = errors.New("unresolved conflict")

// Backend is what one backend offered. Each item is the backend's own JSON
// object; the catalog may share memory with these slices, so callers must not
// modify them afterwards.
type Backend struct {
	Name              string
	Tools             []json.RawMessage // each a Tool object with "name"
	Resources         []json.RawMessage // each has "uri"
	ResourceTemplates []json.RawMessage // each has "uriTemplate"
	Prompts           []json.RawMessage // each has "name"
}

// Options configures [Aggregate]. The zero value means the prefix strategy
// with [DefaultPrefixFormat].
type Options struct {
	// Strategy is one of StrategyPrefix, StrategyPriority, StrategyManual;
	// empty means StrategyPrefix.
	Strategy string
	// PrefixFormat is the prefix for StrategyPrefix; "{backend}" is replaced
	// by the backend name. Empty means DefaultPrefixFormat.
	PrefixFormat string
	// PriorityOrder ranks backends: earlier wins. Backends not listed rank
	// after the listed ones, in input order. It decides tool and prompt
	// collisions under StrategyPriority and resource collisions always.
	PriorityOrder []string
	// Tools holds per-backend tool rules, keyed by backend name.
	Tools map[string]ToolRule
}

// ToolRule filters and renames one backend's tools. The filter applies first,
// then overrides, then the strategy.
type ToolRule struct {
	Filter    []string            // if non-empty, only these original names are kept
	Overrides map[string]Override // by original name
}

// Override replaces a tool's name and/or description; an empty field keeps
// the original. An override name is exposed as given, never prefixed.
type Override struct{ Name, Description string }

// Route identifies the backend that owns an exposed item.
type Route struct {
	Backend string
	Name    string // the backend's original name
}

// TemplateRoute maps a resource template to its backend.
type TemplateRoute struct{ URITemplate, Backend string }

// Catalog is the merged view of all backends. Slices are in a deterministic
// order: by backend input order, then each backend's own order. Slices and
// maps are never nil, so they marshal as [] and {}.
//
// A Catalog is not modified after Aggregate returns it; its methods are safe
// for concurrent use as long as callers do not modify it either.
type Catalog struct {
	Tools, Resources, ResourceTemplates, Prompts []json.RawMessage

	ToolRoutes     map[string]Route  // exposed tool name -> backend + original name
	PromptRoutes   map[string]Route  // exposed prompt name -> backend + original name
	ResourceRoutes map[string]string // exact resource URI -> backend
	Templates      []TemplateRoute   // in catalog order

	// Warnings describe items left out or rules that did not apply. They
	// hold names and URIs as the backends sent them, never item contents.
	Warnings []string
}

// Aggregate merges backends into a Catalog according to opts. It returns an
// error for invalid options, duplicate or empty backend names, and (wrapping
// ErrConflict) for name collisions the strategy does not resolve.
func Aggregate(backends []Backend, opts Options) (*Catalog, error) {
	a, err := newAggregator(backends, opts)
	if err != nil {
		return nil, err
	}
	c := &Catalog{
		ToolRoutes:     map[string]Route{},
		PromptRoutes:   map[string]Route{},
		ResourceRoutes: map[string]string{},
		Templates:      []TemplateRoute{},
	}

	var tools, prompts, resources, templates []entry
	for i := range backends {
		tools = append(tools, a.tools(i)...)
		prompts = append(prompts, a.prompts(i)...)
		resources = append(resources, a.plain(i, kindResource, backends[i].Resources)...)
		templates = append(templates, a.plain(i, kindTemplate, backends[i].ResourceTemplates)...)
	}

	if tools, err = a.resolve(kindTool, tools); err != nil {
		return nil, err
	}
	if prompts, err = a.resolve(kindPrompt, prompts); err != nil {
		return nil, err
	}
	if resources, err = a.resolve(kindResource, resources); err != nil {
		return nil, err
	}
	if templates, err = a.resolve(kindTemplate, templates); err != nil {
		return nil, err
	}

	c.Tools = items(tools)
	c.Prompts = items(prompts)
	c.Resources = items(resources)
	c.ResourceTemplates = items(templates)
	for _, e := range tools {
		c.ToolRoutes[e.key] = Route{Backend: a.names[e.backend], Name: e.orig}
	}
	for _, e := range prompts {
		c.PromptRoutes[e.key] = Route{Backend: a.names[e.backend], Name: e.orig}
	}
	for _, e := range resources {
		c.ResourceRoutes[e.key] = a.names[e.backend]
	}
	for _, e := range templates {
		c.Templates = append(c.Templates, TemplateRoute{URITemplate: e.key, Backend: a.names[e.backend]})
	}
	c.Warnings = a.warnings
	if c.Warnings == nil {
		c.Warnings = []string{}
	}
	return c, nil
}

// aggregator holds the state of one Aggregate call.
type aggregator struct {
	backends []Backend
	opts     Options
	names    []string
	rank     []int // rank[i] is backend i's rank; lower wins
	warnings []string
}

func newAggregator(backends []Backend, opts Options) (*aggregator, error) {
	switch opts.Strategy {
	case "":
		opts.Strategy = StrategyPrefix
	case StrategyPrefix, StrategyPriority, StrategyManual:
	default:
		return nil, fmt.Errorf("unknown conflict resolution strategy %s (want %q, %q or %q)",
			quote(opts.Strategy), StrategyPrefix, StrategyPriority, StrategyManual)
	}
	if opts.PrefixFormat == "" {
		opts.PrefixFormat = DefaultPrefixFormat
	}

	a := &aggregator{
		backends: backends,
		opts:     opts,
		names:    make([]string, len(backends)),
		rank:     make([]int, len(backends)),
	}
	index := make(map[string]int, len(backends))
	for i, b := range backends {
		if b.Name == "" {
			return nil, fmt.Errorf("backend at index %d has no name", i)
		}
		if _, dup := index[b.Name]; dup {
			return nil, fmt.Errorf("duplicate backend name %s", quote(b.Name))
		}
		index[b.Name] = i
		a.names[i] = b.Name
		a.rank[i] = len(opts.PriorityOrder) + i // unlisted: after listed, in input order
	}
	for r := len(opts.PriorityOrder) - 1; r >= 0; r-- { // backwards so the first listing wins
		if i, ok := index[opts.PriorityOrder[r]]; ok {
			a.rank[i] = r
		}
	}
	return a, nil
}

func (a *aggregator) warnf(format string, args ...any) {
	a.warnings = append(a.warnings, fmt.Sprintf(format, args...))
}

func (a *aggregator) prefix(backend int) string {
	return strings.ReplaceAll(a.opts.PrefixFormat, "{backend}", a.names[backend])
}

func items(entries []entry) []json.RawMessage {
	out := make([]json.RawMessage, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.item)
	}
	return out
}

// quote quotes a string for an error or warning, shortening very long ones so
// that a misbehaving backend cannot flood the logs.
func quote(s string) string {
	const max = 200
	if len(s) > max {
		cut := max
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return fmt.Sprintf("%q", s)
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
