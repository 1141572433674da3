package compat

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A 2026-07-28 client's subscriptions/listen stream and its later calls
// are served by one warm backend session: server-everything (stdio, one
// child per backend session) keeps the resource subscription the stream
// made and the updates toggle-subscriber-updates turns on in the session
// that served each, so its resources/updated reaches the stream only if
// both are the same one.
func TestModernListenSeesUpdatesItsCallsTurnedOn(t *testing.T) {
	t.Parallel()
	requireNPM(t)
	dir := t.TempDir()
	bin := buildVMCP(t, dir)
	js, err := filepath.Abs(everythingJS)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "vmcp.yaml")
	writeFile(t, cfg, fmt.Sprintf(`backends:
  - name: ev
    transport: stdio
    command: [node, %s, stdio]
session:
  backendInitTimeout: 60s
`, q(js)))
	g := startGateway(t, bin, cfg)

	var list struct {
		Result struct {
			Resources []struct {
				URI string `json:"uri"`
			} `json:"resources"`
		} `json:"result"`
	}
	modernCall(t, g.mcp, "resources/list", map[string]any{}, &list)
	if len(list.Result.Resources) == 0 {
		t.Fatal("server-everything lists no resources")
	}
	uri := list.Result.Resources[0].URI

	events := listenStream(t, g.mcp, map[string]any{"resourceSubscriptions": []string{uri}})
	if ack := <-events; ack.Method != "notifications/subscriptions/acknowledged" {
		t.Fatalf("first event %+v, want the acknowledgement", ack)
	}
	var toggled struct {
		Result struct {
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
		} `json:"result"`
	}
	modernCall(t, g.mcp, "tools/call", map[string]any{"name": "ev_toggle-subscriber-updates", "arguments": map[string]any{}}, &toggled)
	if len(toggled.Result.Content) == 0 || !strings.Contains(toggled.Result.Content[0].Text, "Started") {
		t.Fatalf("toggle-subscriber-updates: %+v", toggled)
	}
	// server-everything sends one update at once, then every 5 s: the
	// bound is generous, not a speed assertion.
	wait := time.NewTimer(60 * time.Second)
	defer wait.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("the listen stream ended")
			}
			if ev.Method == "notifications/resources/updated" && ev.Params.URI == uri {
				checkOneWarmSession(t, g)
				return
			}
		case <-wait.C:
			t.Fatalf("no notifications/resources/updated for %s on the listen stream; vmcp's log:\n%s", uri, tail(g.log.String(), 4000))
		}
	}
}

// modernHeaders sets what a 2026-07-28 request carries.
func modernHeaders(req *http.Request, method string, params map[string]any) {
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2026-07-28")
	req.Header.Set("Mcp-Method", method)
	if n, ok := params["name"].(string); ok {
		req.Header.Set("Mcp-Name", n)
	}
}

// modernRequest is a 2026-07-28 request (id 1) with ctx.
func modernRequest(t *testing.T, ctx context.Context, url, method string, params map[string]any) *http.Request {
	t.Helper()
	params["_meta"] = map[string]any{
		"io.modelcontextprotocol/protocolVersion":    "2026-07-28",
		"io.modelcontextprotocol/clientCapabilities": map[string]any{},
	}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	modernHeaders(req, method, params)
	return req
}

// modernCall sends one 2026-07-28 request and decodes its JSON answer
// into out, failing on an error.
func modernCall(t *testing.T, url, method string, params map[string]any, out any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(modernRequest(t, t.Context(), url, method, params))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %v", method, resp.StatusCode, err)
	}
	var e struct{ Error any }
	if json.Unmarshal(raw, &e); e.Error != nil {
		t.Fatalf("%s: %s", method, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("%s: %s: %v", method, raw, err)
	}
}

// listenEvent is a message of a listen stream.
type listenEvent struct {
	Method string `json:"method"`
	Params struct {
		URI string `json:"uri"`
	} `json:"params"`
}

// listenStream opens a subscriptions/listen stream with filter and returns
// its messages, in order, until the stream or the test ends.
func listenStream(t *testing.T, url string, filter map[string]any) <-chan listenEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := http.DefaultClient.Do(modernRequest(t, ctx, url, "subscriptions/listen", map[string]any{"notifications": filter}))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	events := make(chan listenEvent)
	done := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		<-done
	})
	go func() {
		defer close(done)
		defer close(events)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			d, ok := strings.CutPrefix(sc.Text(), "data: ")
			var ev listenEvent
			if !ok || json.Unmarshal([]byte(d), &ev) != nil {
				continue
			}
			select {
			case events <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return events
}

// checkOneWarmSession checks in /status that the list, the listen stream
// and the call were served by one warm session, held by the stream and
// not busy.
func checkOneWarmSession(t *testing.T, g *gateway) {
	t.Helper()
	code, body, err := g.get("/status")
	var status struct {
		Gateway struct {
			WarmPool struct {
				Sessions, Busy, Listened int
				Misses                   uint64
			} `json:"warmPool"`
		} `json:"gateway"`
	}
	if err != nil || code != http.StatusOK || json.Unmarshal(body, &status) != nil {
		t.Fatalf("/status: %d %v %s", code, err, body)
	}
	if st := status.Gateway.WarmPool; st.Sessions != 1 || st.Misses != 1 || st.Listened != 1 || st.Busy != 0 {
		t.Errorf("/status warmPool = %+v, want 1 session (1 miss), listened, not busy", st)
	}
}
