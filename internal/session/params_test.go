package session

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestParamString(t *testing.T) {
	t.Parallel()
	cases := []struct {
		params, want string
		bad          bool
	}{
		{`{"name":"b0_echo","arguments":{"name":"inner"}}`, "b0_echo", false},
		{`{"name":"caf\u00e9"}`, "café", false},
		{`{"arguments":{}}`, "", true},
		{`{"name":5}`, "", true},
		{`{"name":null}`, "", true},
		{`[1]`, "", true},
		{`null`, "", true},
		{`{"name":`, "", true},
	}
	for _, tc := range cases {
		got, err := paramString(json.RawMessage(tc.params), "name")
		if tc.bad {
			if !errors.Is(err, errBadParams) {
				t.Errorf("paramString(%s) err = %v, want errBadParams", tc.params, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("paramString(%s) = %q, %v; want %q", tc.params, got, err, tc.want)
		}
	}
}

// TestSetParamKeepsOtherBytes checks that renaming a tool leaves the rest
// of the client's params exactly as sent (no re-encoding, no reordering).
func TestSetParamKeepsOtherBytes(t *testing.T) {
	t.Parallel()
	in := `{"name":"b0_echo", "arguments":{"z":1.50,"a":"<&>","name":"keep"},"_meta":{"progressToken":7}}`
	got, err := setParam(json.RawMessage(in), "name", "echo")
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"echo", "arguments":{"z":1.50,"a":"<&>","name":"keep"},"_meta":{"progressToken":7}}`
	if string(got) != want {
		t.Fatalf("setParam = %s\nwant        %s", got, want)
	}
	ref, err := setParam(mustRaw(json.RawMessage(`{"ref":{"type":"ref/prompt","name":"p_x"},"argument":{}}`), "ref"), "name", "x")
	if err != nil || string(ref) != `{"type":"ref/prompt","name":"x"}` {
		t.Fatalf("nested setParam = %s, %v", ref, err)
	}
	if _, err := setRaw(json.RawMessage(`[1]`), "ref", ref); !errors.Is(err, errBadParams) {
		t.Errorf("setRaw on an array: err = %v", err)
	}
}

func BenchmarkRouteParams(b *testing.B) {
	params := json.RawMessage(`{"name":"b0_echo","arguments":{"text":"hello world 12345"}}`)
	b.ReportAllocs()
	for b.Loop() {
		name, err := paramString(params, "name")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := setParam(params, "name", name[3:]); err != nil {
			b.Fatal(err)
		}
	}
}
