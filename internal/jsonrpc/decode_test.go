package jsonrpc

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		in     string
		code   int    // 0: success
		method string // on success
		id     string
		params string
	}{
		{"request", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x"}}`, 0, "tools/call", "7", `{"name":"x"}`},
		{"string id and spaces", " \n{ \"id\" : \"a\" , \"method\":\"ping\",\"jsonrpc\":\"2.0\" }\t", 0, "ping", `"a"`, ""},
		{"notification", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, 0, "notifications/initialized", "", ""},
		{"params null", `{"jsonrpc":"2.0","id":1,"method":"ping","params":null}`, 0, "ping", "1", "null"},
		{"escaped method", `{"jsonrpc":"2.0","id":1,"method":"tools\/list"}`, 0, "tools/list", "1", ""},
		{"escaped member name", `{"jsonrpc":"2.0","id":1,"\u006dethod":"ping"}`, 0, "ping", "1", ""},
		{"unknown members ignored", `{"jsonrpc":"2.0","x":[1,{"y":null}],"id":1,"method":"m"}`, 0, "m", "1", ""},
		{"last duplicate wins", `{"jsonrpc":"2.0","id":1,"method":"a","method":"b"}`, 0, "b", "1", ""},
		{"response", `{"jsonrpc":"2.0","id":3,"result":{"ok":true}}`, 0, "", "3", ""},
		{"error response", `{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"nope"}}`, 0, "", "3", ""},

		{"truncated", `{"jsonrpc":"2.0","id":1,"method":`, CodeParseError, "", "", ""},
		{"trailing garbage", `{"jsonrpc":"2.0","id":1,"method":"ping"} x`, CodeParseError, "", "", ""},
		{"bad params", `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":tru}}`, CodeParseError, "", "", ""},
		{"bad string escape", `{"jsonrpc":"2.0","id":1,"method":"p\xing"}`, CodeParseError, "", "", ""},
		{"control char in string", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"p\x01\"}", CodeParseError, "", "", ""},
		{"leading zero", `{"jsonrpc":"2.0","id":01,"method":"ping"}`, CodeParseError, "", "", ""},
		{"empty", ``, CodeParseError, "", "", ""},
		{"garbage", `hello`, CodeParseError, "", "", ""},
		{"too deep", `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}}`, CodeParseError, "", "", ""},

		{"not JSON-RPC", `{"hello":"world"}`, CodeInvalidRequest, "", "", ""},
		{"wrong version", `{"jsonrpc":"1.0","id":1,"method":"ping"}`, CodeInvalidRequest, "", "", ""},
		{"version not a string", `{"jsonrpc":2,"id":1,"method":"ping"}`, CodeInvalidRequest, "", "", ""},
		{"member names are case-sensitive", `{"jsonrpc":"2.0","id":1,"Method":"ping"}`, CodeInvalidRequest, "", "", ""},
		{"method not a string", `{"jsonrpc":"2.0","id":1,"method":5}`, CodeInvalidRequest, "", "", ""},
		{"null id on request", `{"jsonrpc":"2.0","id":null,"method":"ping"}`, CodeInvalidRequest, "", "", ""},
		{"object id", `{"jsonrpc":"2.0","id":{},"method":"ping"}`, CodeInvalidRequest, "", "", ""},
		{"scalar params", `{"jsonrpc":"2.0","id":1,"method":"ping","params":3}`, CodeInvalidRequest, "", "", ""},
		{"request with result", `{"jsonrpc":"2.0","id":1,"method":"ping","result":{}}`, CodeInvalidRequest, "", "", ""},
		{"error not an object", `{"jsonrpc":"2.0","id":1,"error":5}`, CodeInvalidRequest, "", "", ""},
		{"batch", `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, CodeInvalidRequest, "", "", ""},
		{"array of numbers", `[1,2,3]`, CodeInvalidRequest, "", "", ""},
		{"string", `"ping"`, CodeInvalidRequest, "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, e := Decode([]byte(tc.in), 64)
			if tc.code != 0 {
				if e == nil || e.Code != tc.code {
					t.Fatalf("Decode = %+v, %v; want code %d", m, e, tc.code)
				}
				return
			}
			if e != nil {
				t.Fatalf("Decode: %v", e)
			}
			if m.Method != tc.method || string(m.ID) != tc.id || string(m.Params) != tc.params {
				t.Fatalf("got method %q id %s params %s; want %q %s %s", m.Method, m.ID, m.Params, tc.method, tc.id, tc.params)
			}
		})
	}
}

func TestDecodeErrorResponse(t *testing.T) {
	t.Parallel()
	m, e := Decode([]byte(`{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"nope","data":{"x":1}}}`), 0)
	if e != nil {
		t.Fatal(e)
	}
	if !m.IsResponse() || m.Error == nil || m.Error.Code != -32601 || m.Error.Message != "nope" || string(m.Error.Data) != `{"x":1}` {
		t.Fatalf("got %+v %+v", m, m.Error)
	}
}

// TestDecodeOwnsItsBytes checks that the caller may reuse its buffer.
func TestDecodeOwnsItsBytes(t *testing.T) {
	t.Parallel()
	buf := []byte(`{"jsonrpc":"2.0","id":1,"method":"custom/method","params":{"a":1}}`)
	m, e := Decode(buf, 0)
	if e != nil {
		t.Fatal(e)
	}
	for i := range buf {
		buf[i] = 'x'
	}
	if m.Method != "custom/method" || string(m.ID) != "1" || string(m.Params) != `{"a":1}` {
		t.Fatalf("message changed with the input buffer: %q %s %s", m.Method, m.ID, m.Params)
	}
}

func TestValidMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		``, ` `, `0`, `-0`, `-`, `01`, `1.`, `1.5e`, `1.5e+3`, `1E-2`, `.5`, `"\u00zz"`, `"\u00e9"`, `"a\/b"`,
		`[1,]`, `[,1]`, `{"a":1,}`, `{"a" 1}`, `{1:2}`, `nul`, `null`, `truex`, `[true,false,null]`, "\"\x7f\"", "\"\xff\"",
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001), strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
	} {
		if got, want := Valid([]byte(in)), json.Valid([]byte(in)); got != want {
			t.Errorf("Valid(%.40q) = %v, json.Valid = %v", in, got, want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x","arguments":{"t":[1,2.5e3,"\u00e9"]}}}`,
		`{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"nope"}}`,
		`[1,2]`, `{"a":`, `"x"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		valid := json.Valid(data)
		if Valid(data) != valid {
			t.Fatalf("Valid = %v, json.Valid = %v", !valid, valid)
		}
		m, e := Decode(data, 0)
		switch {
		case e == nil && !valid:
			t.Fatal("Decode accepted invalid JSON")
		case e != nil && e.Code == CodeParseError && valid:
			t.Fatalf("Decode: parse error on valid JSON: %v", e)
		case e != nil && e.Code != CodeParseError && !valid:
			t.Fatalf("Decode: code %d on invalid JSON", e.Code)
		case e == nil && m.Params != nil && !json.Valid(m.Params):
			t.Fatal("params not valid JSON")
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	for _, bc := range []struct{ name, in string }{
		{"call", `{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"b0_echo","arguments":{"text":"hello world 12345"}}}`},
		{"result", `{"jsonrpc":"2.0","id":42,"result":{"content":[{"type":"text","text":"hello world 12345"}],"structuredContent":{"text":"hello world 12345"}}}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			data := []byte(bc.in)
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, e := Decode(data, 64); e != nil {
					b.Fatal(e)
				}
			}
		})
	}
}
