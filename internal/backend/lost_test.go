package backend

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/jsonrpc"
)

// A backend that restarted answers the old session ID in the forms real
// servers use; each that means "lost session" must be ErrSessionNotFound
// (so the session re-initializes it), and the rest must stay what they are,
// naming the backend. Close on a lost session is not an error.
func TestStreamableLostSessionForms(t *testing.T) {
	t.Parallel()
	const tsBody = `{"jsonrpc":"2.0","error":{"code":-32000,"message":"%s"},"id":null}`
	for _, tc := range []struct {
		name, contentType, body string
		status                  int
		lost                    bool
		code                    int // the JSON-RPC code when not lost; 0: none
	}{
		{"TS no valid session ID", "application/json", strings.Replace(tsBody, "%s", "Bad Request: No valid session ID provided", 1), 400, true, 0},
		{"TS header required", "application/json", strings.Replace(tsBody, "%s", "Bad Request: Mcp-Session-Id header is required", 1), 400, true, 0},
		{"TS server not initialized", "application/json", strings.Replace(tsBody, "%s", "Bad Request: Server not initialized", 1), 400, true, 0},
		{"TS session not found", "application/json", `{"jsonrpc":"2.0","error":{"code":-32001,"message":"Session not found"},"id":null}`, 404, true, 0},
		{"plain 404", "text/plain", "404 page not found", 404, true, 0},
		{"plain 400 naming the session", "text/plain", "Bad Request: No valid session ID provided", 400, true, 0},
		{"2026-07-28 method not found", "application/json", `{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":1}`, 404, false, jsonrpc.CodeMethodNotFound},
		{"400 about something else", "application/json", `{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params"},"id":1}`, 400, false, jsonrpc.CodeInvalidParams},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, c := filesClient(t, modeJSONResponses)
			mustCall(t, c, "count", nil)
			var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.contentType)
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			})
			f.handler.Store(&h) // the restarted server
			_, err := callTool(context.Background(), c, "count", nil, nil)
			if got := errors.Is(err, ErrSessionNotFound); got != tc.lost {
				t.Fatalf("err = %v; lost session = %v, want %v", err, got, tc.lost)
			}
			if !strings.Contains(err.Error(), `backend "files"`) {
				t.Errorf("error does not name the backend: %v", err)
			}
			if e := jsonrpc.AsError(err); !tc.lost && (e == nil || e.Code != tc.code) {
				t.Errorf("err = %v, want JSON-RPC code %d", err, tc.code)
			}
			noSecrets(t, err, c.SessionID())
			if err := c.Close(); tc.lost && err != nil {
				t.Errorf("Close on a lost session: %v", err)
			}
		})
	}
}

func TestSaysSessionLost(t *testing.T) {
	t.Parallel()
	for msg, want := range map[string]bool{
		"Bad Request: No valid session ID provided":                            true,
		"Bad Request: No valid session ID provided for non-initialize request": true,
		"Bad Request: Mcp-Session-Id header is required":                       true,
		"Bad Request: Server not initialized":                                  true,
		"Session not found":                                                    true,
		"invalid session":                                                      true,
		"session expired":                                                      true,
		"Bad Request: Mcp-Session-Id header must be a single value":            false,
		"Invalid params":                                                       false,
		"":                                                                     false,
	} {
		if got := saysSessionLost(msg); got != want {
			t.Errorf("saysSessionLost(%q) = %v, want %v", msg, got, want)
		}
	}
}

func TestCategoryNeverEchoesBackendText(t *testing.T) {
	t.Parallel()
	secret := errors.New("token=s3cret")
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{opError("b", "tools/call", fmt.Errorf("%w: %w", ErrUnavailable, secret)), "unreachable"},
		{fmt.Errorf("%w: %w", ErrUnavailable, &HTTPStatusError{503}), "http 5xx"},
		{opError("b", "initialize", &SettingTimeout{Setting: "session.backendInitTimeout", After: time.Second}), "timeout"},
		{fmt.Errorf("%w (HTTP 400)", ErrSessionNotFound), "session lost"},
		{&jsonrpc.Error{Code: -32000, Message: "token=s3cret"}, "backend error"},
		{opError("b", "initialize", secret), "protocol error"},
	} {
		if got := Category(tc.err); got != tc.want {
			t.Errorf("Category(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// An SSE server that restarted and answers the POST with the
// TypeScript SDK's 400 has lost the session too.
func TestSSELostSessionAs400(t *testing.T) {
	t.Parallel()
	f := startHTTP(t, modeLegacySSE)
	x := NewSSE(HTTPOptions{Name: "sse", URL: f.url()})
	t.Cleanup(func() { x.Close() })
	c, _ := connect(t, x, ConnectOptions{})
	mustCall(t, c, "count", nil)
	old := *f.handler.Load()
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			old.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: No valid session ID provided"},"id":null}`))
	})
	f.handler.Store(&h)
	_, err := callTool(context.Background(), c, "count", nil, nil)
	if !errors.Is(err, ErrSessionNotFound) || !strings.Contains(err.Error(), `backend "sse"`) {
		t.Fatalf("err = %v, want ErrSessionNotFound naming the backend", err)
	}
}

// An SSE session whose event stream has ended takes no request: the SDK's
// connection refuses to POST it, before vmcp's reader has seen the end,
// and the write says nothing was sent, so that the call goes to a new
// session instead of failing.
func TestSSEWriteAfterTheStreamEndedSendsNothing(t *testing.T) {
	t.Parallel()
	f := startHTTP(t, modeLegacySSE)
	x := NewSSE(HTTPOptions{Name: "sse", URL: f.url()})
	t.Cleanup(func() { x.Close() })
	c, _ := connect(t, x, ConnectOptions{})
	mustCall(t, c, "count", nil)
	sc := c.(*client).conn.(*sseConn).sc
	if err := sc.Close(); err != nil { // as the SDK does when the stream ends
		t.Fatal(err)
	}
	frames := &sdkFrames{conn: sc, ctx: context.Background(), c: c.(*client)}
	err := frames.write(context.Background(), []byte(`{"jsonrpc":"2.0","id":99,"method":"tools/list"}`))
	if !errors.Is(err, errConnEnded) {
		t.Errorf("write after the stream ended = %v, want errConnEnded", err)
	}
}
