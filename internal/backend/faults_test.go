package backend

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Fault backends: small real HTTP servers that misbehave on purpose.

// miniCall is one tools/call as a mini backend sees it.
type miniCall struct {
	ctx  context.Context // the request's
	id   json.RawMessage
	text string // arguments.text
}

// startMini starts a hand-written Streamable HTTP backend: enough of MCP
// for a client session (initialize, notifications, DELETE), with each
// tools/call answered by call, which may answer wrongly on purpose.
func startMini(t *testing.T, call func(w http.ResponseWriter, c miniCall)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodDelete:
			return
		case http.MethodGet:
			http.Error(w, "no standalone stream", http.StatusMethodNotAllowed)
			return
		}
		m, err := decodeMini(r.Body)
		switch {
		case err != nil:
			http.Error(w, "bad request", http.StatusBadRequest)
		case m.ID == nil:
			w.WriteHeader(http.StatusAccepted)
		case m.Method == "initialize":
			w.Header().Set(hdrSessionID, "mini-session")
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, initAnswer(m.ID))
		case m.Method == "tools/call":
			call(w, miniCall{ctx: r.Context(), id: m.ID, text: m.Params.Arguments.Text})
		default:
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{}}`, m.ID)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/mcp"
}

type miniMessage struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params struct {
		Arguments struct {
			Text string `json:"text"`
		} `json:"arguments"`
	} `json:"params"`
}

func decodeMini(r io.Reader) (miniMessage, error) {
	var m miniMessage
	err := json.NewDecoder(r).Decode(&m)
	return m, err
}

func initAnswer(id json.RawMessage) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":%q,"capabilities":{"tools":{}},"serverInfo":{"name":"mini","version":"0"}}}`,
		id, LatestProtocolVersion)
}

