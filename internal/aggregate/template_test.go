package aggregate

import (
	"encoding/json"
	"testing"
)

func TestResourceBackend(t *testing.T) {
	t.Parallel()
	res := func(uri string) json.RawMessage { return item(t, "uri", uri, nil) }
	tmpl := func(ut string) json.RawMessage { return item(t, "uriTemplate", ut, nil) }
	c := mustAggregate(t, []Backend{
		{
			Name:              "notes",
			Resources:         []json.RawMessage{res("mem://notes/readme")},
			ResourceTemplates: []json.RawMessage{tmpl("mem://notes/{id}"), tmpl("mem://notes/{id}/history{?since,limit}")},
		},
		{
			Name:              "files",
			Resources:         []json.RawMessage{res("mem://notes/pinned")},
			ResourceTemplates: []json.RawMessage{tmpl("file:///{+path}"), tmpl("repo://{owner}/{repo}{/path*}"), tmpl("doc://x{#frag}"), tmpl("mem://notes/{id}")},
		},
		{
			Name:              "db",
			ResourceTemplates: []json.RawMessage{tmpl("db://{table}.{format}"), tmpl("broken://{oops")},
		},
	}, Options{})

	tests := []struct {
		uri  string
		want string // "" means no backend
	}{
		{"mem://notes/readme", "notes"},                     // exact resource
		{"mem://notes/pinned", "files"},                     // exact resource beats the notes template
		{"mem://notes/42", "notes"},                         // first template in catalog order
		{"mem://notes/42/history", "notes"},                 // {id} does not span "/"; the second template matches
		{"mem://notes/42/history?since=1&limit=5", "notes"}, // query expression
		{"mem://notes/42/other", ""},                        // literal part must match
		{"mem://notes/", "notes"},                           // an undefined variable expands to nothing
		{"file:///etc/hosts", "files"},                      // {+path} spans "/"
		{"file:///", "files"},
		{"repo://golang/go/src/net/http", "files"}, // exploded path segments
		{"repo://golang/go", "files"},
		{"repo://golang", ""}, // missing literal "/"
		{"doc://x#section-2", "files"},
		{"db://users.csv", "db"},
		{"db://users", ""},
		{"db://a/b.csv", ""},
		{"broken://{oops", "db"}, // an unclosed brace is literal
		{"broken://x", ""},
		{"MEM://notes/42", ""}, // literals are case-sensitive
		{"", ""},
		{"unknown://x", ""},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			t.Parallel()
			got, ok := c.ResourceBackend(tt.uri)
			if got != tt.want || ok != (tt.want != "") {
				t.Errorf("ResourceBackend(%q) = %q, %v; want %q", tt.uri, got, ok, tt.want)
			}
		})
	}

	// The duplicate "mem://notes/{id}" of files was hidden; completion refs
	// name templates exactly.
	for ut, want := range map[string]string{
		"mem://notes/{id}": "notes", "file:///{+path}": "files", "db://{table}.{format}": "db", "mem://notes/42": "",
	} {
		got, ok := c.TemplateBackend(ut)
		if got != want || ok != (want != "") {
			t.Errorf("TemplateBackend(%q) = %q, %v; want %q", ut, got, ok, want)
		}
	}
}

func TestMatchTemplate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		template, uri string
		want          bool
	}{
		{"", "", true},
		{"", "x", false},
		{"plain", "plain", true},
		{"plain", "plainer", false},
		{"{a}{b}{c}", "abc", true},
		{"{a}{b}{c}", "a/b", false},
		{"{+a}{b}", "a/b", true},
		{"x{.ext}", "x.tar.gz", true},
		{"{;p}", "a;b=1", true},
		{"a{}b", "a-b", true},
		{"{/p}/end", "/x/y/end", true},
		{"a}b{c", "a}b{c", true},
		{"{x}/{y}/{z}/tail", "1/2/3/tail", true},
		{"{x}/{y}/{z}/tail", "1/2/3/4/tail", false},
	}
	for _, tt := range tests {
		if got := matchTemplate(tt.template, tt.uri); got != tt.want {
			t.Errorf("matchTemplate(%q, %q) = %v, want %v", tt.template, tt.uri, got, tt.want)
		}
	}
}
