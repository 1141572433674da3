package h1server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// rig is a Server on a loopback listener, shut down at test end.
type rig struct {
	srv     *Server
	addr    string
	accepts atomic.Int32
}

type countingListener struct {
	net.Listener
	n *atomic.Int32
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func start(t *testing.T, h http.Handler) *rig {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{addr: ln.Addr().String()}
	r.srv = &Server{Fallback: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 16 << 10}, Path: "/mcp"}
	served := make(chan error, 1)
	go func() { served <- r.srv.Serve(countingListener{ln, &r.accepts}) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return r
}

// echo answers with which path served the request (net/http puts its
// server in the request context; the fast path does not) and the body.
func echo(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	via := "fast"
	if r.Context().Value(http.ServerContextKey) != nil {
		via = "fallback"
	}
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "%s %s %s %s", via, r.Method, r.Host, b)
}

func dial(t *testing.T, r *rig) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

func readResponse(t *testing.T, br *bufio.Reader) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	resp.Body.Close()
	return resp, string(b)
}

func TestPOSTsShareOneConnectionOnTheFastPath(t *testing.T) {
	t.Parallel()
	r := start(t, http.HandlerFunc(echo))
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	for i := range 50 {
		body := fmt.Sprintf(`{"n":%d}`, i)
		resp, err := client.Post("http://"+r.addr+"/mcp", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := "fast POST " + r.addr + " " + body; string(b) != want {
			t.Fatalf("request %d answered %q, want %q", i, b, want)
		}
		if resp.ContentLength != int64(len(b)) || resp.Header.Get("Date") == "" {
			t.Fatalf("request %d: Content-Length %d for %d bytes, Date %q", i, resp.ContentLength, len(b), resp.Header.Get("Date"))
		}
	}
	if n := r.accepts.Load(); n != 1 {
		t.Errorf("50 keep-alive requests used %d connections, want 1", n)
	}
}

func TestUnusualRequestsGoToNetHTTP(t *testing.T) {
	t.Parallel()
	r := start(t, http.HandlerFunc(echo))
	big := strings.Repeat("x", 6000)
	huge := strings.Repeat("x", 20<<10)
	tests := []struct {
		name, req  string
		status     int
		bodyPrefix string
	}{
		{"plain POST", "POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi", 200, "fast POST h hi"},
		{"header names in any case", "POST /mcp HTTP/1.1\r\nhOST: h\r\ncontent-length: 2\r\n\r\nhi", 200, "fast POST h hi"},
		{"GET", "GET /mcp HTTP/1.1\r\nHost: h\r\n\r\n", 200, "fallback GET"},
		{"other path", "POST /other HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi", 200, "fallback POST h hi"},
		{"query string", "POST /mcp?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi", 200, "fallback POST h hi"},
		{"chunked body", "POST /mcp HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", 200, "fallback POST h hi"},
		{"expect continue", "POST /mcp HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi", 200, "fallback POST h hi"},
		{"HTTP/1.0", "POST /mcp HTTP/1.0\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi", 200, "fallback POST h hi"},
		{"head larger than the buffer", "POST /mcp HTTP/1.1\r\nHost: h\r\nX-Big: " + big + "\r\nContent-Length: 2\r\n\r\nhi", 200, "fallback POST h hi"},
		{"no Host", "POST /mcp HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi", 400, ""},
		{"bad header name", "POST /mcp HTTP/1.1\r\nHost: h\r\nBad Name: x\r\nContent-Length: 2\r\n\r\nhi", 400, ""},
		{"two Content-Lengths", "POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi", 400, ""},
		{"bare LF", "POST /mcp HTTP/1.1\nHost: h\nContent-Length: 2\n\nhi", 200, "fallback POST h hi"},
		{"head over MaxHeaderBytes", "POST /mcp HTTP/1.1\r\nHost: h\r\nX-Big: " + huge + "\r\nContent-Length: 2\r\n\r\nhi", 431, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, br := dial(t, r)
			if _, err := io.WriteString(c, tt.req); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(br, nil)
			for err == nil && resp.StatusCode == http.StatusContinue {
				resp, err = http.ReadResponse(br, nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			// net/http may reset a connection it refused before reading
			// all of it: an error answer's body is not required.
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if body := string(b); resp.StatusCode != tt.status || !strings.HasPrefix(body, tt.bodyPrefix) {
				t.Errorf("answered %d %q, want %d %q…", resp.StatusCode, body, tt.status, tt.bodyPrefix)
			}
		})
	}
}

func TestPipelinedRequestsKeepTheirOrderAcrossTheHandoff(t *testing.T) {
	t.Parallel()
	r := start(t, http.HandlerFunc(echo))
	c, br := dial(t, r)
	post := func(b string) string {
		return fmt.Sprintf("POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%s", len(b), b)
	}
	io.WriteString(c, post("one")+post("two")+"GET /mcp HTTP/1.1\r\nHost: h\r\n\r\n"+post("four"))
	for _, want := range []string{"fast POST h one", "fast POST h two", "fallback GET h ", "fallback POST h four"} {
		if _, body := readResponse(t, br); body != want {
			t.Fatalf("answered %q, want %q", body, want)
		}
	}
}

func TestStreamingResponseIsChunkedAndFlushed(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	r := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: a\n\n")
		http.NewResponseController(w).Flush()
		<-release
		io.WriteString(w, "data: b\n\n")
	}))
	c, br := dial(t, r)
	io.WriteString(c, "POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("Transfer-Encoding %v, want chunked", resp.TransferEncoding)
	}
	first := make([]byte, len("data: a\n\n"))
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "data: a\n\n" {
		t.Fatalf("first event %q (%v) before the handler went on", first, err)
	}
	close(release)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "data: b\n\n" {
		t.Fatalf("rest %q (%v)", rest, err)
	}
}

