package backend

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	testfix "github.com/vmcp/vmcp/internal/fixture"
)

// newWarmStdio returns a stdio connector of the fixture server keeping warm
// processes ready; it is closed at test end.
func newWarmStdio(t *testing.T, o StdioOptions) *stdioConnector {
	t.Helper()
	o.Name = "local"
	o.Command = []string{stdioServer(t)}
	x := NewStdio(o).(*stdioConnector)
	t.Cleanup(func() { x.Close() })
	return x
}

// readyPids are the processes of the warm pool's idle processes.
func readyPids(x *stdioConnector) []int {
	x.pool.mu.Lock()
	defer x.pool.mu.Unlock()
	var pids []int
	for _, w := range x.pool.ready {
		pids = append(pids, childPid(w.c))
	}
	return pids
}

func waitReady(t *testing.T, x *stdioConnector, n int) {
	t.Helper()
	testfix.Eventually(t, "the warm pool to hold its processes", func() bool { return x.pool.idleCount() == n })
}

// reaped reports whether pid is gone and waited for.
func reaped(pid int) bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }

var rootsCaps = json.RawMessage(`{"roots":{"listChanged":true}}`)

func TestStdioWarmPoolHandsOutEachProcessOnce(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	x := NewStdio(StdioOptions{Name: "local", Command: []string{stdioServer(t)}, Warm: 2}).(*stdioConnector)
	ctx := context.Background()
	first, _, err := x.Connect(ctx, ConnectOptions{Capabilities: rootsCaps, Handler: newRecorder()})
	if err != nil {
		t.Fatal(err)
	}
	// The first session starts cold and teaches the pool its handshake.
	waitReady(t, x, 2)
	seen := map[int]bool{childPid(first): true}
	clients := []Client{first}
	for i := range 4 {
		warm := readyPids(x)
		// The same capabilities, written differently.
		c, res, err := x.Connect(ctx, ConnectOptions{Capabilities: json.RawMessage(`{ "roots": { "listChanged": true } }`), Handler: newRecorder()})
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		pid := childPid(c)
		switch {
		case !slices.Contains(warm, pid):
			t.Errorf("session %d got process %d, not one of the warm %v", i, pid, warm)
		case seen[pid]:
			t.Fatalf("session %d got process %d, which another session has", i, pid)
		}
		seen[pid] = true
		if !strings.Contains(string(res.ServerInfo), "stdioserver") {
			t.Errorf("initialize result of a warm process: %+v", res)
		}
		if got := mustCall(t, c, "count", nil); got != "1" {
			t.Errorf("count = %s in a new session, want 1: the process served another", got)
		}
		waitReady(t, x, 2) // refilled
	}
	if got := x.Connections(); got != len(clients)+2 {
		t.Errorf("Connections = %d, want %d sessions + 2 warm", got, len(clients))
	}
	for _, c := range clients {
		c.Close()
	}
	warm := readyPids(x)
	if got := x.Connections(); got != 2 {
		t.Errorf("Connections after the sessions closed = %d, want the 2 warm", got)
	}
	x.Close()
	if got := x.Connections(); got != 0 {
		t.Errorf("Connections after Close = %d, want 0", got)
	}
	for pid := range seen {
		warm = append(warm, pid)
	}
	for _, pid := range warm {
		if !reaped(pid) {
			t.Errorf("process %d lives on after Close", pid)
		}
	}
	// Sessions may still connect: without the pool, cold.
	c, _, err := x.Connect(ctx, ConnectOptions{})
	if err != nil {
		t.Fatalf("Connect after Close: %v", err)
	}
	c.Close()
}

func TestStdioWarmPoolFollowsTheClientsCapabilities(t *testing.T) {
	t.Parallel()
	x := newWarmStdio(t, StdioOptions{Warm: 1})
	connect(t, x, ConnectOptions{Capabilities: rootsCaps})
	waitReady(t, x, 1)
	old := readyPids(x)
	// A client without roots must not get a process that was told it has
	// them.
	c, _ := connect(t, x, ConnectOptions{Capabilities: json.RawMessage(`{}`)})
	if slices.Contains(old, childPid(c)) {
		t.Fatal("a client with other capabilities got a warm process")
	}
	testfix.Eventually(t, "the unfit warm process to stop", func() bool { return reaped(old[0]) })
	waitReady(t, x, 1)
	fresh := readyPids(x)
	c, _ = connect(t, x, ConnectOptions{})
	if !slices.Contains(fresh, childPid(c)) {
		t.Errorf("process %d is not the one warmed for empty capabilities %v", childPid(c), fresh)
	}
}

