package session_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/backend"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/recovery"
	"github.com/vmcp/vmcp/internal/session"
	"github.com/vmcp/vmcp/internal/store"
)

// announcerEnv makes the test binary act as the announcer stdio backend.
const announcerEnv = "VMCP_SESSION_TEST_ANNOUNCER"

func TestMain(m *testing.M) {
	if os.Getenv(announcerEnv) == "1" {
		announce()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// announce is a stdio MCP server that talks first, as
// @modelcontextprotocol/server-everything does: right after its initialize
// response, before the client has listed anything, it sends
// tools/list_changed, a log message and a roots/list request. Its first
// tools/list answers one tool, later ones two, so a client that refreshed
// after the announcement sees "two". When its roots/list is answered it
// logs that it was.
func announce() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(nil, 1<<20)
	out := bufio.NewWriter(os.Stdout)
	write := func(v string) { out.WriteString(v + "\n"); out.Flush() }
	lists := 0
	for in.Scan() {
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Result json.RawMessage `json:"result"`
		}
		if json.Unmarshal(in.Bytes(), &m) != nil {
			continue
		}
		switch {
		case m.Method == "initialize":
			write(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{"listChanged":true},"logging":{}},"serverInfo":{"name":"announcer","version":"test"}}}`, m.ID))
			write(`{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}`)
			write(`{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"early"}}`)
			write(`{"jsonrpc":"2.0","id":"roots-1","method":"roots/list"}`)
		case m.Method == "tools/list":
			lists++
			tools := `[{"name":"one","inputSchema":{"type":"object"}}]`
			if lists > 1 {
				tools = `[{"name":"one","inputSchema":{"type":"object"}},{"name":"two","inputSchema":{"type":"object"}}]`
			}
			write(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{"tools":%s}}`, m.ID, tools))
		case m.Method == "" && string(m.ID) == `"roots-1"`:
			answer, _ := json.Marshal("roots answered: " + in.Text())
			write(fmt.Sprintf(`{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":%s}}`, answer))
		case m.Method == "ping":
			write(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{}}`, m.ID))
		case len(m.ID) > 0 && m.Method != "":
			write(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"method not found"}}`, m.ID))
		}
	}
}

// clientPeer is the client end of a session: it records notifications and
// answers roots/list with one root.
type clientPeer struct {
	mu    sync.Mutex
	notes []string // method, or method + " " + params for log messages
	ch    chan struct{}
}

func newClientPeer() *clientPeer { return &clientPeer{ch: make(chan struct{}, 64)} }

func (p *clientPeer) Notify(_ context.Context, method string, params json.RawMessage) {
	p.mu.Lock()
	n := method
	if method == "notifications/message" {
		n += " " + string(params)
	}
	p.notes = append(p.notes, n)
	p.mu.Unlock()
	p.ch <- struct{}{}
}

func (p *clientPeer) Request(_ context.Context, method string, _ json.RawMessage) (json.RawMessage, error) {
	if method == "roots/list" {
		return json.RawMessage(`{"roots":[{"uri":"file:///work"}]}`), nil
	}
	return nil, errors.New("unexpected " + method)
}

// waitFor waits until the peer has recorded a note containing each of
// want, or the test's context ends.
func (p *clientPeer) waitFor(ctx context.Context, want ...string) error {
	for {
		p.mu.Lock()
		all := strings.Join(p.notes, "\n")
		p.mu.Unlock()
		missing := slices.DeleteFunc(slices.Clone(want), func(w string) bool { return strings.Contains(all, w) })
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-p.ch:
		case <-ctx.Done():
			return fmt.Errorf("still missing %q; got:\n%s", missing, all)
		}
	}
}

func announcerBackend(t *testing.T) session.Backend {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return session.Backend{Name: "announcer", Connector: backend.NewStdio(backend.StdioOptions{
		Name: "announcer", Command: []string{exe}, Env: map[string]string{announcerEnv: "1"},
	})}
}

