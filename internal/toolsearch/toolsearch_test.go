package toolsearch

import (
	"slices"
	"testing"
)

func TestWords(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"read_text_file", []string{"read", "text", "file"}},
		{"get-tiny-image", []string{"get", "tiny", "image"}},
		{"getHTTPStatus", []string{"get", "HTTP", "Status"}},
		{"listDirectoryWithSizes", []string{"list", "Directory", "With", "Sizes"}},
		{"sep1034_defaults", []string{"sep", "1034", "defaults"}},
		{"base64-encoded, MIME type.", []string{"base", "64", "encoded", "MIME", "type"}},
		{"fs.read/file", []string{"fs", "read", "file"}},
		{"élan_vital", []string{"élan", "vital"}},
		{"", nil},
	} {
		if got := words(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("words(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestStem(t *testing.T) {
	t.Parallel()
	// Examples from Porter's paper, and words of tool descriptions.
	for in, want := range map[string]string{
		"caresses": "caress", "ponies": "poni", "cats": "cat", "feed": "feed", "agreed": "agre",
		"plastered": "plaster", "motoring": "motor", "sing": "sing", "hopping": "hop", "filing": "file",
		"happy": "happi", "relational": "relat", "conditional": "condit", "generalization": "gener",
		"files": "file", "file": "file", "reading": "read", "reads": "read", "directories": "directori",
		"directory": "directori", "writing": "write", "entities": "entiti", "entity": "entiti", "is": "is",
	} {
		if got := stem(in); got != want {
			t.Errorf("stem(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSearch(t *testing.T) {
	t.Parallel()
	docs := []Doc{
		{Name: "fs_read_file", Description: "Read a file from disk.", Params: []Param{{Name: "path", Description: "the file's path"}}},
		{Name: "fs_write_file", Description: "Write a file to disk."},
		{Name: "mail_send", Title: "Send mail", Description: "Send an email message."},
		{Name: "configure", Description: "Change the server's configuration."},
		{Name: "old_read", Description: "DEPRECATED: read a file; use fs_read_file."},
	}
	ix := NewIndex(docs, Weights{})
	names := func(hs []Hit) []string {
		var out []string
		for _, h := range hs {
			out = append(out, docs[h.Doc].Name)
		}
		return out
	}
	for _, tc := range []struct {
		query string
		limit int
		allow func(int) bool
		want  []string
	}{
		{"read a file", 2, nil, []string{"fs_read_file", "old_read"}},
		{"reading files", 1, nil, []string{"fs_read_file"}},
		{"write", 5, nil, []string{"fs_write_file"}},
		{"config", 5, nil, []string{"configure"}},           // a prefix of the term
		{"remove a file", 1, nil, []string{"fs_read_file"}}, // no delete tool: file still matches
		{"send email", 5, nil, []string{"mail_send"}},
		{"read a file", 5, func(d int) bool { return d != 0 }, []string{"old_read", "fs_write_file"}},
		{"the of and", 5, nil, nil}, // only stop words
		{"", 5, nil, nil},
		{"read", 0, nil, nil},
		{"zzz", 5, nil, nil},
	} {
		if got := names(ix.Search(tc.query, tc.limit, tc.allow)); !slices.Equal(got, tc.want) {
			t.Errorf("Search(%q, %d) = %v, want %v", tc.query, tc.limit, got, tc.want)
		}
	}
	if got := NewIndex(nil, Weights{}).Search("anything", 5, nil); got != nil {
		t.Errorf("an empty index found %v", got)
	}
}