func TestClientGoneEndsAStreamingRequest(t *testing.T) {
	t.Parallel()
	cancelled := make(chan struct{})
	r := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "data: a\n\n")
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
		close(cancelled)
	}))
	c, br := dial(t, r)
	io.WriteString(c, "POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")
	if _, err := http.ReadResponse(br, nil); err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the request's context was not cancelled when the client left")
	}
}

func TestResponseFraming(t *testing.T) {
	t.Parallel()
	r := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch string(must(io.ReadAll(r.Body))) {
		case "204":
			w.WriteHeader(http.StatusNoContent)
		case "202":
			w.WriteHeader(http.StatusAccepted)
		case "inject":
			w.Header().Set("X-Id", "a\r\nSet-Cookie: evil=1")
			io.WriteString(w, "ok")
		case "sniff":
			io.WriteString(w, "<html><body>x</body></html>")
		case "flushed 204":
			w.WriteHeader(http.StatusNoContent)
			http.NewResponseController(w).Flush()
		}
	}))
	tests := []struct {
		body   string
		status int
		check  func(*http.Response, string) error
	}{
		{"204", 204, func(resp *http.Response, body string) error {
			if _, ok := resp.Header["Content-Length"]; ok || body != "" {
				return fmt.Errorf("204 with Content-Length %v and body %q", resp.Header["Content-Length"], body)
			}
			return nil
		}},
		{"202", 202, func(resp *http.Response, body string) error {
			if resp.Header.Get("Content-Length") != "0" {
				return fmt.Errorf("202 Content-Length %q, want 0", resp.Header.Get("Content-Length"))
			}
			return nil
		}},
		{"inject", 200, func(resp *http.Response, body string) error {
			if resp.Header.Get("Set-Cookie") != "" || body != "ok" {
				return fmt.Errorf("a CR LF in a header value split the response: %v", resp.Header)
			}
			return nil
		}},
		{"flushed 204", 204, func(resp *http.Response, body string) error {
			if len(resp.TransferEncoding) > 0 || body != "" {
				return fmt.Errorf("a flushed 204 came with Transfer-Encoding %v and body %q", resp.TransferEncoding, body)
			}
			return nil
		}},
		{"sniff", 200, func(resp *http.Response, body string) error {
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				return fmt.Errorf("Content-Type %q, want it sniffed as text/html", ct)
			}
			return nil
		}},
	}
	c, br := dial(t, r)
	for _, tt := range tests {
		fmt.Fprintf(c, "POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%s", len(tt.body), tt.body)
		resp, body := readResponse(t, br)
		if resp.StatusCode != tt.status {
			t.Errorf("%s: status %d", tt.body, resp.StatusCode)
		}
		if err := tt.check(resp, body); err != nil {
			t.Errorf("%s: %v", tt.body, err)
		}
	}
}

func must[T any](v T, _ error) T { return v }

func TestUnreadBodies(t *testing.T) {
	t.Parallel()
	// The handler reads nothing: a small body is drained and the
	// connection carries on; a large one closes it.
	r := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	c, br := dial(t, r)
	small := strings.Repeat("s", 1000)
	fmt.Fprintf(c, "POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%s", len(small), small)
	fmt.Fprintf(c, "POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi")
	for range 2 {
		if resp, body := readResponse(t, br); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("answered %d %q", resp.StatusCode, body)
		}
	}
	large := strings.Repeat("l", 300<<10)
	go fmt.Fprintf(c, "POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%s", len(large), large)
	resp, _ := readResponse(t, br)
	if !resp.Close {
		t.Error("a large unread body did not end the connection (no Connection: close)")
	}
	if _, err := br.ReadByte(); err == nil {
		t.Error("connection still open after a large unread body")
	}
}

