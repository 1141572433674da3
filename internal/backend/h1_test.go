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
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	testfix "github.com/vmcp/vmcp/internal/fixture"
)

// rawServer answers every request on a loopback socket with what reply
// returns for it (the raw bytes of a whole response), so that tests can
// send responses net/http's server would never produce. It counts the
// connections it accepted and holds open.
type rawServer struct {
	ln       net.Listener
	reply    func(reqLine string, n int) string // n counts requests on the connection
	accepted atomic.Int32
	open     atomic.Int32
	maxOpen  atomic.Int32
	wg       sync.WaitGroup
}

func startRaw(t *testing.T, reply func(reqLine string, n int) string) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln, reply: reply}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			n := s.open.Add(1)
			for m := s.maxOpen.Load(); n > m && !s.maxOpen.CompareAndSwap(m, n); m = s.maxOpen.Load() {
			}
			s.wg.Add(1)
			go s.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *rawServer) serve(c net.Conn) {
	defer s.wg.Done()
	defer s.open.Add(-1)
	defer c.Close()
	br := bufio.NewReader(c)
	for n := 0; ; n++ {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		length := 0
		for {
			h, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if h == "\r\n" {
				break
			}
			if v, ok := strings.CutPrefix(h, "Content-Length: "); ok {
				fmt.Sscanf(v, "%d", &length)
			}
		}
		if _, err := io.CopyN(io.Discard, br, int64(length)); err != nil {
			return
		}
		out := s.reply(strings.TrimSpace(line), n)
		if out == "" {
			return // hang up
		}
		out, hang := strings.CutSuffix(out, hangUp)
		first, rest, paused := strings.Cut(out, pause)
		if _, err := io.WriteString(c, first); err != nil {
			return
		}
		if paused {
			time.Sleep(20 * time.Millisecond)
			if _, err := io.WriteString(c, rest); err != nil {
				return
			}
		}
		if hang || strings.Contains(out, "Connection: close") {
			return
		}
	}
}

// hangUp, at the end of a reply, makes the raw server close the
// connection after writing it; pause, inside a reply, makes it wait a
// little before writing the rest.
const (
	hangUp = "\x00hang up"
	pause  = "\x00pause"
)

func (s *rawServer) url() string { return "http://" + s.ln.Addr().String() + "/mcp" }

func testPool(t *testing.T, rawURL string, max int) *h1Pool {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	p := newH1Pool(u, max, time.Minute, nil)
	t.Cleanup(p.closeIdle)
	return p
}

var testHeader = &header{raw: []byte("Content-Type: application/json\r\n")}

// fetch does one POST and reads the whole body.
func fetch(ctx context.Context, p *h1Pool) (*response, string, error) {
	resp, err := p.do(ctx, http.MethodPost, testHeader, []byte(`{}`), true)
	if err != nil {
		return nil, "", err
	}
	defer resp.body.Close()
	b, err := io.ReadAll(resp.body)
	return resp, string(b), err
}

func TestH1Bodies(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, reply, want string
		reused            bool // the next request reuses the connection
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", "{}", true},
		{"chunked with extension and trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: 1\r\n\r\n", "abcde", true},
		{"interim response skipped", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", "x", true},
		{"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", "x", false},
		{"HTTP/1.0 without keep-alive", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", "x", false},
		{"no length: read to EOF", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end", "until the end", false},
		{"204", "HTTP/1.1 204 No Content\r\n\r\n", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := startRaw(t, func(string, int) string { return tc.reply })
			p := testPool(t, srv.url(), 4)
			for range 2 {
				if _, got, err := fetch(context.Background(), p); err != nil || got != tc.want {
					t.Fatalf("body = %q, %v; want %q", got, err, tc.want)
				}
			}
			want := int32(2)
			if tc.reused {
				want = 1
			}
			if got := srv.accepted.Load(); got != want {
				t.Errorf("%d connections for 2 requests, want %d", got, want)
			}
		})
	}
}

// readUntil reads body until it has seen want, and no further.
func readUntil(t *testing.T, body io.Reader, want string) {
	t.Helper()
	var got []byte
	b := make([]byte, 1)
	for !strings.HasSuffix(string(got), want) {
		if _, err := body.Read(b); err != nil {
			t.Fatalf("reading %q: got %q, %v", want, got, err)
		}
		got = append(got, b[0])
	}
}

// TestH1LeaveTail: a body left before its end (the response event in
// hand, the stream's end still to come) gives its connection to the next
// request, which skips the rest first.
func TestH1LeaveTail(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, head, rest string }{
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nevent%d\r\n", "5\r\nextra\r\n0\r\n\r\n"},
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nevent%d", "extra"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var requests atomic.Int32
			srv := startRaw(t, func(string, int) string {
				return fmt.Sprintf(tc.head, requests.Add(1)) + pause + tc.rest
			})
			p := testPool(t, srv.url(), 1)
			for i := 1; i <= 3; i++ {
				resp, err := p.do(context.Background(), http.MethodPost, testHeader, []byte(`{}`), false)
				if err != nil {
					t.Fatal(err)
				}
				readUntil(t, resp.body, fmt.Sprintf("event%d", i))
				if !resp.body.(*h1Body).leave() {
					t.Fatal("leave refused the body")
				}
			}
			if got := srv.accepted.Load(); got != 1 {
				t.Errorf("%d connections for 3 requests, want 1", got)
			}
		})
	}
}

