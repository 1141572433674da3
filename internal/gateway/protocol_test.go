package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
)

// protoRig is a gateway over the protocol backend ("p") and an example
// server ("ex"), prefixing names.
type protoRig struct {
	gw    *running
	proto *protoBackend
	ex    *fixture.Backend
}

func startProtoRig(t *testing.T) *protoRig {
	t.Helper()
	p := startProtoBackend(t, 0, 0)
	ex := fixture.StartHTTP(t, exampleserver.Options{Name: "ex"})
	cfg := baseConfig(
		config.Backend{Name: "p", Transport: config.TransportStreamableHTTP, URL: p.URL},
		config.Backend{Name: "ex", Transport: config.TransportStreamableHTTP, URL: ex.URL},
	)
	return &protoRig{gw: startGateway(t, cfg, gateway.Options{}), proto: p, ex: ex}
}

// connectWith opens a go-sdk client session with the given options and
// standalone SSE on, closed at test end.
func connectWith(t *testing.T, url string, opts *mcp.ClientOptions, roots ...*mcp.Root) *mcp.ClientSession {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "vmcp-test", Version: "1"}, opts)
	if len(roots) > 0 {
		c.AddRoots(roots...)
	}
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: url}, legacyEra)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func TestServerToClientRequestsAreRelayed(t *testing.T) {
	r := startProtoRig(t)
	var elicitations atomic.Int32
	cs := connectWith(t, r.gw.URL, &mcp.ClientOptions{
		CreateMessageHandler: func(_ context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Model: "m", Role: "assistant", Content: &mcp.TextContent{Text: "answer from client"}}, nil
		},
		ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			elicitations.Add(1)
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": "Ada"}}, nil
		},
	}, &mcp.Root{URI: "file:///work", Name: "work"})

	cases := map[string]string{
		"p_ask_sampling": "sampled: answer from client",
		"p_ask_elicit":   "elicited: accept Ada",
		"p_ask_roots":    "roots: 1 file:///work",
		"p_ping_client":  "pong",
	}
	for tool, want := range cases {
		if got := callText(t, cs, tool, nil); got != want {
			t.Errorf("%s = %q, want %q", tool, got, want)
		}
	}
	if elicitations.Load() != 1 {
		t.Errorf("client saw %d elicitations, want 1", elicitations.Load())
	}
}

func TestRequestsRefusedWithoutClientCapability(t *testing.T) {
	r := startProtoRig(t)
	cs := connect(t, r.gw.URL) // declares neither sampling nor elicitation
	for _, tool := range []string{"p_ask_sampling", "p_ask_elicit"} {
		got := callText(t, cs, tool, nil)
		if !strings.Contains(got, "error") {
			t.Errorf("%s without the client capability = %q, want an error result", tool, got)
		}
	}
}

