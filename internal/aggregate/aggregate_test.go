package aggregate

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// item builds a JSON object with the given identifying field plus extras.
func item(t testing.TB, field, value string, extra map[string]any) json.RawMessage {
	t.Helper()
	m := map[string]any{field: value}
	for k, v := range extra {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tools(t testing.TB, names ...string) []json.RawMessage {
	var out []json.RawMessage
	for _, n := range names {
		out = append(out, item(t, "name", n, map[string]any{"description": "orig " + n}))
	}
	return out
}

// field returns the string value of key in each item.
func field(t testing.TB, items []json.RawMessage, key string) []string {
	t.Helper()
	out := []string{}
	for _, it := range items {
		var m map[string]any
		if err := json.Unmarshal(it, &m); err != nil {
			t.Fatalf("catalog item is not a JSON object: %s", it)
		}
		s, _ := m[key].(string)
		out = append(out, s)
	}
	return out
}

func mustAggregate(t *testing.T, backends []Backend, opts Options) *Catalog {
	t.Helper()
	c, err := Aggregate(backends, opts)
	if err != nil {
		t.Fatalf("Aggregate: %v", err)
	}
	return c
}

func hasWarning(c *Catalog, substr string) bool {
	return slices.ContainsFunc(c.Warnings, func(w string) bool { return strings.Contains(w, substr) })
}

func TestStrategies(t *testing.T) {
	t.Parallel()
	backends := func(t *testing.T) []Backend {
		return []Backend{
			{Name: "github", Tools: tools(t, "search", "issues"), Prompts: []json.RawMessage{item(t, "name", "review", nil)}},
			{Name: "jira", Tools: tools(t, "search", "tickets"), Prompts: []json.RawMessage{item(t, "name", "review", nil)}},
		}
	}
	tests := []struct {
		name        string
		opts        Options
		wantTools   []string
		wantRoutes  map[string]Route
		wantPrompts map[string]Route
		wantWarn    []string
	}{
		{
			name:      "zero options mean prefix with default format",
			opts:      Options{},
			wantTools: []string{"github_search", "github_issues", "jira_search", "jira_tickets"},
			wantRoutes: map[string]Route{
				"github_search": {"github", "search"}, "github_issues": {"github", "issues"},
				"jira_search": {"jira", "search"}, "jira_tickets": {"jira", "tickets"},
			},
			wantPrompts: map[string]Route{"github_review": {"github", "review"}, "jira_review": {"jira", "review"}},
		},
		{
			name:      "prefix with custom format",
			opts:      Options{Strategy: StrategyPrefix, PrefixFormat: "{backend}."},
			wantTools: []string{"github.search", "github.issues", "jira.search", "jira.tickets"},
			wantRoutes: map[string]Route{
				"github.search": {"github", "search"}, "github.issues": {"github", "issues"},
				"jira.search": {"jira", "search"}, "jira.tickets": {"jira", "tickets"},
			},
			wantPrompts: map[string]Route{"github.review": {"github", "review"}, "jira.review": {"jira", "review"}},
		},
		{
			name:        "priority without order: input order wins",
			opts:        Options{Strategy: StrategyPriority},
			wantTools:   []string{"search", "issues", "tickets"},
			wantRoutes:  map[string]Route{"search": {"github", "search"}, "issues": {"github", "issues"}, "tickets": {"jira", "tickets"}},
			wantPrompts: map[string]Route{"review": {"github", "review"}},
			wantWarn: []string{
				`tool "search" from backend "jira" hidden by backend "github"`,
				`prompt "review" from backend "jira" hidden by backend "github"`,
			},
		},
		{
			name:        "priority order: listed backend wins and keeps its place in catalog order",
			opts:        Options{Strategy: StrategyPriority, PriorityOrder: []string{"jira"}},
			wantTools:   []string{"issues", "search", "tickets"},
			wantRoutes:  map[string]Route{"search": {"jira", "search"}, "issues": {"github", "issues"}, "tickets": {"jira", "tickets"}},
			wantPrompts: map[string]Route{"review": {"jira", "review"}},
			wantWarn: []string{
				`tool "search" from backend "github" hidden by backend "jira"`,
				`prompt "review" from backend "github" hidden by backend "jira"`,
			},
		},
		{
			name: "manual with an override resolving the conflict",
			opts: Options{Strategy: StrategyManual, Tools: map[string]ToolRule{
				"jira": {Overrides: map[string]Override{"search": {Name: "jira_search"}}},
			}, PriorityOrder: []string{"unknown-backend-is-ignored"}},
			wantTools:  []string{"search", "issues", "jira_search", "tickets"},
			wantRoutes: map[string]Route{"search": {"github", "search"}, "issues": {"github", "issues"}, "jira_search": {"jira", "search"}, "tickets": {"jira", "tickets"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bs := backends(t)
			if tt.opts.Strategy == StrategyManual {
				bs[1].Prompts = nil // prompts cannot be renamed, so manual would fail on them
			}
			c := mustAggregate(t, bs, tt.opts)
			if got := field(t, c.Tools, "name"); !reflect.DeepEqual(got, tt.wantTools) {
				t.Errorf("tools = %q, want %q", got, tt.wantTools)
			}
			if !reflect.DeepEqual(c.ToolRoutes, tt.wantRoutes) {
				t.Errorf("tool routes = %v, want %v", c.ToolRoutes, tt.wantRoutes)
			}
			if tt.wantPrompts != nil && !reflect.DeepEqual(c.PromptRoutes, tt.wantPrompts) {
				t.Errorf("prompt routes = %v, want %v", c.PromptRoutes, tt.wantPrompts)
			}
			if got := field(t, c.Prompts, "name"); len(got) != len(c.PromptRoutes) {
				t.Errorf("prompts %q do not match routes %v", got, c.PromptRoutes)
			}
			for _, w := range tt.wantWarn {
				if !hasWarning(c, w) {
					t.Errorf("missing warning %q in %q", w, c.Warnings)
				}
			}
			if tt.wantWarn == nil && len(c.Warnings) != 0 {
				t.Errorf("unexpected warnings %q", c.Warnings)
			}
		})
	}
}

func TestFiltersAndOverrides(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		opts     Options
		want     map[string]string // exposed name -> description
		routes   map[string]Route
		wantWarn []string
	}{
		{
			name: "filter keeps only listed tools",
			opts: Options{Strategy: StrategyPriority, Tools: map[string]ToolRule{"files": {Filter: []string{"read", "list"}}}},
			want: map[string]string{"read": "orig read", "list": "orig list"},
		},
		{
			name:     "filter naming an absent tool warns",
			opts:     Options{Strategy: StrategyPriority, Tools: map[string]ToolRule{"files": {Filter: []string{"read", "nope"}}}},
			want:     map[string]string{"read": "orig read"},
			wantWarn: []string{`backend "files": filter names tool "nope", which the backend does not offer`},
		},
		{
			name: "override name and description",
			opts: Options{Strategy: StrategyManual, Tools: map[string]ToolRule{"files": {
				Overrides: map[string]Override{"read": {Name: "fs_read", Description: "Read a file"}},
			}}},
			want:   map[string]string{"fs_read": "Read a file", "write": "orig write", "list": "orig list"},
			routes: map[string]Route{"fs_read": {"files", "read"}, "write": {"files", "write"}, "list": {"files", "list"}},
		},
		{
			name: "override description only keeps the name",
			opts: Options{Strategy: StrategyPriority, Tools: map[string]ToolRule{"files": {
				Overrides: map[string]Override{"write": {Description: "Write <carefully> & well"}},
			}}},
			want: map[string]string{"read": "orig read", "write": "Write <carefully> & well", "list": "orig list"},
		},
		{
			name: "override under prefix is not prefixed; others are",
			opts: Options{Strategy: StrategyPrefix, Tools: map[string]ToolRule{"files": {
				Overrides: map[string]Override{"read": {Name: "fs_read"}, "list": {Description: "List"}},
			}}},
			want:   map[string]string{"fs_read": "orig read", "files_write": "orig write", "files_list": "List"},
			routes: map[string]Route{"fs_read": {"files", "read"}, "files_write": {"files", "write"}, "files_list": {"files", "list"}},
		},
		{
			name: "filter then override; overrides for filtered or absent tools warn",
			opts: Options{Strategy: StrategyPriority, Tools: map[string]ToolRule{"files": {
				Filter:    []string{"read"},
				Overrides: map[string]Override{"read": {Name: "r"}, "write": {Name: "w"}, "ghost": {Name: "g"}},
			}}},
			want:   map[string]string{"r": "orig read"},
			routes: map[string]Route{"r": {"files", "read"}},
			wantWarn: []string{
				`backend "files": override for tool "write" ignored: the tool is filtered out`,
				`backend "files": override for tool "ghost" ignored: the backend does not offer it`,
			},
		},
		{
			name: "rules for other backends do not apply",
			opts: Options{Strategy: StrategyPriority, Tools: map[string]ToolRule{"other": {Filter: []string{"x"}}}},
			want: map[string]string{"read": "orig read", "write": "orig write", "list": "orig list"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := mustAggregate(t, []Backend{{Name: "files", Tools: tools(t, "read", "write", "list")}}, tt.opts)
			got := map[string]string{}
			names, descs := field(t, c.Tools, "name"), field(t, c.Tools, "description")
			for i := range names {
				got[names[i]] = descs[i]
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("tools = %v, want %v", got, tt.want)
			}
			if tt.routes != nil && !reflect.DeepEqual(c.ToolRoutes, tt.routes) {
				t.Errorf("routes = %v, want %v", c.ToolRoutes, tt.routes)
			}
			if len(c.Warnings) != len(tt.wantWarn) {
				t.Errorf("warnings = %q, want %q", c.Warnings, tt.wantWarn)
			}
			for _, w := range tt.wantWarn {
				if !hasWarning(c, w) {
					t.Errorf("missing warning %q in %q", w, c.Warnings)
				}
			}
		})
	}
}

func TestConflictErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		backends func(t *testing.T) []Backend
		opts     Options
		want     string
	}{
		{
			name: "manual tool collision",
			backends: func(t *testing.T) []Backend {
				return []Backend{{Name: "github", Tools: tools(t, "search")}, {Name: "jira", Tools: tools(t, "search")}}
			},
			opts: Options{Strategy: StrategyManual},
			want: `manual conflict resolution: tool "search" is offered by backends "github" and "jira"; add an override to rename one`,
		},
		{
			name: "manual collision created by an override",
			backends: func(t *testing.T) []Backend {
				return []Backend{{Name: "a", Tools: tools(t, "x")}, {Name: "b", Tools: tools(t, "y")}}
			},
			opts: Options{Strategy: StrategyManual, Tools: map[string]ToolRule{"b": {Overrides: map[string]Override{"y": {Name: "x"}}}}},
			want: `tool "x" is offered by backends "a" and "b"`,
		},
		{
			name: "manual prompt collision",
			backends: func(t *testing.T) []Backend {
				p := []json.RawMessage{item(t, "name", "review", nil)}
				return []Backend{{Name: "a", Prompts: p}, {Name: "b", Prompts: p}}
			},
			opts: Options{Strategy: StrategyManual},
			want: `prompt "review" is offered by backends "a" and "b"`,
		},
		{
			name: "prefix collision through an override name",
			backends: func(t *testing.T) []Backend {
				return []Backend{{Name: "a", Tools: tools(t, "x")}, {Name: "b", Tools: tools(t, "x")}}
			},
			opts: Options{Tools: map[string]ToolRule{"b": {Overrides: map[string]Override{"x": {Name: "a_x"}}}}},
			want: `prefix conflict resolution: tool "a_x" is offered by backends "a" and "b"`,
		},
		{
			name: "prefix format without the backend name",
			backends: func(t *testing.T) []Backend {
				return []Backend{{Name: "a", Tools: tools(t, "x")}, {Name: "b", Tools: tools(t, "x")}}
			},
			opts: Options{PrefixFormat: "mcp_"},
			want: `tool "mcp_x" is offered by backends "a" and "b"`,
		},
		{
			name: "override makes one backend expose two tools under one name",
			backends: func(t *testing.T) []Backend {
				return []Backend{{Name: "a", Tools: tools(t, "x", "y")}}
			},
			opts: Options{Strategy: StrategyManual, Tools: map[string]ToolRule{"a": {Overrides: map[string]Override{"y": {Name: "x"}}}}},
			want: `tool "x": backend "a" exposes both "x" and "y"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Aggregate(tt.backends(t), tt.opts)
			if !errors.Is(err, ErrConflict) {
				t.Fatalf("err = %v (catalog %v), want ErrConflict", err, c)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestInvalidInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		backends []Backend
		opts     Options
		want     string
	}{
		{"unknown strategy", nil, Options{Strategy: "newest"}, `unknown conflict resolution strategy "newest"`},
		{"empty backend name", []Backend{{Name: "a"}, {}}, Options{}, "backend at index 1 has no name"},
		{"duplicate backend name", []Backend{{Name: "a"}, {Name: "a"}}, Options{}, `duplicate backend name "a"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Aggregate(tt.backends, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if errors.Is(err, ErrConflict) {
				t.Errorf("err %v must not be ErrConflict", err)
			}
		})
	}
}