// TestH1LeaveTailThenHangUp: a backend that ends the stream and then
// closes the connection (as one that is killed does) must not make the
// next request fail on it.
func TestH1LeaveTailThenHangUp(t *testing.T) {
	t.Parallel()
	srv := startRaw(t, func(string, int) string {
		return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nevent\r\n" + pause + "0\r\n\r\n" + hangUp
	})
	p := testPool(t, srv.url(), 1)
	for range 2 {
		resp, err := p.do(context.Background(), http.MethodPost, testHeader, []byte(`{}`), false)
		if err != nil {
			t.Fatal(err)
		}
		readUntil(t, resp.body, "event")
		resp.body.(*h1Body).leave()
		testfix.Eventually(t, "the hang-up", func() bool { return srv.open.Load() == 0 })
	}
	if got := srv.accepted.Load(); got != 2 {
		t.Errorf("%d connections, want 2", got)
	}
}

// TestH1LeaveTailNeverEnds: a backend that keeps the stream open after
// the response costs one connection, then bodies are drained instead.
func TestH1LeaveTailNeverEnds(t *testing.T) {
	t.Parallel()
	srv := startRaw(t, func(string, int) string {
		return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nevent\r\n"
	})
	p := testPool(t, srv.url(), 2)
	resp, err := p.do(context.Background(), http.MethodPost, testHeader, []byte(`{}`), false)
	if err != nil {
		t.Fatal(err)
	}
	readUntil(t, resp.body, "event")
	if !resp.body.(*h1Body).leave() {
		t.Fatal("leave refused a chunked body")
	}
	resp, err = p.do(context.Background(), http.MethodPost, testHeader, []byte(`{}`), false)
	if err != nil {
		t.Fatalf("next request after a tail that never ends: %v", err)
	}
	readUntil(t, resp.body, "event")
	if resp.body.(*h1Body).leave() {
		t.Error("leave accepted a body after the backend was seen never to end its streams")
	}
	resp.body.Close()
	if got := srv.accepted.Load(); got != 2 {
		t.Errorf("%d connections, want 2", got)
	}
}