// toolAnswer is a tools/call result whose first content block is text.
func toolAnswer(id json.RawMessage, text string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{"content":[{"type":"text","text":%q}]}}`, id, text)
}

func TestResponseWithWrongIDIsNotDelivered(t *testing.T) {
	t.Parallel()
	for _, sse := range []bool{false, true} {
		t.Run(fmt.Sprintf("sse=%v", sse), func(t *testing.T) {
			t.Parallel()
			url := startMini(t, func(w http.ResponseWriter, c miniCall) {
				id := c.id
				if c.text != "right id" {
					n, _ := strconv.Atoi(string(c.id))
					id = json.RawMessage(strconv.Itoa(n + 1000))
				}
				if sse {
					// Other messages may come first; only the response must
					// match.
					w.Header().Set("Content-Type", "text/event-stream")
					fmt.Fprintf(w, "data: %s\n\ndata: %s\n\n",
						`{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"working"}}`,
						toolAnswer(id, "answer to "+c.text))
					return
				}
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, toolAnswer(id, "answer to "+c.text))
			})
			x := NewStreamableHTTP(HTTPOptions{Name: "files", URL: url})
			t.Cleanup(func() { x.Close() })
			c, _ := connect(t, x, ConnectOptions{})
			got, err := callTool(context.Background(), c, "echo", map[string]string{"text": "wrong id"}, nil)
			if !errors.Is(err, ErrMismatchedID) || got != "" {
				t.Fatalf("answer with another id: %q, %v; want ErrMismatchedID and no answer", got, err)
			}
			if !strings.Contains(err.Error(), `backend "files"`) {
				t.Errorf("error does not name the backend: %v", err)
			}
			if got := mustCall(t, c, "echo", map[string]string{"text": "right id"}); got != "answer to right id" {
				t.Errorf("answer with the right id = %q", got)
			}
		})
	}
}

// strayBackend is a raw HTTP/1.1 backend on a loopback socket with a
// framing bug: on each connection it answers a tools/call (echoing
// arguments.text) and then, in mode "shift", writes the previous answer
// again before the next one, so that every later answer on the socket is
// one behind; in mode "short" it declares a Content-Length 8 bytes short
// and appends a second copy of the response.
type strayBackend struct {
	ln    net.Listener
	mode  string
	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func startStray(t *testing.T, mode string) *strayBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &strayBackend{ln: ln, mode: mode, conns: map[net.Conn]bool{}}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = true
			s.mu.Unlock()
			s.wg.Go(func() { s.serve(c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *strayBackend) url() string { return "http://" + s.ln.Addr().String() + "/mcp" }

func jsonResponse(body string, length int) string {
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMcp-Session-Id: stray\r\nContent-Length: %d\r\n\r\n%s", length, body)
}

func (s *strayBackend) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	var previous string // the last answer written on this connection
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		m, _ := decodeMini(req.Body)
		req.Body.Close()
		var out string
		switch {
		case req.Method != http.MethodPost:
			out = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
		case m.ID == nil:
			out = "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"
		case m.Method == "initialize":
			b := initAnswer(m.ID)
			out = jsonResponse(b, len(b))
		default:
			b := toolAnswer(m.ID, m.Params.Arguments.Text)
			answer := jsonResponse(b, len(b))
			switch s.mode {
			case "shift":
				out = previous + answer
				previous = answer
			case "short":
				out = jsonResponse(b, len(b)-8) + answer
			}
		}
		if _, err := io.WriteString(c, out); err != nil {
			return
		}
	}
}

// TestStrayResponsesNeverReachAnotherSession: two sessions make calls
// interleaved through one pooled socket to a backend that writes
// unsolicited responses. Each call gets its own answer or an error, never
// the other session's (or its own earlier) answer.
func TestStrayResponsesNeverReachAnotherSession(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"shift", "short"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			srv := startStray(t, mode)
			x := NewStreamableHTTP(HTTPOptions{Name: "files", URL: srv.url(), MaxConnsPerHost: 1})
			t.Cleanup(func() { x.Close() })
			a, _ := connect(t, x, ConnectOptions{})
			b, _ := connect(t, x, ConnectOptions{})
			const calls = 30
			var ok, failed atomic.Int32
			var wg sync.WaitGroup
			for name, c := range map[string]Client{"A": a, "B": b} {
				wg.Go(func() {
					for i := range calls {
						want := fmt.Sprintf("%s-%d", name, i)
						got, err := callTool(context.Background(), c, "echo", map[string]string{"text": want}, nil)
						switch {
						case err != nil:
							failed.Add(1)
						case got != want:
							t.Errorf("session %s sent %q and got %q", name, want, got)
						default:
							ok.Add(1)
						}
					}
				})
			}
			wg.Wait()
			t.Logf("%d calls answered, %d failed", ok.Load(), failed.Load())
			if failed.Load() == 0 {
				t.Error("no call failed: the backend's stray responses went unnoticed")
			}
		})
	}
}

// TestCancelledCallFreesTheOnlySocket: with a pool of one, a call given
// up on does not keep the socket from the next call.
func TestCancelledCallFreesTheOnlySocket(t *testing.T) {
	t.Parallel()
	f := startHTTP(t, modeSSEResponses)
	x := NewStreamableHTTP(HTTPOptions{Name: "files", URL: f.url(), MaxConnsPerHost: 1})
	defer x.Close()
	c, _ := connect(t, x, ConnectOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := callTool(ctx, c, "slow", nil, nil)
		done <- err
	}()
	// A second call waits for the only socket while the first holds it.
	waiting := make(chan error, 1)
	go func() {
		_, err := callTool(context.Background(), c, "echo", map[string]string{"text": "after"}, nil)
		waiting <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: %v, want context.Canceled", err)
	}
	if err := <-waiting; err != nil {
		t.Fatalf("call after a cancelled one: %v", err)
	}
	if got := mustCall(t, c, "echo", map[string]string{"text": "x"}); got != "x" {
		t.Errorf("echo = %q", got)
	}
}

func TestValidHeader(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, value string
		ok          bool
	}{
		{"X-Api-Key", "secret value\twith tab", true},
		{"X-Api-Key", "a\r\nInjected: yes", false},
		{"X-Api-Key", "a\nb", false},
		{"Bad Name", "v", false},
		{"Bad:Name", "v", false},
		{"", "v", false},
	} {
		if got := validHeader(tc.name, tc.value); got != tc.ok {
			t.Errorf("validHeader(%q, %q) = %v", tc.name, tc.value, got)
		}
	}
	for _, h := range []map[string]string{{"X-Api-Key": "k\r\nEvil: 1"}, {"Idempotency-Key": "Evil"}} {
		x := NewStreamableHTTP(HTTPOptions{Name: "files", URL: "http://127.0.0.1:1/mcp", Headers: h})
		_, _, err := x.Connect(context.Background(), ConnectOptions{})
		if err == nil || !strings.Contains(err.Error(), "header") || strings.Contains(err.Error(), "Evil") {
			t.Errorf("headers %q: err = %v, want a header error without the value", h, err)
		}
	}
}

const budgetKey = "server.maxBufferedResponseBytes"

// TestResponseOverBudgetFails: a response that cannot be buffered within
// the process-wide budget fails the call, naming the setting; the budget
// is whole again afterwards and smaller answers still pass.
func TestResponseOverBudgetFails(t *testing.T) {
	t.Parallel()
	for _, mode := range []httpMode{modeSSEResponses, modeJSONResponses} {
		// Above what pooled buffers (charged as they are) take for a small
		// answer.
		budget := NewBudget(256<<10, budgetKey)
		f := startHTTP(t, mode)
		x := NewStreamableHTTP(HTTPOptions{Name: "files", URL: f.url(), Budget: budget})
		defer x.Close()
		c, _ := connect(t, x, ConnectOptions{})
		_, err := callTool(context.Background(), c, "echo", map[string]string{"text": strings.Repeat("x", 300<<10)}, nil)
		if !errors.Is(err, ErrOverBudget) || !strings.Contains(err.Error(), budgetKey) || !strings.Contains(err.Error(), `backend "files"`) {
			t.Errorf("mode %d: err = %v, want ErrOverBudget naming %s and the backend", mode, err, budgetKey)
		}
		if now, _ := budget.Usage(); now != 0 {
			t.Errorf("mode %d: %d bytes still reserved after the call", mode, now)
		}
		if got := mustCall(t, c, "echo", map[string]string{"text": "small"}); got != "small" {
			t.Errorf("mode %d: echo = %q", mode, got)
		}
	}
}

// TestResponseOverMaxResponseBytesNamesTheSetting: the per-response limit
// says which setting it is.
func TestResponseOverMaxResponseBytesNamesTheSetting(t *testing.T) {
	t.Parallel()
	f := startHTTP(t, modeJSONResponses)
	x := NewStreamableHTTP(HTTPOptions{Name: "files", URL: f.url(), MaxMessageBytes: 4096})
	defer x.Close()
	c, _ := connect(t, x, ConnectOptions{})
	_, err := callTool(context.Background(), c, "echo", map[string]string{"text": strings.Repeat("x", 8192)}, nil)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "maxResponseBytes") {
		t.Errorf("err = %v, want ErrTooLarge naming maxResponseBytes", err)
	}
}

// TestConcurrentLargeResponsesShareTheBudget: many calls whose large
// answers all arrive at once never hold more than the budget between
// them. Answers of known length wait for room and all succeed; streamed
// ones that cannot grow within it fail with ErrOverBudget.
func TestConcurrentLargeResponsesShareTheBudget(t *testing.T) {
	t.Parallel()
	const calls, size, total = 8, 1 << 20, 5 << 20
	for _, sse := range []bool{false, true} {
		t.Run(fmt.Sprintf("sse=%v", sse), func(t *testing.T) {
			t.Parallel()
			var arrived atomic.Int32
			all := make(chan struct{})
			url := startMini(t, func(w http.ResponseWriter, c miniCall) {
				// Hold every answer until all calls are in flight.
				if arrived.Add(1) == calls {
					close(all)
				}
				select {
				case <-all:
				case <-c.ctx.Done():
					return
				}
				body := toolAnswer(c.id, strings.Repeat("x", size))
				if sse {
					w.Header().Set("Content-Type", "text/event-stream")
					io.WriteString(w, "data: "+body+"\n\n")
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Content-Length", strconv.Itoa(len(body)))
				io.WriteString(w, body)
			})
			budget := NewBudget(total, budgetKey)
			x := NewStreamableHTTP(HTTPOptions{Name: "files", URL: url, Budget: budget})
			t.Cleanup(func() { x.Close() })
			c, _ := connect(t, x, ConnectOptions{})
			var ok, over atomic.Int32
			var wg sync.WaitGroup
			for range calls {
				wg.Go(func() {
					got, err := callTool(context.Background(), c, "echo", nil, nil)
					switch {
					case err == nil && len(got) == size:
						ok.Add(1)
					case errors.Is(err, ErrOverBudget) && strings.Contains(err.Error(), budgetKey):
						over.Add(1)
					default:
						t.Errorf("call: %d bytes, %v", len(got), err)
					}
				})
			}
			wg.Wait()
			now, peak := budget.Usage()
			t.Logf("%d answered, %d over budget; peak %d bytes of %d", ok.Load(), over.Load(), peak, total)
			if peak > total || peak < size {
				t.Errorf("peak reservation %d bytes, want between %d and the budget %d", peak, size, total)
			}
			if now != 0 {
				t.Errorf("%d bytes still reserved after every call returned", now)
			}
			if !sse && ok.Load() != calls {
				t.Errorf("%d of %d answers of known length succeeded; they should wait for room", ok.Load(), calls)
			}
			if ok.Load() == 0 {
				t.Error("no call succeeded")
			}
		})
	}
}
