package aggregate

import (
	"encoding/json"
	"testing"
)

func TestMergeInstructions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   []Instructions
		want string
	}{
		{"none", nil, ""},
		{"all blank", []Instructions{{"a", ""}, {"b", "  \n"}}, ""},
		{"one", []Instructions{{"files", "Read files."}}, "## files\nRead files."},
		{"labelled in order, blanks left out",
			[]Instructions{{"files", "Read files.\n"}, {"memo", ""}, {"browser", "Open pages."}},
			"## files\nRead files.\n\n## browser\nOpen pages."},
	} {
		if got := MergeInstructions(tc.in); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestMergeCapability(t *testing.T) {
	t.Parallel()
	raw := func(s ...string) []json.RawMessage {
		out := make([]json.RawMessage, len(s))
		for i, x := range s {
			out[i] = json.RawMessage(x)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		in   []json.RawMessage
		want string
	}{
		{"none", nil, ""},
		{"absent, null and non-objects ignored", raw("", "null", `"x"`, `[1]`, `{bad`), ""},
		{"one", raw(`{"list":{},"requests":{"tools":{"call":{}}}}`), `{"list":{},"requests":{"tools":{"call":{}}}}`},
		{"union, deep", raw(`{"cancel":{},"requests":{"tools":{"call":{}}}}`, `null`, `{"list":{},"requests":{"sampling":{"createMessage":{}}}}`),
			`{"cancel":{},"list":{},"requests":{"sampling":{"createMessage":{}},"tools":{"call":{}}}}`},
		{"empty object still declares", raw(`{}`), `{}`},
	} {
		got := MergeCapability(tc.in)
		if string(got) != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
}
