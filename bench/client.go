package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// protocolVersion is the MCP version the generator speaks: a legacy-era
// version with protocol sessions, which both vmcp and the go-sdk backends
// accept.
const protocolVersion = "2025-06-18"

// maxResponseBytes caps one response body; echo answers are tiny, so a
// larger one is a bug worth an error rather than a memory spike.
const maxResponseBytes = 1 << 20

// errRPC marks a JSON-RPC error answer or a tool result with isError set.
var errRPC = errors.New("json-rpc error")

// mcpClient is a lean Streamable HTTP MCP client: requests are built by
// hand, responses are decoded only as far as needed to check them. It is
// safe for concurrent use; its sessions are not (one goroutine each).
type mcpClient struct {
	url string
	hc  *http.Client
	tr  *http.Transport
	// listen makes initialize open each session's standalone GET stream.
	listen bool
	// auth, if set, is the Authorization header of every request; auths,
	// if set, gives session i its own (openSessions), as separate users
	// have separate tokens. Never printed.
	auth  string
	auths []string
}

// newMCPClient returns a client whose keep-alive pool holds conns idle
// connections, so that a run with conns concurrent sessions reuses sockets
// instead of dialing. Close releases the pool.
func newMCPClient(url string, conns int) *mcpClient {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns + 4,
		MaxIdleConnsPerHost: conns + 4,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &mcpClient{url: url, tr: tr, hc: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
}

// Close drops the client's idle connections.
func (c *mcpClient) Close() { c.tr.CloseIdleConnections() }

// mcpSession is one MCP session. Its methods must not be called
// concurrently.
type mcpSession struct {
	c      *mcpClient
	id     string // Mcp-Session-Id; never printed
	nextID int64
	auth   string // Authorization header value, "" for none; never printed
	buf    []byte // request body scratch
	// initResult is the result of the session's initialize.
	initResult []byte
	// stopListen ends the standalone GET stream, if one was opened; it
	// returns once the stream's goroutine has.
	stopListen func()
}

// initialize opens a session: initialize, then notifications/initialized.
// It returns the time the initialize request took (the handshake a client
// waits for), not counting the notification.
func (c *mcpClient) initialize(ctx context.Context) (*mcpSession, time.Duration, error) {
	return c.initializeAs(ctx, c.auth)
}

// initializeAs is initialize for a session whose requests carry the
// Authorization header auth.
func (c *mcpClient) initializeAs(ctx context.Context, auth string) (*mcpSession, time.Duration, error) {
	s := &mcpSession{c: c, buf: make([]byte, 0, 512), auth: auth}
	body := []byte(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"` + protocolVersion +
		`","capabilities":{},"clientInfo":{"name":"vmcpbench","version":"1"}}}`)
	start := time.Now()
	res, hdr, err := s.post(ctx, body, 0)
	took := time.Since(start)
	if err != nil {
		return nil, took, fmt.Errorf("initialize: %w", err)
	}
	s.id, s.initResult = hdr.Get("Mcp-Session-Id"), res
	if s.id == "" {
		return nil, took, errors.New("initialize: no Mcp-Session-Id in the response")
	}
	if !bytes.Contains(res, []byte(`"protocolVersion"`)) {
		return nil, took, errors.New("initialize: result has no protocolVersion")
	}
	if _, _, err := s.post(ctx, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`), -1); err != nil {
		return nil, took, fmt.Errorf("notifications/initialized: %w", err)
	}
	if c.listen {
		if err := s.listen(ctx); err != nil {
			return nil, took, err
		}
	}
	return s, took, nil
}

// call sends one request with the given params (raw JSON) and returns the
// raw result.
func (s *mcpSession) call(ctx context.Context, method string, params []byte) ([]byte, error) {
	s.nextID++
	b := append(s.buf[:0], `{"jsonrpc":"2.0","id":`...)
	b = strconv.AppendInt(b, s.nextID, 10)
	b = append(b, `,"method":"`...)
	b = append(b, method...)
	b = append(b, `","params":`...)
	b = append(b, params...)
	b = append(b, '}')
	s.buf = b
	res, _, err := s.post(ctx, b, s.nextID)
	return res, err
}

// echo calls the echo tool named tool with text and checks that the text
// came back.
func (s *mcpSession) echo(ctx context.Context, tool, text string) error {
	p := make([]byte, 0, 96)
	p = append(p, `{"name":`...)
	p = strconv.AppendQuote(p, tool)
	p = append(p, `,"arguments":{"text":`...)
	p = strconv.AppendQuote(p, text)
	p = append(p, `}}`...)
	res, err := s.call(ctx, "tools/call", p)
	if err != nil {
		return err
	}
	if bytes.Contains(res, []byte(`"isError":true`)) {
		return fmt.Errorf("%w: tool %s returned isError", errRPC, tool)
	}
	if !bytes.Contains(res, []byte(text)) {
		return fmt.Errorf("tool %s: the echoed text is missing from the result", tool)
	}
	return nil
}

// toolNames lists the session's tools (first page only, which is enough
// for the example servers).
func (s *mcpSession) toolNames(ctx context.Context) ([]string, error) {
	res, err := s.call(ctx, "tools/list", []byte(`{}`))
	if err != nil {
		return nil, err
	}
	var r struct {
		Tools []struct {
			Name string `json:"name"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		return nil, fmt.Errorf("tools/list: %w", err)
	}
	names := make([]string, len(r.Tools))
	for i, t := range r.Tools {
		names[i] = t.Name
	}
	return names, nil
}

// listen opens the session's standalone GET stream, as the go-sdk and
// TypeScript SDK clients do after initialize, and reads it (discarding
// whatever comes) until the server ends it or close stops it. It returns
// once the server has answered the GET: a 405 (no standalone stream on
// offer) is not an error.
func (s *mcpSession) listen(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.c.url, nil)
	if err != nil {
		cancel()
		return err
	}
	req.Header["Accept"] = []string{"text/event-stream"}
	req.Header["Mcp-Session-Id"] = []string{s.id}
	req.Header["Mcp-Protocol-Version"] = []string{protocolVersion}
	if s.auth != "" {
		req.Header["Authorization"] = []string{s.auth}
	}
	// Not s.c.hc: its timeout would end the stream after a minute.
	resp, err := s.c.tr.RoundTrip(req)
	if err != nil {
		cancel()
		return fmt.Errorf("GET: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		if resp.StatusCode == http.StatusMethodNotAllowed {
			return nil
		}
		return fmt.Errorf("GET: HTTP %d", resp.StatusCode)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}()
	s.stopListen = func() { cancel(); <-done }
	return nil
}

// close ends the session with DELETE, then its standalone stream.
func (s *mcpSession) close(ctx context.Context) error {
	if s.stopListen != nil {
		defer s.stopListen()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, s.c.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Mcp-Session-Id", s.id)
	req.Header.Set("Mcp-Protocol-Version", protocolVersion)
	if s.auth != "" {
		req.Header.Set("Authorization", s.auth)
	}
	resp, err := s.c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("DELETE: %w", err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("DELETE: HTTP %d", resp.StatusCode)
	}
	return nil
}

// post sends one JSON-RPC message. For a request (id >= 0) it returns the
// result of the response with that id; for a notification (id < 0) it
// expects 202 and returns nothing.
func (s *mcpSession) post(ctx context.Context, body []byte, id int64) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.c.url, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	h := req.Header
	h["Content-Type"] = []string{"application/json"}
	h["Accept"] = []string{"application/json, text/event-stream"}
	if s.id != "" {
		h["Mcp-Session-Id"] = []string{s.id}
		h["Mcp-Protocol-Version"] = []string{protocolVersion}
	}
	if s.auth != "" {
		h["Authorization"] = []string{s.auth}
	}
	resp, err := s.c.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if id < 0 {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
		if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
			return nil, nil, fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		return nil, resp.Header, nil
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	var msg []byte
	switch mt {
	case "application/json":
		msg, err = io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	case "text/event-stream":
		msg, err = readSSEResponse(resp.Body, id)
		if err == nil {
			// Read the stream to its end (servers end it right after the
			// response): net/http reuses a connection only when its body
			// was read to EOF, and without this every call opened a new
			// TCP connection, to vmcp and to the backend alike.
			_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
		}
	default:
		return nil, nil, fmt.Errorf("unexpected Content-Type %q", mt)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading response: %w", err)
	}
	res, err := resultOf(msg, id)
	return res, resp.Header, err
}

// resultOf checks that msg answers request id and returns its result.
func resultOf(msg []byte, id int64) ([]byte, error) {
	var r struct {
		ID     json.RawMessage `json:"id"`
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg, &r); err != nil {
		return nil, fmt.Errorf("decoding response: %w", err)
	}
	if r.Error != nil {
		return nil, fmt.Errorf("%w %d: %s", errRPC, r.Error.Code, r.Error.Message)
	}
	if string(r.ID) != strconv.FormatInt(id, 10) {
		return nil, fmt.Errorf("response id %s does not match request id %d", r.ID, id)
	}
	if r.Result == nil {
		return nil, errors.New("response has neither result nor error")
	}
	return r.Result, nil
}

// readSSEResponse reads events until the JSON-RPC response to id, skipping
// notifications and requests that come before it. Event data spanning
// several data: lines is joined with newlines, as the SSE spec says.
func readSSEResponse(body io.Reader, id int64) ([]byte, error) {
	sc := bufio.NewScanner(io.LimitReader(body, maxResponseBytes))
	sc.Buffer(make([]byte, 0, 4096), maxResponseBytes)
	want := []byte(`"id":` + strconv.FormatInt(id, 10))
	var data []byte
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0: // end of event
			if len(data) > 0 && isResponse(data, want) {
				return data, nil
			}
			data = data[:0]
		case bytes.HasPrefix(line, []byte("data:")):
			v := bytes.TrimPrefix(line[5:], []byte(" "))
			if len(data) > 0 {
				data = append(data, '\n')
			}
			data = append(data, v...)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(data) > 0 && isResponse(data, want) {
		return data, nil
	}
	return nil, errors.New("event stream ended without a response")
}

// isResponse is a cheap filter: a response carries our id and a result or
// an error; resultOf does the real check.
func isResponse(data, id []byte) bool {
	return bytes.Contains(data, id) && (bytes.Contains(data, []byte(`"result"`)) || bytes.Contains(data, []byte(`"error"`)))
}

// counter hands out distinct echo texts, so a proxy that mixed up
// responses would be caught.
type counter struct{ n atomic.Int64 }

func (c *counter) text() string { return "bench-" + strconv.FormatInt(c.n.Add(1), 10) }
