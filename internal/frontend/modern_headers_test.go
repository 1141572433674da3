package frontend

import (
	"encoding/json"
	"net/http"
	"testing"
)

func TestDecodeHeaderValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"plain", "plain", true},
		{"=?base64?SGVsbG8=?=", "Hello", true},
		{"=?base64?SGVsbG8?=", "", false},     // missing padding
		{"=?base64?SGVs!!!bG8=?=", "", false}, // not the alphabet
		{"SGVsbG8=", "SGVsbG8=", true},        // no wrapper: literal
		{"=?base64?SGVsbG8=", "=?base64?SGVsbG8=", true},
		{"=?base64?5pel5pys?=", "日本", true},
		{"", "", true},
	}
	for _, tt := range tests {
		got, ok := decodeHeaderValue(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("decodeHeaderValue(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestCheckStandardHeaders(t *testing.T) {
	t.Parallel()
	call := json.RawMessage(`{"name":"get_weather","arguments":{}}`)
	read := json.RawMessage(`{"uri":"file:///ü.txt"}`)
	tests := []struct {
		name    string
		method  string
		params  json.RawMessage
		headers map[string]string
		ok      bool
	}{
		{"list", "tools/list", nil, map[string]string{"Mcp-Method": "tools/list"}, true},
		{"lowercase name", "tools/list", nil, map[string]string{"mcp-method": "tools/list"}, true},
		{"padded value", "tools/list", nil, map[string]string{"Mcp-Method": "  tools/list "}, true},
		{"no method", "tools/list", nil, nil, false},
		{"value case", "tools/list", nil, map[string]string{"Mcp-Method": "Tools/List"}, false},
		{"call", "tools/call", call, map[string]string{"Mcp-Method": "tools/call", "Mcp-Name": "get_weather"}, true},
		{"call without name", "tools/call", call, map[string]string{"Mcp-Method": "tools/call"}, false},
		{"call wrong name", "tools/call", call, map[string]string{"Mcp-Method": "tools/call", "Mcp-Name": "get_time"}, false},
		{"read base64", "resources/read", read, map[string]string{"Mcp-Method": "resources/read", "Mcp-Name": "=?base64?ZmlsZTovLy/DvC50eHQ=?="}, true},
		{"read literal non-ascii mismatch", "resources/read", read, map[string]string{"Mcp-Method": "resources/read", "Mcp-Name": "file:///u.txt"}, false},
		{"prompt", "prompts/get", json.RawMessage(`{"name":"greet"}`), map[string]string{"Mcp-Method": "prompts/get", "Mcp-Name": "greet"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.headers {
				h.Set(k, v)
			}
			e := checkStandardHeaders(h, tt.method, tt.params)
			if (e == nil) != tt.ok {
				t.Fatalf("checkStandardHeaders = %v, want ok=%v", e, tt.ok)
			}
			if e != nil && e.Code != codeHeaderMismatch {
				t.Fatalf("code = %d, want %d", e.Code, codeHeaderMismatch)
			}
		})
	}
}

func TestCheckParamHeaders(t *testing.T) {
	t.Parallel()
	tool := json.RawMessage(`{"name":"t","inputSchema":{"type":"object","properties":{
		"region":{"type":"string","x-mcp-header":"Region"},
		"count":{"type":"integer","x-mcp-header":"Count"},
		"opts":{"type":"object","properties":{"dry":{"type":"boolean","x-mcp-header":"Dry"}}},
		"free":{"type":"string"}}}}`)
	tests := []struct {
		name    string
		args    string
		headers map[string]string
		ok      bool
		fwd     int // headers passed on
	}{
		{"all match", `{"region":"eu","count":42,"opts":{"dry":true}}`,
			map[string]string{"Mcp-Param-Region": "eu", "Mcp-Param-Count": "42.0", "Mcp-Param-Dry": "true"}, true, 3},
		{"base64", `{"region":"Zürich"}`, map[string]string{"Mcp-Param-Region": "=?base64?WsO8cmljaA==?="}, true, 1},
		{"absent parameter, no header", `{"free":"x"}`, nil, true, 0},
		{"null parameter, no header", `{"region":null}`, nil, true, 0},
		{"missing header", `{"region":"eu"}`, nil, false, 0},
		{"header without parameter", `{}`, map[string]string{"Mcp-Param-Region": "eu"}, false, 0},
		{"mismatch", `{"region":"eu"}`, map[string]string{"Mcp-Param-Region": "us"}, false, 0},
		{"integer mismatch", `{"count":42}`, map[string]string{"Mcp-Param-Count": "43"}, false, 0},
		{"not an integer", `{"count":42}`, map[string]string{"Mcp-Param-Count": "forty-two"}, false, 0},
		{"bad base64", `{"region":"eu"}`, map[string]string{"Mcp-Param-Region": "=?base64?ZX?="}, false, 0},
		{"boolean case", `{"opts":{"dry":false}}`, map[string]string{"Mcp-Param-Dry": "False"}, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.headers {
				h.Set(k, v)
			}
			fwd, e := checkParamHeaders(h, tool, json.RawMessage(`{"name":"t","arguments":`+tt.args+`}`))
			if (e == nil) != tt.ok {
				t.Fatalf("checkParamHeaders = %v, want ok=%v", e, tt.ok)
			}
			if e != nil && e.Code != codeHeaderMismatch {
				t.Fatalf("code = %d", e.Code)
			}
			if len(fwd) != tt.fwd {
				t.Fatalf("forwarded %v, want %d headers", fwd, tt.fwd)
			}
		})
	}
}

func TestForwardParams(t *testing.T) {
	t.Parallel()
	in := json.RawMessage(`{"name":"t","requestState":"vmcp1.x","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/logLevel":"info","progressToken":1}}`)
	inner := "round=2"
	var got struct {
		RequestState *string                    `json:"requestState"`
		Meta         map[string]json.RawMessage `json:"_meta"`
	}
	json.Unmarshal(forwardParams(in, &inner), &got)
	if got.RequestState == nil || *got.RequestState != inner {
		t.Errorf("requestState = %v, want the backend's own", got.RequestState)
	}
	if _, ok := got.Meta[metaProtocolVersion]; ok {
		t.Error("the protocol version reached the backend, which a legacy session refuses")
	}
	if _, ok := got.Meta["progressToken"]; !ok {
		t.Error("the progress token was dropped")
	}
	empty := ""
	got.RequestState = nil
	json.Unmarshal(forwardParams(in, &empty), &got)
	if got.RequestState != nil {
		t.Errorf("requestState = %q, want none", *got.RequestState)
	}
}
