package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestMain lets the test binary double as the null server and the null
// proxy, as the bench binary does.
func TestMain(m *testing.M) {
	if code, ok := runHelper(); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// TestQuickS1 runs the S1 smoke scenario against real vmcp and backend
// processes, with the generator holding each session's standalone GET
// stream open (-standalone-get), so that path is covered too. It checks
// only that every call succeeded and the table came out, never how fast
// anything was.
func TestQuickS1(t *testing.T) {
	r := quickRun(t, 2*time.Minute, true, "S1")
	for _, mode := range []string{"direct", "vmcp"} {
		res, ok := r.throughput["S1/"+mode]
		if !ok {
			t.Fatalf("no S1 %s result", mode)
		}
		if res.errors != 0 || res.calls != sizesFor(true).s1 {
			t.Errorf("S1 %s: %d errors in %d calls (%q); want 0 in %d", mode, res.errors, res.calls, res.errSamples, sizesFor(true).s1)
		}
		if res.p50 <= 0 || res.rate() <= 0 {
			t.Errorf("S1 %s: no latency or rate measured", mode)
		}
	}
	via, direct := r.throughput["S1/vmcp"], r.throughput["S1/direct"]
	wantInReport(t, r, "| S1 | direct |", "| S1 | vmcp |", "S1: vmcp", "vmcp's GOMAXPROCS, from its /metrics: ",
		"| S1: vmcp calls/s ÷ direct | 0.82× | "+fmtRatio(ratio(via.rate(), direct.rate()))+" | ≥ 0.80× |",
		"| S64: vmcp calls/s ÷ direct | 0.85× | not run |")
	for _, p := range []*proc{r.echo.vmcp.proc, r.echo.backend.proc} {
		if !p.exited() {
			t.Errorf("%s (pid %d) still running after run returned", p.name, p.pid())
		}
	}
}

// quickRun runs scenarios with -quick against real processes (skipped
// with -short), failing the test if the run fails or reports a problem.
func quickRun(t *testing.T, limit time.Duration, listen bool, scenarios ...string) *runner {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs vmcp and backends; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	root, err := moduleRoot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	o := options{scenarios: scenarios, quick: true, listen: listen, pool: 64, logLevel: "warn", settle: time.Second, profileSeconds: 1}
	r, err := run(ctx, root, o, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range r.rep.notes {
		t.Errorf("problem reported: %s", n)
	}
	return r
}

// wantInReport checks that the report contains every string in wants.
func wantInReport(t *testing.T, r *runner, wants ...string) {
	t.Helper()
	body := r.rep.body()
	for _, want := range wants {
		if !strings.Contains(body, want) {
			t.Errorf("report lacks %q:\n%s", want, body)
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestReadSSEResponse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, stream string
		id           int64
		want         string
		wantErr      bool
	}{
		{"single event", "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}\n\n", 3, `{"jsonrpc":"2.0","id":3,"result":{}}`, false},
		{"notification first", "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\nid: 7\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n", 1, `{"jsonrpc":"2.0","id":1,"result":{}}`, false},
		{"data split over lines", "data: {\"jsonrpc\":\"2.0\",\ndata: \"id\":2,\"result\":{}}\n\n", 2, "{\"jsonrpc\":\"2.0\",\n\"id\":2,\"result\":{}}", false},
		{"no blank line at end", "data: {\"id\":4,\"error\":{\"code\":1,\"message\":\"x\"}}", 4, `{"id":4,"error":{"code":1,"message":"x"}}`, false},
		{"stream ends early", "data: {\"jsonrpc\":\"2.0\",\"method\":\"ping\"}\n\n", 1, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := readSSEResponse(strings.NewReader(tt.stream), tt.id)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if string(got) != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestResultOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, msg string
		id        int64
		want      string
		rpcErr    bool
		anyErr    bool
	}{
		{"result", `{"jsonrpc":"2.0","id":5,"result":{"ok":true}}`, 5, `{"ok":true}`, false, false},
		{"json-rpc error", `{"jsonrpc":"2.0","id":5,"error":{"code":-32601,"message":"no"}}`, 5, "", true, true},
		{"wrong id", `{"jsonrpc":"2.0","id":6,"result":{}}`, 5, "", false, true},
		{"neither", `{"jsonrpc":"2.0","id":5}`, 5, "", false, true},
		{"not json", `nope`, 5, "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := resultOf([]byte(tt.msg), tt.id)
			if (err != nil) != tt.anyErr || errors.Is(err, errRPC) != tt.rpcErr {
				t.Fatalf("err = %v; want error %v, json-rpc error %v", err, tt.anyErr, tt.rpcErr)
			}
			if string(got) != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestVMCPConfigYAML(t *testing.T) {
	t.Parallel()
	c := &vmcpConfig{maxSessions: 5000, initConcurrency: 20, pprof: true}
	c.add("b0", "http://127.0.0.1:1234/mcp")
	got := c.yaml()
	for _, want := range []string{"  - name: b0\n    transport: streamable-http\n    url: http://127.0.0.1:1234/mcp\n",
		"  maxSessions: 5000\n", "  backendInitConcurrency: 20\n", "server:\n  pprof: true\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("config lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains((&vmcpConfig{}).yaml(), "pprof") {
		t.Error("pprof set without being asked for")
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	if got := percentile(d, 0.5); got != 50 {
		t.Errorf("p50 = %d, want 50", got)
	}
	if got := percentile(d, 0.99); got != 99 {
		t.Errorf("p99 = %d, want 99", got)
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("p50 of nothing = %d, want 0", got)
	}
}

// TestEstablishedTo opens real loopback connections from this process and
// checks that each is counted once, against the right port.
func TestEstablishedTo(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	const n = 5
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	// The server's accepted ends belong to this process too, but their
	// remote port is the client's: only the n client ends count.
	got, err := establishedTo(os.Getpid(), []int{port, 1})
	if err != nil {
		t.Fatal(err)
	}
	if got[port] != n || got[1] != 0 {
		t.Errorf("establishedTo = %v, want %d to port %d", got, n, port)
	}
}

// TestGeneratorReusesConnections: a closed loop must not open a TCP
// connection per call, or it measures connection setup, not the server.
func TestGeneratorReusesConnections(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	echoed := regexp.MustCompile(`bench-[0-9]+`)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req struct {
			ID json.RawMessage `json:"id"`
		}
		_ = json.Unmarshal(body, &req)
		if req.ID == nil {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		w.Header().Set("Mcp-Session-Id", "s1")
		w.Header().Set("Content-Type", "text/event-stream")
		result := `{"protocolVersion":"2025-06-18"}`
		if text := echoed.Find(body); text != nil {
			result = `{"content":[{"type":"text","text":` + strconv.Quote(string(text)) + `}]}`
		}
		fmt.Fprintf(w, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":%s}\n\n", req.ID, result)
		// The stream ends a moment after the response, as go-sdk's does.
		http.NewResponseController(w).Flush()
		time.Sleep(5 * time.Millisecond)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := newMCPClient(srv.URL, 1)
	defer c.Close()
	ctx := context.Background()
	s, _, err := c.initialize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	texts := &counter{}
	for range 5 {
		if err := s.echo(ctx, "echo", texts.text()); err != nil {
			t.Fatal(err)
		}
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("%d connections for 7 requests, want 1", got)
	}
}