func TestProgressIsPerSessionAndBeforeTheResponse(t *testing.T) {
	r := startProtoRig(t)
	// Two sessions use the same progress token at once. Read on the wire:
	// each stream carries exactly its own steps, all before its response.
	run := func(steps int) error {
		sid := rawInit(t, r.gw.URL)
		body := fmt.Sprintf(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"ex_progress","arguments":{"steps":%d},"_meta":{"progressToken":"same-token"}}}`, steps)
		_, data := sseEvents(t, ssePost(t, r.gw.URL, sid, body), steps+1)
		for i, d := range data[:steps] {
			if want := fmt.Sprintf(`"step %d of %d"`, i+1, steps); !strings.Contains(d, "notifications/progress") || !strings.Contains(d, want) {
				return fmt.Errorf("steps=%d: event %d = %s, want progress %s", steps, i, d, want)
			}
		}
		if last := data[steps]; !strings.Contains(last, `"id":3`) || !strings.Contains(last, `"result"`) {
			return fmt.Errorf("steps=%d: last event = %s, want the response", steps, last)
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() { errs[0] = run(3) })
	wg.Go(func() { errs[1] = run(5) })
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

func TestQuickAnswersArePlainJSONSlowOnesStream(t *testing.T) {
	r := startProtoRig(t)
	sid := rawInit(t, r.gw.URL)
	// A client accepting both gets plain JSON when the backend sent
	// nothing before the response, which is most calls.
	code, h, body := rawPost(t, r.gw.URL, sid, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"ex_echo","arguments":{"text":"quick"}}}`)
	if code != http.StatusOK || h.Get("Content-Type") != "application/json" {
		t.Fatalf("quick call: HTTP %d, Content-Type %q, want 200 application/json", code, h.Get("Content-Type"))
	}
	if !strings.Contains(body, `"id":2`) || !strings.Contains(body, "quick") {
		t.Fatalf("quick call answered %s", body)
	}
	// A call that outlasts the priming delay streams: the client gets a
	// resumable event ID before the response.
	resp := ssePost(t, r.gw.URL, sid, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"ex_sleep_ms","arguments":{"ms":300}}}`)
	ids, data := sseEvents(t, resp, 1)
	if !strings.Contains(data[0], `"id":3`) || ids[0] == "" {
		t.Fatalf("slow call: events %v %v, want the response with an event ID", ids, data)
	}
}

// alwaysStreaming starts a gateway over an example server ("ex") with
// server.sseResponses: always, and opens a session on it.
func alwaysStreaming(t *testing.T) (gw *running, sid string) {
	t.Helper()
	ex := fixture.StartHTTP(t, exampleserver.Options{Name: "ex"})
	cfg := baseConfig(config.Backend{Name: "ex", Transport: config.TransportStreamableHTTP, URL: ex.URL})
	cfg.Server.SSEResponses = config.SSEAlways
	gw = startGateway(t, cfg, gateway.Options{})
	return gw, rawInit(t, gw.URL)
}

func TestSSEResponsesAlwaysStreamsQuickAnswers(t *testing.T) {
	gw, sid := alwaysStreaming(t)
	resp := ssePost(t, gw.URL, sid, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"ex_echo","arguments":{"text":"quick"}}}`)
	ids, data := sseEvents(t, resp, 1)
	if !strings.Contains(data[0], "quick") || !strings.HasSuffix(ids[0], "-1") {
		t.Fatalf("events %v %v, want the response as event 1, after the priming event 0", ids, data)
	}
}

// With server.sseResponses: always, a 2026-07-28 request's answer with
// status 200 (a result or a JSON-RPC error) is an event stream too,
// whatever the method, for a client that accepts one; a JSON-only client,
// and a request refused with another status, get plain JSON.
func TestSSEResponsesAlwaysStreamsModernAnswers(t *testing.T) {
	gw, _ := alwaysStreaming(t)
	meta := map[string]any{"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": map[string]any{}}
	tests := []struct {
		name, method string
		params       map[string]any
		accept       string
		wantType     string
		wantStatus   int
		want         string
	}{
		{"discover", "server/discover", map[string]any{"_meta": meta}, "application/json, text/event-stream", "text/event-stream", 200, `"supportedVersions"`},
		{"list", "tools/list", map[string]any{"_meta": meta}, "application/json, text/event-stream", "text/event-stream", 200, `"ex_echo"`},
		{"call", "tools/call", map[string]any{"_meta": meta, "name": "ex_echo", "arguments": map[string]any{"text": "quick"}}, "application/json, text/event-stream", "text/event-stream", 200, `quick`},
		{"JSON-only client", "tools/list", map[string]any{"_meta": meta}, "application/json", "application/json", 200, `"ex_echo"`},
		{"unknown tool", "tools/call", map[string]any{"_meta": meta, "name": "ex_nonesuch", "arguments": map[string]any{}}, "application/json, text/event-stream", "text/event-stream", 200, `"error"`},
		{"unknown prompt", "prompts/get", map[string]any{"_meta": meta, "name": "ex_nonesuch"}, "application/json, text/event-stream", "text/event-stream", 200, `"error"`},
		{"refused", "tools/call", map[string]any{"_meta": meta, "name": "ex_echo", "arguments": map[string]any{"text": "x"}}, "application/json, text/event-stream", "application/json", 400, `-32020`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := modernRequest(t.Context(), gw.URL, tt.method, tt.params)
			req.Header.Set("Accept", tt.accept)
			if tt.name == "refused" {
				req.Header.Set("Mcp-Name", "another_tool")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if ct := resp.Header.Get("Content-Type"); resp.StatusCode != tt.wantStatus || !strings.HasPrefix(ct, tt.wantType) {
				t.Fatalf("answered %d %q, want %d %q: %s", resp.StatusCode, ct, tt.wantStatus, tt.wantType, b)
			}
			if tt.wantType == "text/event-stream" && !strings.HasPrefix(string(b), "event: message\ndata: ") {
				t.Errorf("stream %q, want the result as its one event", b)
			}
			if !strings.Contains(string(b), tt.want) {
				t.Errorf("answer %s, want %s in it", b, tt.want)
			}
		})
	}
}

