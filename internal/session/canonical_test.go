package session

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/vmcp/vmcp/internal/jsonrpc"
)

func TestCanonicalParams(t *testing.T) {
	t.Parallel()
	cases := []struct {
		method, params string
		want           string // "" with bad set
		bad            string // part of the error
	}{
		// What vmcp routes on is what the backend gets; the rest goes.
		{"tools/call", `{"name":"a_echo", "arguments":{"z":1.50,"NAME":"x","name":"y"},"extra":1}`, `{"name":"a_echo","arguments":{"z":1.50,"NAME":"x","name":"y"}}`, ""},
		{"tools/call", `{"_meta":{"progressToken":7},"arguments":{},"name":"e"}`, `{"name":"e","arguments":{},"_meta":{"progressToken":7}}`, ""},
		{"tools/call", `{"name":"e","task":{"ttl":60000}}`, `{"name":"e","task":{"ttl":60000}}`, ""},
		{"tools/call", `{"n\u0061me":"e"}`, `{"name":"e"}`, ""},
		{"tools/call", `{}`, `{}`, ""},
		{"prompts/get", `{"name":"p","arguments":{"k":"v"},"task":{}}`, `{"name":"p","arguments":{"k":"v"}}`, ""},
		{"resources/read", `{"uri":"file:///x","name":"ignored","_meta":{}}`, `{"uri":"file:///x","_meta":{}}`, ""},
		// The review's bypass and its relatives.
		{"tools/call", `{"name":"files_read_file","NAME":"delete_file"}`, "", `"NAME"`},
		{"tools/call", `{"name":"a","name":"b"}`, "", `duplicate member "name"`},
		{"tools/call", `{"name":"a","n\u0061me":"b"}`, "", `duplicate member "name"`},
		{"tools/call", `{"Name":"a"}`, "", `must be spelled "name"`},
		{"tools/call", `{"name":"a","Arguments":{}}`, "", `"Arguments"`},
		{"tools/call", `{"name":"a","arguments":{},"arguments":{"x":1}}`, "", `duplicate member "arguments"`},
		{"tools/call", `{"name":"a","TASK":{}}`, "", `"TASK"`},
		{"tools/call", `{"name":"a","_META":{}}`, "", `"_META"`},
		// encoding/json folds Unicode too: ſ (U+017F) is s, K (U+212A) is k.
		{"tools/call", `{"name":"a","argumentſ":{}}`, "", `must be spelled "arguments"`},
		{"resources/read", `{"uri":"a","URI":"b"}`, "", `"URI"`},
		{"resources/read", `{"uri":"a","uri":"b"}`, "", `duplicate member "uri"`},
		{"prompts/get", `{"name":"a","nAme":"b"}`, "", `"nAme"`},
		{"tools/call", `[1]`, "", "must be an object"},
		{"tools/call", `{"name":"a"`, "", "must be an object"},
		// Other methods are not touched.
		{"tools/list", `{"cursor":"x","CURSOR":"y"}`, `{"cursor":"x","CURSOR":"y"}`, ""},
	}
	for _, tc := range cases {
		got, err := CanonicalParams(tc.method, json.RawMessage(tc.params))
		if tc.bad != "" {
			if !errors.Is(err, errBadParams) || !InvalidParams(err) || !strings.Contains(err.Error(), tc.bad) {
				t.Errorf("%s %s: err = %v, want invalid params containing %s", tc.method, tc.params, err, tc.bad)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("%s %s = %s, %v; want %s", tc.method, tc.params, got, err, tc.want)
		}
	}
}

// FuzzCanonicalParams checks that whatever a client sends, a backend that
// decodes the canonical params with encoding/json (case-insensitive, last
// duplicate wins) sees the same name, uri and arguments that vmcp routed
// on; and that the arguments pass through byte for byte.
func FuzzCanonicalParams(f *testing.F) {
	for _, s := range []string{
		`{"name":"files_read_file","NAME":"delete_file"}`,
		`{"name":"a","name":"b"}`,
		`{"name":"a","arguments":{"x":[1,{"y":null}]},"_meta":{"progressToken":"t"}}`,
		`{"uri":"file:///etc/passwd","URI":"file:///x"}`,
		`{"n\u0061me":"x","Name":"y"}`,
		`{"name":"a","argumentſ":{"rm":true}}`,
		`{"name":"a","task":{"ttl":1},"Task":{}}`,
		`{}`, `[]`, `null`, `{"name":`,
	} {
		f.Add("tools/call", s)
		f.Add("resources/read", s)
	}
	f.Fuzz(func(t *testing.T, method, params string) {
		out, err := CanonicalParams(method, json.RawMessage(params))
		if err != nil {
			if !InvalidParams(err) {
				t.Fatalf("error %v is not invalid params", err)
			}
			return
		}
		if _, routed := forwarded[method]; !routed {
			if string(out) != params {
				t.Fatalf("params of %s changed: %s", method, out)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("canonical params %s are not valid JSON (from %s)", out, params)
		}
		var backend struct {
			Name      json.RawMessage
			URI       json.RawMessage
			Arguments json.RawMessage
		}
		if err := json.Unmarshal(out, &backend); err != nil {
			t.Fatalf("a Go backend cannot decode %s: %v", out, err)
		}
		for key, got := range map[string]json.RawMessage{"name": backend.Name, "uri": backend.URI, "arguments": backend.Arguments} {
			routed, _ := jsonrpc.Member(json.RawMessage(params), key)
			inOut, _ := jsonrpc.Member(out, key)
			if string(got) != string(inOut) {
				t.Fatalf("%s: backend decodes %s, vmcp forwards %s (params %s)", key, got, inOut, params)
			}
			if inOut != nil && string(inOut) != string(routed) {
				t.Fatalf("%s: forwarded %s, client sent %s", key, inOut, routed)
			}
		}
	})
}

func BenchmarkCanonicalParams(b *testing.B) {
	params := json.RawMessage(`{"name":"b0_echo","arguments":{"text":"hello world 12345"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CanonicalParams("tools/call", params); err != nil {
			b.Fatal(err)
		}
	}
}