func TestStdioWarmPoolReapsIdleProcesses(t *testing.T) {
	t.Parallel()
	var clock atomic.Int64
	clock.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	x := newWarmStdio(t, StdioOptions{Warm: 2, WarmIdleTimeout: time.Minute, Now: now})
	connect(t, x, ConnectOptions{})
	waitReady(t, x, 2)
	idle := readyPids(x)

	clock.Add(int64(30 * time.Second))
	x.pool.reap()
	if got := readyPids(x); !slices.Equal(got, idle) {
		t.Fatalf("reaped before the idle timeout: %v, had %v", got, idle)
	}
	clock.Add(int64(31 * time.Second))
	x.pool.reap()
	for _, pid := range idle {
		testfix.Eventually(t, "an idle warm process to be reaped", func() bool { return reaped(pid) })
	}
	testfix.Eventually(t, "only the session's process to be left", func() bool { return x.Connections() == 1 })
	if n := x.pool.idleCount(); n != 0 {
		t.Errorf("the pool refilled %d processes while nobody used it", n)
	}
	// The next session starts cold and wakes the pool.
	c, _ := connect(t, x, ConnectOptions{})
	if slices.Contains(idle, childPid(c)) {
		t.Error("a reaped process was handed out")
	}
	waitReady(t, x, 2)
}

func TestStdioWarmPoolReplacesAProcessThatDied(t *testing.T) {
	t.Parallel()
	x := newWarmStdio(t, StdioOptions{Warm: 1})
	connect(t, x, ConnectOptions{})
	waitReady(t, x, 1)
	dead := readyPids(x)[0]
	if err := syscall.Kill(dead, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// A session never gets the dead process: it starts one of its own.
	testfix.Eventually(t, "the warm process to exit", func() bool { return x.Connections() == 1 })
	c, _ := connect(t, x, ConnectOptions{})
	if childPid(c) == dead {
		t.Fatal("a dead warm process was handed out")
	}
	mustCall(t, c, "count", nil)
	testfix.Eventually(t, "the pool to refill", func() bool {
		pids := readyPids(x)
		return len(pids) == 1 && pids[0] != dead
	})
}

func TestStdioProcessLimit(t *testing.T) {
	t.Parallel()
	lim := NewProcessLimit(3)
	x := newWarmStdio(t, StdioOptions{Processes: lim})
	y := newWarmStdio(t, StdioOptions{Processes: lim, Warm: 1})
	a, _ := connect(t, x, ConnectOptions{})
	connect(t, y, ConnectOptions{})
	// y's pool takes the third slot.
	waitReady(t, y, 1)
	_, _, err := x.Connect(context.Background(), ConnectOptions{})
	if !errors.Is(err, ErrProcessLimit) || !strings.Contains(err.Error(), `backend "local"`) ||
		!strings.Contains(err.Error(), "server.maxStdioProcesses") {
		t.Fatalf("Connect beyond the limit: %v, want ErrProcessLimit naming the backend and the setting", err)
	}
	if errors.Is(err, ErrUnavailable) {
		t.Error("the limit reads as the backend being unavailable")
	}
	if lim.Running() != 3 || x.Connections() != 1 || y.Connections() != 2 {
		t.Errorf("Running %d, x %d, y %d; want 3, 1, 2", lim.Running(), x.Connections(), y.Connections())
	}
	a.Close()
	c, _ := connect(t, x, ConnectOptions{})
	mustCall(t, c, "count", nil)
}

func TestStdioWarmProcessAsksRootsOfItsSession(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		giveUpMs string
	}{
		// The backend's roots/list waits until a session takes the process.
		{"asked while warm", "600000"},
		// The backend gave up asking; the session tells it the roots changed.
		{"gave up while warm", "50"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			logs := &logBuffer{}
			x := newWarmStdio(t, StdioOptions{Warm: 1, Env: map[string]string{"STDIOSERVER_ROOTS": tt.giveUpMs}, Logger: logs.logger()})
			x.pool.take(ConnectOptions{Capabilities: rootsCaps}) // learn the handshake, start none
			waitReady(t, x, 1)
			x.pool.mu.Lock()
			w, park := x.pool.ready[0].c, x.pool.ready[0].park
			x.pool.mu.Unlock()
			if tt.giveUpMs == "50" {
				testfix.Eventually(t, "the backend to give up", func() bool { return strings.Contains(logs.String(), "roots: gave up") })
				// Its cancellation reaches vmcp on stdout, the log line on
				// stderr: wait until vmcp has seen the ask end too.
				testfix.Eventually(t, "vmcp to see the ask lapse", func() bool {
					park.mu.Lock()
					defer park.mu.Unlock()
					return park.lapsed
				})
			} else {
				testfix.Eventually(t, "the backend's roots/list to wait", func() bool {
					w.smu.Lock()
					defer w.smu.Unlock()
					return len(w.serving) == 1
				})
			}
			h := newRecorder()
			h.roots = "file:///session"
			c, _ := connect(t, x, ConnectOptions{Capabilities: rootsCaps, Handler: h})
			if c != Client(w) {
				t.Fatal("the session did not get the warm process")
			}
			testfix.Eventually(t, "the backend to know the session's roots", func() bool {
				return mustCall(t, c, "roots", nil) == "file:///session "
			})
		})
	}
}
