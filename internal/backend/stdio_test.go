package backend

import (
	"context"
	"errors"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	testfix "github.com/vmcp/vmcp/internal/fixture"
)

func newStdioFixture(t *testing.T, logs *logBuffer, timeout time.Duration) Connector {
	t.Helper()
	return NewStdio(StdioOptions{
		Name:    "local",
		Command: []string{stdioServer(t)},
		Env:     map[string]string{"STDIOSERVER_TOKEN": "tok-secret"},
		Timeout: timeout,
		Logger:  logs.logger(),
	})
}

// childPid digs the process out of a stdio client; the tests live in the
// package for this.
func childPid(c Client) int { return c.(*client).conn.(*stdioConn).cmd.Process.Pid }

func TestStdioCallsReuseOneProcess(t *testing.T) {
	t.Parallel()
	logs := &logBuffer{}
	c, res := connect(t, newStdioFixture(t, logs, 0), ConnectOptions{})
	if !strings.Contains(string(res.ServerInfo), "stdioserver") || c.SessionID() != "" {
		t.Errorf("initialize result %+v, session ID %q", res, c.SessionID())
	}
	for _, want := range []string{"1", "2", "3"} {
		if got := mustCall(t, c, "count", nil); got != want {
			t.Fatalf("count = %s, want %s: state lost between calls", got, want)
		}
	}
	mustCall(t, c, "stderr", map[string]string{"text": "level=ERROR msg=hello from the child"})
	mustCall(t, c, "stderr", map[string]string{"text": "my token is tok-secret"})
	// The child's line is an attribute of vmcp's record, not a record of
	// its own, and configured env values are redacted from it.
	testfix.Eventually(t, "the stderr lines in the log", func() bool {
		var hello, token bool
		for _, line := range strings.Split(logs.String(), "\n") {
			if !strings.Contains(line, "level=INFO") || !strings.Contains(line, `msg="backend stderr"`) || !strings.Contains(line, "backend=local") {
				continue
			}
			hello = hello || strings.Contains(line, `line="level=ERROR msg=hello from the child"`)
			token = token || strings.Contains(line, `line="my token is [REDACTED]"`)
		}
		return hello && token
	})
	if strings.Contains(logs.String(), "tok-secret") {
		t.Error("an environment value reached the log")
	}
}

func TestStdioCloseReapsChild(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	x := newStdioFixture(t, &logBuffer{}, 0)
	c, _, err := x.Connect(context.Background(), ConnectOptions{Handler: newRecorder()})
	if err != nil {
		t.Fatal(err)
	}
	pid := childPid(c)
	mustCall(t, c, "count", nil)
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kill(pid, 0) after Close = %v, want ESRCH: the child lives on or was not reaped", err)
	}
	if _, err := c.Call(context.Background(), "tools/list", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Call after Close = %v, want ErrClosed", err)
	}
}

func TestStdioChildExitFailsCalls(t *testing.T) {
	t.Parallel()
	c, _ := connect(t, newStdioFixture(t, &logBuffer{}, 0), ConnectOptions{})
	pending := make(chan error, 1)
	go func() {
		_, err := callTool(context.Background(), c, "slow", nil, nil)
		pending <- err
	}()
	m := c.(*client).conn.(*stdioConn).mux
	testfix.Eventually(t, "the slow call to be in flight", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return len(m.pending) > 0
	})
	if err := syscall.Kill(childPid(c), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{<-pending, func() error { _, err := callTool(context.Background(), c, "count", nil, nil); return err }()} {
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "exited") || !strings.Contains(err.Error(), `backend "local"`) {
			t.Errorf("err = %v, want ErrUnavailable saying the process exited", err)
		}
	}
}