func TestResourcesAndTemplatesNeverRenamed(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		opts   Options
		winner string
		loser  string
	}{
		{"prefix: input order", Options{Strategy: StrategyPrefix}, "a", "b"},
		{"manual: input order, no error", Options{Strategy: StrategyManual}, "a", "b"},
		{"priority order", Options{Strategy: StrategyPriority, PriorityOrder: []string{"b", "a"}}, "b", "a"},
		{"priority order applies under prefix too", Options{PriorityOrder: []string{"b"}}, "b", "a"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			backend := func(name string) Backend {
				return Backend{
					Name: name,
					Resources: []json.RawMessage{
						item(t, "uri", "file:///shared", map[string]any{"name": name + "-shared"}),
						item(t, "uri", "file:///"+name, map[string]any{"name": "own"}),
					},
					ResourceTemplates: []json.RawMessage{item(t, "uriTemplate", "db://{table}", map[string]any{"name": name})},
				}
			}
			c := mustAggregate(t, []Backend{backend("a"), backend("b")}, tt.opts)
			wantRoutes := map[string]string{"file:///shared": tt.winner, "file:///a": "a", "file:///b": "b"}
			if !reflect.DeepEqual(c.ResourceRoutes, wantRoutes) {
				t.Errorf("resource routes = %v, want %v", c.ResourceRoutes, wantRoutes)
			}
			if got := field(t, c.Resources, "uri"); len(got) != 3 || !slices.Contains(got, "file:///shared") {
				t.Errorf("resources = %q", got)
			}
			if got := field(t, c.Resources, "name"); !slices.Contains(got, tt.winner+"-shared") || slices.Contains(got, tt.loser+"-shared") {
				t.Errorf("resource names = %q, want the shared one from %q", got, tt.winner)
			}
			wantTemplates := []TemplateRoute{{"db://{table}", tt.winner}}
			if !reflect.DeepEqual(c.Templates, wantTemplates) {
				t.Errorf("templates = %v, want %v", c.Templates, wantTemplates)
			}
			if got := field(t, c.ResourceTemplates, "name"); !reflect.DeepEqual(got, []string{tt.winner}) {
				t.Errorf("template items = %q", got)
			}
			for _, w := range []string{
				`resource "file:///shared" from backend "` + tt.loser + `" hidden by backend "` + tt.winner + `"`,
				`resource template "db://{table}" from backend "` + tt.loser + `" hidden by backend "` + tt.winner + `"`,
			} {
				if !hasWarning(c, w) {
					t.Errorf("missing warning %q in %q", w, c.Warnings)
				}
			}
		})
	}
}