func TestH1Head(t *testing.T) {
	t.Parallel()
	srv := startRaw(t, func(string, int) string {
		return "HTTP/1.1 202 Accepted\r\ncontent-type: Text/Event-Stream; charset=utf-8\r\nMCP-Session-ID: abc\r\nContent-Length: 0\r\n\r\n"
	})
	p := testPool(t, srv.url(), 1)
	resp, _, err := fetch(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if resp.status != 202 || resp.mediaType != "text/event-stream" || resp.sessionID != "abc" || resp.contentLength != 0 {
		t.Errorf("got %+v", resp)
	}
}

func TestH1Malformed(t *testing.T) {
	t.Parallel()
	for _, reply := range []string{
		"HTTP/2 200 OK\r\n\r\n",
		"HTTP/1.1 2x0 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		"HTTP/1.1 200 OK\r\n folded: header\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", maxHeaderBytes) + "\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab" + hangUp,
	} {
		srv := startRaw(t, func(_ string, n int) string {
			if n > 0 {
				return ""
			}
			return reply
		})
		p := testPool(t, srv.url(), 1)
		resp, err := p.do(context.Background(), http.MethodPost, testHeader, nil, false)
		if err == nil {
			_, err = io.ReadAll(resp.body)
			resp.body.Close()
		}
		if err == nil {
			t.Errorf("reply %.40q: no error", reply)
		}
	}
}

// TestH1PoolBound checks the pool's promise: never more sockets than its
// size, however many callers, and every caller served.
func TestH1PoolBound(t *testing.T) {
	t.Parallel()
	const max, callers = 3, 40
	srv := startRaw(t, func(string, int) string {
		time.Sleep(time.Millisecond)
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	})
	p := testPool(t, srv.url(), max)
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			for range 5 {
				if _, got, err := fetch(context.Background(), p); err != nil || got != "ok" {
					errs <- fmt.Errorf("got %q, %v", got, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := srv.maxOpen.Load(); got > max {
		t.Errorf("%d connections open at once, want at most %d", got, max)
	}
}

// TestH1StaleIdleConnection: a server that closes an idle connection must
// not make the next request fail.
func TestH1StaleIdleConnection(t *testing.T) {
	t.Parallel()
	srv := startRaw(t, func(string, int) string {
		// Answer, then hang up without saying so, as a server's idle
		// timeout does.
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + hangUp
	})
	p := testPool(t, srv.url(), 1)
	if _, _, err := fetch(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	c := p.idle[0]
	p.mu.Unlock()
	testfix.Eventually(t, "the server's FIN", func() bool { return !c.peek.alive() })
	if _, got, err := fetch(context.Background(), p); err != nil || got != "ok" {
		t.Fatalf("after the server closed the idle connection: %q, %v", got, err)
	}
	if got := srv.accepted.Load(); got != 2 {
		t.Errorf("%d connections, want 2", got)
	}
}

func TestH1ContextCancel(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var requests atomic.Int32
	srv := startRaw(t, func(string, int) string {
		if requests.Add(1) == 1 {
			<-release
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	})
	defer close(release)
	p := testPool(t, srv.url(), 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(20 * time.Millisecond)
		cancel()
	}()
	if _, _, err := fetch(ctx, p); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	// The slot came back: the pool of one can serve again.
	if _, got, err := fetch(context.Background(), p); err != nil || got != "ok" {
		t.Fatalf("after a cancelled request: %q, %v", got, err)
	}
}

func TestH1WaiterCancel(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := startRaw(t, func(string, int) string {
		<-release
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	})
	p := testPool(t, srv.url(), 1)
	done := make(chan error, 1)
	go func() { _, _, err := fetch(context.Background(), p); done <- err }()
	testfix.Eventually(t, "the first request to take the only socket", func() bool { return srv.accepted.Load() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, _, err := fetch(ctx, p); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting caller: err = %v, want DeadlineExceeded", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, got, err := fetch(context.Background(), p); err != nil || got != "ok" {
		t.Fatalf("after a cancelled waiter: %q, %v", got, err)
	}
}

func TestH1IdleTimeout(t *testing.T) {
	t.Parallel()
	srv := startRaw(t, func(string, int) string { return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" })
	u, _ := url.Parse(srv.url())
	p := newH1Pool(u, 2, 20*time.Millisecond, nil)
	defer p.closeIdle()
	if _, _, err := fetch(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	testfix.Eventually(t, "the idle connection to be closed", func() bool { return srv.open.Load() == 0 })
	// The pool frees the slot once Close has returned, which may be just
	// after the server saw the connection end.
	testfix.Eventually(t, "the pool to free the slot", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.open == 0 && len(p.idle) == 0
	})
}

func TestH1TLS(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"got":%s}`, b)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL + "/mcp")
	p := newH1Pool(u, 2, time.Minute, srv.Client().Transport.(*http.Transport).TLSClientConfig)
	defer p.closeIdle()
	for range 2 {
		_, got, err := fetch(context.Background(), p)
		if err != nil || got != `{"got":{}}` {
			t.Fatalf("got %q, %v", got, err)
		}
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
	x := NewStreamableHTTP(HTTPOptions{Name: "files", URL: "http://127.0.0.1:1/mcp", Headers: map[string]string{"X-Api-Key": "k\r\nEvil: 1"}})
	_, _, err := x.Connect(context.Background(), ConnectOptions{})
	if err == nil || !strings.Contains(err.Error(), "invalid header") || strings.Contains(err.Error(), "Evil") {
		t.Fatalf("err = %v, want an invalid-header error without the value", err)
	}
}

// BenchmarkHTTPCall compares vmcp's HTTP/1.1 client with net/http's
// Transport on the same tools/call exchange with a minimal server, so the
// figures are mostly the client's.
func BenchmarkHTTPCall(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write([]byte("event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"hello\"}]}}\n\n"))
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name string
		std  bool
	}{{"h1", false}, {"net-http", true}} {
		b.Run(tc.name, func(b *testing.B) {
			x := NewStreamableHTTP(HTTPOptions{Name: "b", URL: srv.URL + "/mcp"}).(*streamableConnector)
			defer x.Close()
			if tc.std {
				x.s.rt = stdTransport{x.s}
			}
			c := newClient("b", 0, x.s.log, nil)
			h := &httpConn{c: c, s: x.s, sid: "s"}
			c.conn = h
			h.negotiated(LatestProtocolVersion)
			params := json.RawMessage(`{"name":"echo","arguments":{"text":"hello"}}`)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Call(context.Background(), "tools/call", params); err != nil {
					b.Fatal(err)
				}
				c.nextID.Store(0)
			}
		})
	}
}

// TestStreamableThroughNetHTTP runs a session over net/http's Transport,
// the path taken for backends behind a proxy.
func TestStreamableThroughNetHTTP(t *testing.T) {
	t.Parallel()
	for _, mode := range []httpMode{modeSSEResponses, modeJSONResponses} {
		f := startHTTP(t, mode)
		x := NewStreamableHTTP(HTTPOptions{Name: "files", URL: f.url(), Headers: map[string]string{"X-Api-Key": "k1"}}).(*streamableConnector)
		x.s.rt = stdTransport{x.s}
		c, _ := connect(t, x, ConnectOptions{Handler: newRecorder()})
		for _, want := range []string{"1", "2"} {
			if got := mustCall(t, c, "count", nil); got != want {
				t.Errorf("mode %d: count = %s, want %s", mode, got, want)
			}
		}
		if _, ok := f.apiKeys.Load("k1"); !ok {
			t.Errorf("mode %d: the static header did not reach the backend", mode)
		}
		c.Close()
		if f.deletes.Load() != 1 {
			t.Errorf("mode %d: %d DELETEs, want 1", mode, f.deletes.Load())
		}
		x.Close()
	}
}
