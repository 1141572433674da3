package aggregate

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzAggregate feeds arbitrary items, rules and URIs to Aggregate and the
// catalog lookups. Whatever backends send, nothing may panic, and a catalog
// that is returned must be consistent with its routing table.
func FuzzAggregate(f *testing.F) {
	f.Add(`{"name":"a"}`+"\n"+`{"name":"b","inputSchema":{}}`, `{"name":"a"}`, `{"uri":"x://1"}`, `{"uriTemplate":"x://{id}"}`, uint8(0), "a", "b", "x://2")
	f.Add(`not json`+"\n"+`{"name":1}`+"\n"+`null`, `[]`, `{"uri":""}`, `{"uriTemplate":"{+p}{/q*}{"}`, uint8(1), "zz", "", "")
	f.Add(`{"name":"s"}`, `{"name":"s"}`, `{"uri":"x://1"}`, `{"uriTemplate":"{a}{b}{c}{d}{e}"}`, uint8(2), "s", "renamed", "aaaaaaaaaaaaaaaaaaaaaaaa/")
	f.Add(`{"name":"<&>","description":"\u00e9"}`, `{"name":"{backend}"}`, `{"uri":"a"}`, `{"uriTemplate":"a"}`, uint8(7), "<&>", "{backend}", "a")

	f.Fuzz(func(t *testing.T, toolsA, toolsB, resources, templates string, mode uint8, filter, override, uri string) {
		split := func(s string) []json.RawMessage {
			var out []json.RawMessage
			for _, line := range strings.Split(s, "\n") {
				out = append(out, json.RawMessage(line))
			}
			return out
		}
		backends := []Backend{
			{Name: "a", Tools: split(toolsA), Prompts: split(toolsB), Resources: split(resources), ResourceTemplates: split(templates)},
			{Name: "b", Tools: split(toolsB), Prompts: split(toolsA), Resources: split(resources), ResourceTemplates: split(templates)},
		}
		opts := Options{
			Strategy:     []string{StrategyPrefix, StrategyPriority, StrategyManual, ""}[mode%4],
			PrefixFormat: []string{"", "{backend}", "x_"}[int(mode/4)%3],
			Tools: map[string]ToolRule{"b": {
				Filter:    []string{filter},
				Overrides: map[string]Override{filter: {Name: override, Description: override}},
			}},
		}
		if mode&0x80 != 0 {
			opts.PriorityOrder = []string{"b"}
			opts.Tools["b"] = ToolRule{Overrides: opts.Tools["b"].Overrides}
		}

		c, err := Aggregate(backends, opts)
		if err != nil {
			if !errors.Is(err, ErrConflict) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		c.ResourceBackend(uri)
		c.TemplateBackend(uri)
		matchTemplate(uri, filter)

		if len(c.Tools) != len(c.ToolRoutes) || len(c.Prompts) != len(c.PromptRoutes) ||
			len(c.Resources) != len(c.ResourceRoutes) || len(c.ResourceTemplates) != len(c.Templates) {
			t.Fatalf("items and routes disagree: %+v", c)
		}
		for _, it := range c.Tools {
			var m map[string]json.RawMessage
			var name string
			if err := json.Unmarshal(it, &m); err != nil {
				t.Fatalf("exposed tool is invalid JSON %q: %v", it, err)
			}
			if err := json.Unmarshal(m["name"], &name); err != nil {
				t.Fatalf("exposed tool %q has no string name: %v", it, err)
			}
			if _, ok := c.ToolRoutes[name]; !ok {
				t.Fatalf("exposed tool %q has no route", name)
			}
		}
		for u, b := range c.ResourceRoutes {
			if got, ok := c.ResourceBackend(u); !ok || got != b {
				t.Fatalf("ResourceBackend(%q) = %q, %v; want %q", u, got, ok, b)
			}
		}
	})
}