// A backend that talks during its handshake (the crash of issue 16) must
// neither crash vmcp nor be ignored: its list_changed refreshes the
// catalog once the session is built, its early log message reaches the
// client once it has a stream, and its roots/list gets an answer.
func TestBackendTalkingDuringHandshake(t *testing.T) {
	leakCheck(t)
	f := newFactory(t, nil, session.CallLimits{}, announcerBackend(t), httpBackend("other", fixture.StartFaulty(t, "other").URL))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 20 {
		id, _ := session.NewID()
		now := time.Now()
		s, err := f.New(ctx, &store.Metadata{ID: id, Created: now, LastSeen: now, ClientCapabilities: json.RawMessage(`{"roots":{}}`)})
		if err != nil {
			t.Fatal(err)
		}
		p := newClientPeer()
		s.SetPeer(p)
		// The client's handshake is done and its GET stream open, so the
		// backend's early roots/list can be put to it.
		s.ClientInitialized()
		s.PeerOpened()
		if err := p.waitFor(ctx, "notifications/tools/list_changed", `"data":"early"`, `roots answered`); err != nil {
			t.Fatalf("iteration %d: %v", i, err)
		}
		tools, err := s.Tools()
		if err != nil {
			t.Fatal(err)
		}
		names := strings.Join(toolNames(tools), " ")
		if !strings.Contains(names, "two") || !strings.Contains(names, "echo") {
			t.Fatalf("iteration %d: tools after the refresh = %v, want the announcer's two and the other backend's", i, names)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func toolNames(tools []json.RawMessage) []string {
	var names []string
	for _, raw := range tools {
		var tool struct {
			Name string `json:"name"`
		}
		_ = json.Unmarshal(raw, &tool)
		names = append(names, tool.Name)
	}
	return names
}

// panickingConnector is a fault injector: its Connect panics, as a bug in
// a transport might.
type panickingConnector struct{}

func (panickingConnector) Connect(context.Context, backend.ConnectOptions) (backend.Client, *backend.InitializeResult, error) {
	panic("connector bug")
}

func (panickingConnector) Close() error { return nil }

// A panic on a backend's goroutine fails that backend alone: it is logged
// with the stack, and the session serves the other backends.
func TestPanickingBackendFailsOnlyThatBackend(t *testing.T) {
	leakCheck(t)
	var logs syncBuffer
	f := newFactory(t, &logs, session.CallLimits{}, session.Backend{Name: "broken", Connector: panickingConnector{}},
		httpBackend("good", fixture.StartFaulty(t, "good").URL))
	s := newSession(t, f)
	if r, err := callTool(context.Background(), s, "good_echo", map[string]any{"text": "hi"}); err != nil || r.Content[0].Text != "hi" {
		t.Fatalf("good_echo = %+v, %v", r, err)
	}
	out := logs.String()
	for _, want := range []string{"level=ERROR", "recovered from a panic", "backend=broken", "goroutine"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, recovery.ErrPanic.Error()) {
		t.Errorf("the failed backend's error does not say it panicked:\n%s", out)
	}
}

// The debug log gives each session's end with its reason.
func TestDebugLogGivesEndReasons(t *testing.T) {
	t.Parallel()
	web := fixture.StartFaulty(t, "web")
	var logs syncBuffer
	clk := fixture.NewClock(time.Unix(1_700_000_000, 0))
	m := session.NewManager(session.ManagerOptions{
		Store:       store.NewMemory(),
		Factory:     newFactory(t, nil, session.CallLimits{}, httpBackend("web", web.URL)),
		TTL:         time.Hour,
		IdleTimeout: time.Minute,
		Now:         clk.Now,
		Logger:      slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	create := func() *session.Session {
		s, err := m.Create(context.Background(), session.CreateRequest{Identity: "a", ProtocolVersion: "2025-06-18", ClientCapabilities: []byte(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	del := create()
	if err := m.Delete(context.Background(), del.ID()); err != nil {
		t.Fatal(err)
	}
	create()
	clk.Advance(2 * time.Minute)
	m.Sweep(context.Background())
	create()
	if err := m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	for _, reason := range []string{"DELETE", "idle", "shutdown"} {
		if !strings.Contains(out, `msg="session ended"`) || !strings.Contains(out, "reason="+reason) {
			t.Errorf("no session end with reason %s in:\n%s", reason, out)
		}
	}
	if n := strings.Count(out, `msg="session started"`); n != 3 {
		t.Errorf("%d session starts logged, want 3:\n%s", n, out)
	}
}