// ssePost sends a JSON-RPC request accepting SSE and returns the response.
func ssePost(t *testing.T, url, sid, body string) *http.Response {
	t.Helper()
	return ssePostWith(t, http.DefaultClient, url, sid, body)
}

func ssePostWith(t *testing.T, hc *http.Client, url, sid, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("answered with %q, want an event stream", ct)
	}
	return resp
}

func TestLoggingReachesTheClient(t *testing.T) {
	r := startProtoRig(t)
	var mu sync.Mutex
	var lines []string
	cs := connectWith(t, r.gw.URL, &mcp.ClientOptions{
		LoggingMessageHandler: func(_ context.Context, req *mcp.LoggingMessageRequest) {
			mu.Lock()
			defer mu.Unlock()
			lines = append(lines, fmt.Sprint(req.Params.Data))
		},
	})
	if err := cs.SetLoggingLevel(context.Background(), &mcp.SetLoggingLevelParams{Level: "debug"}); err != nil {
		t.Fatal(err)
	}
	callText(t, cs, "p_log3", nil)
	// The go-sdk client handles notifications on goroutines of its own.
	eventually(t, "3 log lines (logging/setLevel forwarded, messages relayed)", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(lines) == 3
	})
}

func TestCancellationBothWays(t *testing.T) {
	r := startProtoRig(t)
	t.Run("client cancels a call", func(t *testing.T) {
		cs := connect(t, r.gw.URL)
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "p_wait_cancel"})
			errc <- err
		}()
		time.Sleep(100 * time.Millisecond) // let the call reach the backend; the outcome, not the timing, is asserted
		cancel()
		select {
		case <-r.proto.cancelled:
		case <-time.After(20 * time.Second):
			t.Fatal("backend never saw the cancellation")
		}
		if err := <-errc; err == nil {
			t.Error("cancelled call returned no error")
		}
	})
	t.Run("backend cancels its request", func(t *testing.T) {
		// On the wire: the relayed elicitation, then its cancellation with
		// vmcp's own request id, then the call's response.
		code, h, body := rawPost(t, r.gw.URL, "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"elicitation":{}},"clientInfo":{"name":"raw","version":"1"}}}`)
		if code != http.StatusOK {
			t.Fatalf("initialize: %d %s", code, body)
		}
		resp := ssePost(t, r.gw.URL, h.Get("Mcp-Session-Id"), `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"p_elicit_then_give_up","arguments":{}}}`)
		_, data := sseEvents(t, resp, 3)
		var req struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if err := json.Unmarshal([]byte(data[0]), &req); err != nil || req.Method != "elicitation/create" {
			t.Fatalf("first event = %s, want the relayed elicitation", data[0])
		}
		if !strings.Contains(data[1], "notifications/cancelled") || !strings.Contains(data[1], `"requestId":`+string(req.ID)) {
			t.Errorf("second event = %s, want notifications/cancelled for %s", data[1], req.ID)
		}
		if !strings.Contains(data[2], `"id":7`) {
			t.Errorf("third event = %s, want the response", data[2])
		}
		if err := <-r.proto.reqCancelled; err == nil {
			t.Error("backend's abandoned request succeeded")
		}
	})
}