func TestSchemasPassThrough(t *testing.T) {
	t.Parallel()
	// Every field a tool may carry, plus one no spec knows yet, and HTML
	// characters that a careless re-encode would escape.
	const raw = `{
		"name": "query", "title": "Query <db>", "description": "Run a query & return rows",
		"inputSchema": {"type": "object", "properties": {"sql": {"type": "string", "pattern": "^<select>.*$"}}, "required": ["sql"]},
		"outputSchema": {"type": "object", "properties": {"rows": {"type": "array", "items": {}}}},
		"annotations": {"readOnlyHint": true, "title": "Q"},
		"_meta": {"vendor/key": [1, 2.5, null, {"deep": "x"}]},
		"icons": [{"src": "https://example.com/i.png", "mimeType": "image/png"}],
		"futureField": {"anything": ["goes", 1e3]}
	}`
	normalise := func(t *testing.T, b []byte) map[string]any {
		t.Helper()
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("invalid JSON %s: %v", b, err)
		}
		return v
	}
	for _, tt := range []struct {
		name      string
		opts      Options
		wantName  string
		wantDesc  string
		wantBytes bool // unchanged items keep the backend's exact bytes
	}{
		{"priority keeps the exact bytes", Options{Strategy: StrategyPriority}, "query", "Run a query & return rows", true},
		{"prefix rewrites only the name", Options{}, "db_query", "Run a query & return rows", false},
		{"override rewrites name and description", Options{Strategy: StrategyManual, Tools: map[string]ToolRule{
			"db": {Overrides: map[string]Override{"query": {Name: "sql", Description: "SQL <only>"}}},
		}}, "sql", "SQL <only>", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := mustAggregate(t, []Backend{{Name: "db", Tools: []json.RawMessage{json.RawMessage(raw)}}}, tt.opts)
			if len(c.Tools) != 1 {
				t.Fatalf("tools = %s", c.Tools)
			}
			if tt.wantBytes && string(c.Tools[0]) != raw {
				t.Errorf("unchanged item was re-encoded:\n%s", c.Tools[0])
			}
			if !tt.wantBytes && strings.Contains(string(c.Tools[0]), `\u003c`) {
				t.Errorf("rewritten item escapes HTML: %s", c.Tools[0])
			}
			got, want := normalise(t, c.Tools[0]), normalise(t, []byte(raw))
			want["name"], want["description"] = tt.wantName, tt.wantDesc
			if !reflect.DeepEqual(got, want) {
				t.Errorf("item = %v\nwant %v", got, want)
			}
		})
	}
}

