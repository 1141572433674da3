package gateway_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
)

// tasksRig is a gateway over three stdio task servers, "a", "b" and "c";
// a and c give instructions, b none.
func tasksRig(t *testing.T) *running {
	t.Helper()
	bin := fixture.Binary(t, "./internal/gateway/testdata/taskserver")
	cfg := baseConfig(
		config.Backend{Name: "a", Transport: config.TransportStdio, Command: []string{bin, "-name", "a", "-instructions", "Alpha tools."}},
		config.Backend{Name: "b", Transport: config.TransportStdio, Command: []string{bin, "-name", "b"}},
		config.Backend{Name: "c", Transport: config.TransportStdio, Command: []string{bin, "-name", "c", "-instructions", "Gamma tools.\n"}},
	)
	return startGateway(t, cfg, gateway.Options{})
}

// initResult initializes a session as a raw client and returns its ID and
// vmcp's initialize result.
func initResult(t *testing.T, url string) (string, map[string]json.RawMessage) {
	t.Helper()
	code, h, body := rawPost(t, url, "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	var resp struct{ Result map[string]json.RawMessage }
	if code != http.StatusOK || json.Unmarshal([]byte(body), &resp) != nil {
		t.Fatalf("initialize: %d %s", code, body)
	}
	sid := h.Get("Mcp-Session-Id")
	if code, _, body := rawPost(t, url, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`); code != http.StatusAccepted {
		t.Fatalf("initialized: %d %s", code, body)
	}
	return sid, resp.Result
}

func TestBackendInstructionsAndTasksCapabilityReachTheClient(t *testing.T) {
	gw := tasksRig(t)
	_, res := initResult(t, gw.URL)
	var instructions string
	json.Unmarshal(res["instructions"], &instructions)
	if want := "## a\nAlpha tools.\n\n## c\nGamma tools."; instructions != want {
		t.Errorf("instructions = %q, want %q", instructions, want)
	}
	var caps map[string]json.RawMessage
	json.Unmarshal(res["capabilities"], &caps)
	if want := `{"cancel":{},"list":{},"requests":{"tools":{"call":{}}}}`; string(caps["tasks"]) != want {
		t.Errorf("tasks capability = %s, want %s", caps["tasks"], want)
	}
	for _, c := range []string{"tools", "completions", "logging"} {
		if caps[c] == nil {
			t.Errorf("capability %s missing: %s", c, res["capabilities"])
		}
	}

	// Backends without instructions or tasks: neither field.
	ex := fixture.StartHTTP(t, exampleserver.Options{Name: "ex"})
	plain := startGateway(t, baseConfig(config.Backend{Name: "ex", Transport: config.TransportStreamableHTTP, URL: ex.URL}), gateway.Options{})
	_, res = initResult(t, plain.URL)
	caps = nil
	json.Unmarshal(res["capabilities"], &caps)
	if caps["tasks"] != nil {
		t.Errorf("tasks capability without task backends: %s", caps["tasks"])
	}
	json.Unmarshal(res["instructions"], &instructions)
	if !strings.HasPrefix(instructions, "## ex\n") {
		t.Errorf("example server's instructions = %q, want them under ## ex", instructions)
	}
}

// TestTasksAreRoutedToTheirBackend: tasks made through vmcp on different
// backends are polled, fetched, listed and cancelled at their owner, and
// the owner's status notifications reach the client.
func TestTasksAreRoutedToTheirBackend(t *testing.T) {
	gw := tasksRig(t)
	sid, _ := initResult(t, gw.URL)
	// The backends' status notifications reach the client on its
	// standalone stream, or on the stream of a call in flight at the time.
	notes := &notifications{}
	get, _ := http.NewRequest(http.MethodGet, gw.URL, nil)
	get.Header.Set("Accept", "text/event-stream")
	get.Header.Set("Mcp-Session-Id", sid)
	stream, err := http.DefaultClient.Do(get)
	if err != nil {
		t.Fatal(err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		notes.scan(stream.Body)
	}()
	defer func() { stream.Body.Close(); <-read }()
	rpc := func(t *testing.T, url, sid, method, params string) rpcResult {
		t.Helper()
		return notes.rpc(t, url, sid, method, params)
	}

	create := func(tool, args string) string {
		t.Helper()
		r := rpc(t, gw.URL, sid, "tools/call", `{"name":"`+tool+`","arguments":`+args+`,"task":{"ttl":60000}}`)
		var res struct {
			Task struct{ TaskID, Status string }
		}
		if r.Error != nil || json.Unmarshal(r.Result, &res) != nil || res.Task.TaskID == "" || res.Task.Status != "working" {
			t.Fatalf("task-augmented %s: %+v %s", tool, r.Error, r.Result)
		}
		return res.Task.TaskID
	}
	ta, tb, tc := create("a_work", `{}`), create("b_work", `{"hold":true}`), create("c_work", `{}`)
	if ta != "a-1" || tb != "b-1" || tc != "c-1" {
		t.Fatalf("task IDs %s %s %s, want each backend's own", ta, tb, tc)
	}

	for id, owner := range map[string]string{ta: "a", tb: "b", tc: "c"} {
		r := rpc(t, gw.URL, sid, "tasks/get", `{"taskId":"`+id+`"}`)
		if r.Error != nil || !strings.Contains(string(r.Result), `"statusMessage":"owned by `+owner+`"`) {
			t.Errorf("tasks/get %s: %+v %s, want it from %s", id, r.Error, r.Result, owner)
		}
	}
	r := rpc(t, gw.URL, sid, "tasks/result", `{"taskId":"`+tc+`"}`)
	if r.Error != nil || !strings.Contains(string(r.Result), "c result of c-1") || !strings.Contains(string(r.Result), "io.modelcontextprotocol/related-task") {
		t.Errorf("tasks/result %s: %+v %s", tc, r.Error, r.Result)
	}
	r = rpc(t, gw.URL, sid, "tasks/cancel", `{"taskId":"`+tb+`"}`)
	if r.Error != nil || !strings.Contains(string(r.Result), `"status":"cancelled"`) || !strings.Contains(string(r.Result), "cancelled on b") {
		t.Errorf("tasks/cancel %s: %+v %s", tb, r.Error, r.Result)
	}
	r = rpc(t, gw.URL, sid, "tasks/cancel", `{"taskId":"`+ta+`"}`) // completed: the owner refuses
	if r.Error == nil || r.Error.Code != -32602 {
		t.Errorf("tasks/cancel of a completed task: %+v %s, want the owner's -32602", r.Error, r.Result)
	}

	r = rpc(t, gw.URL, sid, "tasks/list", `{}`)
	var list struct {
		Tasks []struct{ TaskID, Status string }
	}
	if r.Error != nil || json.Unmarshal(r.Result, &list) != nil {
		t.Fatalf("tasks/list: %+v %s", r.Error, r.Result)
	}
	got := map[string]string{}
	for _, x := range list.Tasks {
		got[x.TaskID] = x.Status
	}
	if len(got) != 3 || got[ta] != "completed" || got[tb] != "cancelled" || got[tc] != "completed" {
		t.Errorf("tasks/list = %v, want all three tasks with their status", got)
	}

	r = rpc(t, gw.URL, sid, "tasks/get", `{"taskId":"nobody-1"}`)
	if r.Error == nil || r.Error.Code != -32602 || !strings.Contains(r.Error.Message, "unknown task") {
		t.Errorf("tasks/get of an unknown task: %+v, want -32602 unknown task", r.Error)
	}

	// Each completed task's status notification reached the client.
	eventually(t, "status notifications of the completed tasks", func() bool {
		return notes.has(`"method":"notifications/tasks/status"`, `"taskId":"`+ta+`"`) &&
			notes.has(`"method":"notifications/tasks/status"`, `"taskId":"`+tc+`"`)
	})
}

// notifications collects the server-to-client messages a raw client sees
// on its streams.
type notifications struct {
	mu   sync.Mutex
	msgs []string
}

func (n *notifications) scan(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok && strings.Contains(d, `"method"`) {
			n.mu.Lock()
			n.msgs = append(n.msgs, d)
			n.mu.Unlock()
		}
	}
}

// rpc is the package's rpc, keeping the messages an SSE answer carried
// before the response.
func (n *notifications) rpc(t *testing.T, url, sid, method, params string) rpcResult {
	t.Helper()
	return rpcSeeing(t, url, sid, method, params, func(sse []byte) { n.scan(bytes.NewReader(sse)) })
}

func (n *notifications) has(parts ...string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, m := range n.msgs {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(m, p)
		}
		if all {
			return true
		}
	}
	return false
}
