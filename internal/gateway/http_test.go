package gateway_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
)

// jsonRequest is a POST of body in session sid from a client that accepts
// only JSON, so its answer is never an SSE stream.
func jsonRequest(ctx context.Context, url, sid, body string) *http.Request {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Mcp-Session-Id", sid)
	return req
}

// hangUpCancelsCall makes a plain-JSON tools/call through hc, hangs up
// once the backend runs it, and checks that the backend sees the call
// cancelled, on the wire, with notifications/cancelled.
func hangUpCancelsCall(t *testing.T, hc *http.Client, r *protoRig) {
	t.Helper()
	sid := rawInitWith(t, hc, r.gw.URL)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := jsonRequest(ctx, r.gw.URL, sid, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"p_wait_cancel","arguments":{}}}`)
	done := make(chan error, 1)
	go func() {
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	eventually(t, "call reaches the backend", func() bool { return r.proto.waiting.Load() == 1 })
	cancel() // closes the connection (HTTP/1) or resets the stream (HTTP/2)
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("client: %v, want its own cancellation", err)
	}
	select {
	case <-r.proto.cancelled:
	case <-time.After(20 * time.Second):
		t.Fatal("the backend's call was never cancelled")
	}
	eventually(t, "notifications/cancelled at the backend", func() bool { return r.proto.cancelNotes.Load() == 1 })
}

func TestClientHangUpCancelsPlainJSONCall(t *testing.T) {
	t.Parallel()
	hangUpCancelsCall(t, http.DefaultClient, startProtoRig(t))
}

// TestBodyThatNeverArrives: a POST whose head came but whose body never
// does is answered 408 and its connection closed once server.readTimeout
// has passed, for a chunked body and for one behind Expect: 100-continue.
// Calls that take longer than readTimeout, on JSON and on SSE, still get
// their answer: the deadline covers reading the body only.
func TestBodyThatNeverArrives(t *testing.T) {
	defer leakCheck(t)()
	// In a subtest, so that the gateway is shut down before the check.
	t.Run("gateway", bodyThatNeverArrives)
}

func bodyThatNeverArrives(t *testing.T) {
	ex := fixture.StartHTTP(t, exampleserver.Options{Name: "ex"})
	cfg := baseConfig(config.Backend{Name: "ex", Transport: config.TransportStreamableHTTP, URL: ex.URL})
	cfg.Server.ReadTimeout = config.Duration(300 * time.Millisecond)
	gw := startGateway(t, cfg, gateway.Options{})
	addr := strings.TrimPrefix(gw.Base, "http://")

	heads := []struct{ name, head, body string }{
		{"chunked", "Transfer-Encoding: chunked\r\n", "10\r\n{\"jsonrpc\":"},
		{"expect 100-continue", "Content-Length: 100\r\nExpect: 100-continue\r\n", ""},
		{"short content-length", "Content-Length: 100\r\n", `{"jsonrpc":"2.0"`},
	}
	for _, tc := range heads {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, "POST /mcp HTTP/1.1\r\nHost: "+addr+"\r\nContent-Type: application/json\r\nAccept: application/json\r\n"+tc.head+"\r\n"+tc.body); err != nil {
				t.Fatal(err)
			}
			// The bound is generous: the assertion is that the server
			// closes the connection, not how fast.
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			got, err := io.ReadAll(c)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("connection still open after 30s; read %q", got)
			}
			br := bufio.NewReader(strings.NewReader(string(got)))
			resp, err := http.ReadResponse(br, nil)
			if err == nil && resp.StatusCode == http.StatusContinue {
				resp, err = http.ReadResponse(br, nil)
			}
			if err != nil || resp.StatusCode != http.StatusRequestTimeout {
				t.Fatalf("server answered %q (%v), want 408 then a closed connection", got, err)
			}
		})
	}

	sid := rawInit(t, gw.URL)
	t.Run("long JSON call", func(t *testing.T) {
		req := jsonRequest(context.Background(), gw.URL, sid, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"ex_sleep_ms","arguments":{"ms":1000}}}`)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(b), "slept 1000 ms") {
			t.Fatalf("answered %s", b)
		}
	})
	t.Run("long SSE call", func(t *testing.T) {
		resp := ssePost(t, gw.URL, sid, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"ex_sleep_ms","arguments":{"ms":1000}}}`)
		if _, data := sseEvents(t, resp, 1); !strings.Contains(data[0], "slept 1000 ms") {
			t.Fatalf("answered %s", data[0])
		}
		resp.Body.Close()
	})
	if code := rawDelete(t, gw.URL, sid); code != http.StatusNoContent {
		t.Fatalf("DELETE = %d", code)
	}
}