func TestMalformedItemsSkipped(t *testing.T) {
	t.Parallel()
	bad := []json.RawMessage{
		json.RawMessage(`"just a string"`),
		json.RawMessage(`null`),
		json.RawMessage(`[1,2]`),
		json.RawMessage(`{"name": 42}`),
		json.RawMessage(`{"name": null}`),
		json.RawMessage(`{"name": ""}`),
		json.RawMessage(`{"description": "no name"}`),
		json.RawMessage(`{"name": "trunc`),
		nil,
	}
	good := item(t, "name", "ok", nil)
	for _, strategy := range []string{StrategyPrefix, StrategyPriority, StrategyManual} {
		t.Run(strategy, func(t *testing.T) {
			t.Parallel()
			c := mustAggregate(t, []Backend{{
				Name:              "buggy",
				Tools:             append(slices.Clone(bad), good),
				Prompts:           append(slices.Clone(bad), good),
				Resources:         []json.RawMessage{json.RawMessage(`{"name": "no uri"}`), json.RawMessage(`{"uri": 7}`)},
				ResourceTemplates: []json.RawMessage{json.RawMessage(`{"uri": "wrong field"}`)},
			}}, Options{Strategy: strategy})
			if len(c.Tools) != 1 || len(c.Prompts) != 1 || len(c.Resources) != 0 || len(c.ResourceTemplates) != 0 {
				t.Errorf("catalog = tools %s prompts %s resources %s templates %s", c.Tools, c.Prompts, c.Resources, c.ResourceTemplates)
			}
			if want := 2*len(bad) + 3; len(c.Warnings) != want {
				t.Errorf("got %d warnings, want %d: %q", len(c.Warnings), want, c.Warnings)
			}
			for _, w := range []string{
				`backend "buggy": skipping tool at index 0: not a JSON object`,
				`backend "buggy": skipping prompt at index 3: "name" is not a string`,
				`backend "buggy": skipping resource at index 0: missing "uri"`,
				`backend "buggy": skipping resource template at index 0: missing "uriTemplate"`,
			} {
				if !hasWarning(c, w) {
					t.Errorf("missing warning %q in %q", w, c.Warnings)
				}
			}
		})
	}
}