func TestSubscriptionsAndListChanged(t *testing.T) {
	r := startProtoRig(t)
	updated := make(chan string, 4)
	toolsChanged := make(chan struct{}, 4)
	cs := connectWith(t, r.gw.URL, &mcp.ClientOptions{
		ResourceUpdatedHandler: func(_ context.Context, req *mcp.ResourceUpdatedNotificationRequest) {
			updated <- req.Params.URI
		},
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { toolsChanged <- struct{}{} },
	})
	ctx := context.Background()
	if caps := cs.InitializeResult().Capabilities; caps.Resources == nil || !caps.Resources.Subscribe || caps.Tools == nil || !caps.Tools.ListChanged {
		t.Fatalf("vmcp does not advertise subscribe and listChanged: %+v", caps)
	}
	if err := cs.Subscribe(ctx, &mcp.SubscribeParams{URI: "test://watched"}); err != nil {
		t.Fatal(err)
	}
	if !r.proto.isSubscribed("test://watched") {
		t.Fatal("subscription did not reach the owning backend")
	}
	callText(t, cs, "p_touch", nil)
	select {
	case uri := <-updated:
		if uri != "test://watched" {
			t.Errorf("updated %q", uri)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("notifications/resources/updated never reached the client")
	}
	if err := cs.Unsubscribe(ctx, &mcp.UnsubscribeParams{URI: "test://watched"}); err != nil {
		t.Fatal(err)
	}
	if r.proto.isSubscribed("test://watched") {
		t.Error("unsubscribe did not reach the backend")
	}

	callText(t, cs, "p_add_tool", nil)
	select {
	case <-toolsChanged:
	case <-time.After(20 * time.Second):
		t.Fatal("notifications/tools/list_changed never reached the client")
	}
	if got := callText(t, cs, "p_late_tool", nil); got != "late" {
		t.Errorf("new tool after list_changed = %q", got)
	}
}

func TestCompletionRoutesByRef(t *testing.T) {
	r := startProtoRig(t)
	cs := connect(t, r.gw.URL)
	res, err := cs.Complete(context.Background(), &mcp.CompleteParams{
		Ref:      &mcp.CompleteReference{Type: "ref/resource", URI: "test://files/{name}"},
		Argument: mcp.CompleteParamsArgument{Name: "name", Value: "x"},
	})
	if err != nil || len(res.Completion.Values) != 1 || res.Completion.Values[0] != "from-proto:test://files/{name}" {
		t.Fatalf("resource-template completion = %+v, %v", res, err)
	}
	res, err = cs.Complete(context.Background(), &mcp.CompleteParams{
		Ref:      &mcp.CompleteReference{Type: "ref/prompt", Name: "ex_greet"},
		Argument: mcp.CompleteParamsArgument{Name: "name", Value: "b"},
	})
	if err != nil || len(res.Completion.Values) != 1 || res.Completion.Values[0] != "bob" {
		t.Fatalf("prompt completion = %+v, %v", res, err)
	}
}

func TestPaginationBothSides(t *testing.T) {
	// The backend pages its 600 tools by 100; vmcp must follow its cursors
	// and then page its own list.
	p := startProtoBackend(t, 100, 600)
	gw := startGateway(t, baseConfig(config.Backend{Name: "p", Transport: config.TransportStreamableHTTP, URL: p.URL}), gateway.Options{})
	cs := connect(t, gw.URL)
	first, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if first.NextCursor == "" {
		t.Fatal("vmcp returned no cursor for a long list")
	}
	n := 0
	for _, err := range cs.Tools(context.Background(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if want := 600 + 9; n != want {
		t.Errorf("tools over all pages = %d, want %d", n, want)
	}
}

// sseEvents reads SSE events with data (their ids and data) until n
// arrived.
func sseEvents(t *testing.T, resp *http.Response, n int) (ids, data []string) {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream answered %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	var id, d string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			d += strings.TrimPrefix(line, "data: ")
		case line == "":
			if d != "" { // the priming event carries no data
				ids, data = append(ids, id), append(data, d)
				n--
			}
			id, d = "", ""
			if n == 0 {
				return ids, data
			}
		}
	}
	t.Fatalf("stream ended early: ids %v data %v (%v)", ids, data, sc.Err())
	return nil, nil
}

func TestStreamResumesWithLastEventID(t *testing.T) {
	r := startProtoRig(t)
	sid := rawInit(t, r.gw.URL)
	resp := ssePost(t, r.gw.URL, sid, `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"ex_sleep_ms","arguments":{"ms":400}}}`)
	// Read only the priming event, then drop the connection mid-call.
	primingID := nextEventID(t, bufio.NewReader(resp.Body))
	resp.Body.Close()

	ids, data := sseEvents(t, resume(t, r.gw.URL, sid, primingID), 1)
	last := data[len(data)-1]
	if !strings.Contains(last, `"id":7`) || !strings.Contains(last, "slept") {
		t.Fatalf("resumed stream delivered %q, want the call's response", last)
	}
	if ids[len(ids)-1] == "" || ids[len(ids)-1] == primingID {
		t.Errorf("response event id = %q", ids[len(ids)-1])
	}
}

// TestReplayKeepsTheNewestStreams: a session keeps its last 16 finished
// streams, and no more than 1 MiB of them besides the newest, for replay.
// A stream it dropped resumes as the standalone stream instead.
func TestReplayKeepsTheNewestStreams(t *testing.T) {
	gw, sid := alwaysStreaming(t)
	call := func(i int, text string) (streamID string) {
		resp := ssePost(t, gw.URL, sid, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"ex_echo","arguments":{"text":%q}}}`, i, text))
		br := bufio.NewReader(resp.Body)
		id := nextEventID(t, br)
		if _, err := io.Copy(io.Discard, br); err != nil { // to the response
			t.Fatal(err)
		}
		return strings.TrimSuffix(id, "-0")
	}
	// resumesWith reports whether resuming the stream replays its
	// response, which says "want".
	resumesWith := func(streamID, want string) bool {
		get := resume(t, gw.URL, sid, streamID+"-0")
		defer get.Body.Close()
		br := bufio.NewReader(get.Body)
		if first := nextEventID(t, br); first != streamID+"-0" {
			if !strings.HasPrefix(first, "0-") {
				t.Fatalf("resuming stream %s started with event %s, want it or the standalone stream", streamID, first)
			}
			return false
		}
		nextEventID(t, br) // the response's
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("stream %s: no response after its ID: %v", streamID, err)
			}
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				return strings.Contains(data, want)
			}
		}
	}

	var streams []string
	for i := range 17 {
		streams = append(streams, call(10+i, fmt.Sprint("small ", i)))
	}
	if resumesWith(streams[0], "small 0") {
		t.Error("the 17th stream did not drop the 1st from replay")
	}
	if !resumesWith(streams[1], "small 1") || !resumesWith(streams[16], "small 16") {
		t.Error("streams 2 to 17 should all resume")
	}

	// echo answers with its text twice (as text and as structured
	// content): a 200 KiB text makes a 400 KiB response.
	big := strings.Repeat("b", 200<<10)
	b1, b2, b3 := call(40, "1"+big), call(41, "2"+big), call(42, "3"+big)
	if resumesWith(b1, "1bbb") || resumesWith(streams[16], "small 16") {
		t.Error("a third 400 KiB response kept the first one, or smaller ones before it, past 1 MiB")
	}
	if !resumesWith(b2, "2bbb") || !resumesWith(b3, "3bbb") {
		t.Error("the two newest 400 KiB responses should resume")
	}
	huge := call(43, strings.Repeat("h", 600<<10))
	if !resumesWith(huge, "hhh") || resumesWith(b3, "3bbb") {
		t.Error("the newest stream, over 1 MiB alone, should be the only one kept")
	}
}

// nextEventID reads an event stream up to the next event ID and returns
// it.
func nextEventID(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("no event ID on the stream: %v", err)
		}
		if id, ok := strings.CutPrefix(line, "id: "); ok {
			return strings.TrimSpace(id)
		}
	}
}

// resume opens the session's GET stream from the event lastID.
func resume(t *testing.T, url, sid, lastID string) *http.Response {
	t.Helper()
	return resumeWith(t, http.DefaultClient, url, sid, lastID)
}

func resumeWith(t *testing.T, hc *http.Client, url, sid, lastID string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("Last-Event-ID", lastID)
	get, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { get.Body.Close() })
	return get
}

func TestDNSRebindingProtection(t *testing.T) {
	r := startProtoRig(t)
	cases := []struct {
		name, host, origin string
		want               int
	}{
		{"evil host", "evil.example.com", "", http.StatusForbidden},
		{"evil origin", "", "http://evil.example.com", http.StatusForbidden},
		{"localhost", "localhost", "http://localhost:3000", http.StatusOK},
		{"loopback ip", "", "http://127.0.0.1", http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, r.gw.URL, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`))
			req.Header.Set("Content-Type", "application/json")
			if tc.host != "" {
				req.Host = tc.host
			}
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}
