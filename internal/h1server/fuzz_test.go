package h1server

import (
	"bufio"
	"bytes"
	"net/http"
	"testing"
)

// FuzzParseHead checks the fast path against net/http: every head the
// fast path accepts, net/http must read as the same request.
func FuzzParseHead(f *testing.F) {
	for _, s := range []string{
		"POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n",
		"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:8080\r\ncontent-length: 10\r\naccept: application/json, text/event-stream\r\nMcp-Session-Id: abc\r\n\r\n",
		"POST /mcp HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\nX-A: 1\r\nX-A: 2\r\n\r\n",
		"POST /mcp HTTP/1.1\r\nHost: [::1]:80\r\nContent-Length: 0\r\nX-Tab:\tv \t\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		h, ok := parseHead(raw, "/mcp", make(http.Header), nil)
		if !ok {
			return
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			t.Fatalf("fast path accepted a head net/http rejects (%v): %q", err, raw)
		}
		if req.Method != http.MethodPost || req.URL.Path != h.path || req.Host != h.host || req.ContentLength != h.contentLength || req.Close != h.close {
			t.Fatalf("fast path read %+v, net/http %s %s host %q length %d close %v: %q", h, req.Method, req.URL.Path, req.Host, req.ContentLength, req.Close, raw)
		}
		for k, v := range req.Header {
			if k == "Host" {
				continue
			}
			if got := h.header[k]; len(got) != len(v) || (len(v) > 0 && got[0] != v[0]) {
				t.Fatalf("header %s: fast path %q, net/http %q: %q", k, got, v, raw)
			}
		}
	})
}