func TestConnectionClose(t *testing.T) {
	t.Parallel()
	r := start(t, http.HandlerFunc(echo))
	c, br := dial(t, r)
	io.WriteString(c, "POST /mcp HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi")
	resp, body := readResponse(t, br)
	if !resp.Close || body != "fast POST h hi" {
		t.Fatalf("close=%v body %q", resp.Close, body)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after Connection: close, read %v, want EOF", err)
	}
}

func TestShutdownFinishesInFlightAndClosesIdle(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	r := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Slow") != "" {
			close(entered)
			<-release
		}
		io.WriteString(w, "done")
	}))
	idle, idleBR := dial(t, r)
	io.WriteString(idle, "POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")
	readResponse(t, idleBR)

	busy, busyBR := dial(t, r)
	io.WriteString(busy, "POST /mcp HTTP/1.1\r\nHost: h\r\nX-Slow: 1\r\nContent-Length: 0\r\n\r\n")
	<-entered
	shut := make(chan error, 1)
	go func() { shut <- r.srv.Shutdown(context.Background()) }()
	if _, err := idleBR.ReadByte(); err == nil {
		t.Error("idle connection still open after Shutdown")
	}
	close(release)
	resp, body := readResponse(t, busyBR)
	if body != "done" || !resp.Close {
		t.Errorf("in-flight request answered %q (close=%v), want done with Connection: close", body, resp.Close)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if _, err := net.Dial("tcp", r.addr); err == nil {
		t.Error("still accepting after Shutdown")
	}
}

func TestServeAfterShutdownReturnsAtOnce(t *testing.T) {
	t.Parallel()
	srv := &Server{Fallback: &http.Server{Handler: http.HandlerFunc(echo)}, Path: "/mcp"}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve after Shutdown = %v, want ErrServerClosed", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("the listener still accepts")
	}
}

func TestPanickingHandlerClosesOnlyItsConnection(t *testing.T) {
	t.Parallel()
	r := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Panic") != "" {
			panic("handler bug")
		}
		io.WriteString(w, "ok")
	}))
	c, br := dial(t, r)
	io.WriteString(c, "POST /mcp HTTP/1.1\r\nHost: h\r\nX-Panic: 1\r\nContent-Length: 0\r\n\r\n")
	if _, err := br.ReadByte(); err == nil {
		t.Error("the panicking request's connection got an answer; want it closed")
	}
	c2, br2 := dial(t, r)
	io.WriteString(c2, "POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")
	if resp, body := readResponse(t, br2); resp.StatusCode != 200 || body != "ok" {
		t.Errorf("after a panic elsewhere: %d %q", resp.StatusCode, body)
	}
}

// TestPooledBuffersKeepResponsesApart: response buffers move between
// connections through the server's pools, so many connections at once,
// with answers small, larger than the writer's buffer, and larger than
// what the pool keeps, must each get exactly their own answers.
func TestPooledBuffersKeepResponsesApart(t *testing.T) {
	t.Parallel()
	r := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		n := 0
		fmt.Sscanf(r.Header.Get("X-Size"), "%d", &n)
		w.Write(b)
		w.Write([]byte(strings.Repeat(string(b[len(b)-1]), n)))
	}))
	sizes := []int{10, 5000, 70 << 10, 0, 300}
	errs := make(chan error, 16)
	for i := range 16 {
		go func() {
			errs <- func() error {
				c, err := net.Dial("tcp", r.addr)
				if err != nil {
					return err
				}
				defer c.Close()
				br := bufio.NewReader(c)
				for j := range 30 {
					body := fmt.Sprintf("conn %d request %d %c", i, j, 'a'+rune(i))
					n := sizes[(i+j)%len(sizes)]
					fmt.Fprintf(c, "POST /mcp HTTP/1.1\r\nHost: h\r\nX-Size: %d\r\nContent-Length: %d\r\n\r\n%s", n, len(body), body)
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						return err
					}
					got, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil {
						return err
					}
					if want := body + strings.Repeat(string(body[len(body)-1]), n); string(got) != want {
						return fmt.Errorf("conn %d request %d: got %d bytes starting %q, want %d starting %q", i, j, len(got), got[:min(len(got), 40)], len(want), want[:min(len(want), 40)])
					}
				}
				return nil
			}()
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