func TestDuplicateWithinBackendSkipped(t *testing.T) {
	t.Parallel()
	c := mustAggregate(t, []Backend{{Name: "a", Tools: tools(t, "x", "x")}}, Options{Strategy: StrategyManual})
	if len(c.Tools) != 1 || !hasWarning(c, `backend "a": skipping duplicate tool "x"`) {
		t.Errorf("tools %s, warnings %q", c.Tools, c.Warnings)
	}
}

func TestEmptyCatalogMarshalsAsArrays(t *testing.T) {
	t.Parallel()
	c := mustAggregate(t, nil, Options{})
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "null") {
		t.Errorf("empty catalog has nulls: %s", b)
	}
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	build := func() []Backend {
		var bs []Backend
		for _, n := range []string{"c", "a", "b"} {
			bs = append(bs, Backend{
				Name:      n,
				Tools:     tools(t, "z", "y", "x", "w"),
				Prompts:   tools(t, "p", "o"),
				Resources: []json.RawMessage{item(t, "uri", "mem://shared", nil), item(t, "uri", "mem://"+n, nil)},
			})
		}
		return bs
	}
	opts := Options{Strategy: StrategyPriority, PriorityOrder: []string{"b"}, Tools: map[string]ToolRule{
		"a": {Overrides: map[string]Override{"q1": {}, "q2": {}, "q3": {}, "q4": {}, "y": {Name: "a_y"}}},
	}}
	first := mustAggregate(t, build(), opts)
	wantTools := []string{"a_y", "z", "y", "x", "w"} // a's renamed y; b outranks c and a on the rest
	if got := field(t, first.Tools, "name"); !reflect.DeepEqual(got, wantTools) {
		t.Errorf("tools = %q, want %q", got, wantTools)
	}
	for range 20 {
		if again := mustAggregate(t, build(), opts); !reflect.DeepEqual(again, first) {
			t.Fatalf("catalog differs between runs:\n%+v\n%+v", again, first)
		}
	}
}

func TestLongNamesShortenedInWarnings(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 1000)
	c := mustAggregate(t, []Backend{{Name: "a", Tools: tools(t, long, long)}}, Options{Strategy: StrategyPriority})
	if len(c.Warnings) != 1 || len(c.Warnings[0]) > 300 || !strings.Contains(c.Warnings[0], "é...") {
		t.Errorf("warnings = %q", c.Warnings)
	}
}