func TestStdioTimeoutCancelsBackendWork(t *testing.T) {
	t.Parallel()
	logs := &logBuffer{}
	c, _ := connect(t, newStdioFixture(t, logs, 300*time.Millisecond), ConnectOptions{})
	_, err := callTool(context.Background(), c, "slow", nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline error", err)
	}
	testfix.Eventually(t, "the child to report cancellation", func() bool {
		return strings.Contains(logs.String(), "slow: cancelled")
	})
	mustCall(t, c, "count", nil)
}

func TestStdioProgressReachesCallHandler(t *testing.T) {
	t.Parallel()
	c, _ := connect(t, newStdioFixture(t, &logBuffer{}, 0), ConnectOptions{Handler: newRecorder()})
	perCall := newRecorder()
	if _, err := callTool(WithHandler(context.Background(), perCall), c, "progress", nil, map[string]any{"progressToken": 7}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		perCall.waitNote(t, "notifications/progress")
	}
}

func TestStdioBadCommand(t *testing.T) {
	t.Parallel()
	x := NewStdio(StdioOptions{Name: "local", Command: []string{"/nonexistent/vmcp-test-server"}})
	_, _, err := x.Connect(context.Background(), ConnectOptions{})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), `backend "local"`) {
		t.Errorf("err = %v, want ErrUnavailable naming the backend", err)
	}
}

func TestStdioMessageSizeCap(t *testing.T) {
	t.Parallel()
	x := NewStdio(StdioOptions{Name: "local", Command: []string{stdioServer(t)}, MaxMessageBytes: 4096})
	c, _ := connect(t, x, ConnectOptions{})
	_, err := callTool(context.Background(), c, "echo", map[string]string{"text": strings.Repeat("x", 8192)}, nil)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), `backend "local"`) {
		t.Errorf("err = %v, want ErrTooLarge naming the backend", err)
	}
}

// A child that says why and exits before its handshake: by the time
// Connect has failed, its last stderr line is in the log, not lost with the
// pipe closed under the reader.
func TestStdioLogsWhatAnExitingChildSaidLast(t *testing.T) {
	t.Parallel()
	// In parallel, so that the child often exits before vmcp writes its
	// initialize, as under load.
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			stdioLastWords(t)
		})
	}
	wg.Wait()
}

func stdioLastWords(t *testing.T) {
	logs := &logBuffer{}
	x := NewStdio(StdioOptions{
		Name:    "files",
		Command: []string{"sh", "-c", `echo "usage: files DIR..." >&2; exit 2`},
		Logger:  logs.logger(),
	})
	defer x.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := x.Connect(ctx, ConnectOptions{}); err == nil {
		t.Error("Connect succeeded with a child that exits")
	} else if !strings.Contains(logs.String(), `msg="backend stderr" backend=files line="usage: files DIR..."`) {
		t.Errorf("the child's last words are not in the log (Connect: %v):\n%s", err, logs.String())
	}
}

// A child that has exited takes no request, even while vmcp still reads
// what it wrote last (a grandchild holds its stdout open, so vmcp waits
// exitGrace): a call then is not sent, and fails as a lost session
// (ErrSessionNotFound), so that the session sends it to a new child
// instead of failing it.
func TestStdioCallAfterTheChildExitedIsALostSession(t *testing.T) {
	t.Parallel()
	// sh starts a grandchild that keeps stdout open, then becomes the
	// server; Close ends the whole process group.
	x := NewStdio(StdioOptions{Name: "local", Command: []string{"sh", "-c", `sleep 60 & exec "$0"`, stdioServer(t)}, Logger: (&logBuffer{}).logger()})
	c, _ := connect(t, x, ConnectOptions{})
	mustCall(t, c, "count", nil)
	if err := syscall.Kill(childPid(c), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.(*client).conn.(*stdioConn).exited
	_, err := callTool(context.Background(), c, "count", nil, nil)
	if !errors.Is(err, ErrSessionNotFound) || !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "exited") {
		t.Errorf("call after the child exited = %v, want ErrSessionNotFound saying it exited", err)
	}
}
