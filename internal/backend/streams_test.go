package backend

import (
	"testing"

	testfix "github.com/vmcp/vmcp/internal/fixture"
)

// queueState reads a connector's stream queue: free slots and clients
// waiting.
func queueState(x Connector) (free, waiting int) {
	q := x.(*streamableConnector).streams
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.free, q.wait.Len()
}

// TestStreamQueue checks that standalone streams beyond the bound wait in
// line, get a slot when one frees, and leave the line when closed.
func TestStreamQueue(t *testing.T) {
	t.Parallel()
	f := startHTTP(t, modeSSEResponses)
	x := NewStreamableHTTP(HTTPOptions{Name: "files", URL: f.url(), MaxStreams: 1})
	defer x.Close()
	a, _ := connect(t, x, ConnectOptions{Handler: newRecorder()})
	b, _ := connect(t, x, ConnectOptions{Handler: newRecorder()})
	c, _ := connect(t, x, ConnectOptions{Handler: newRecorder()})
	if free, waiting := queueState(x); free != 0 || waiting != 2 {
		t.Fatalf("with 3 clients and 1 slot: %d free, %d waiting; want 0, 2", free, waiting)
	}
	c.Close()
	testfix.Eventually(t, "the closed client to leave the line", func() bool { _, w := queueState(x); return w == 1 })
	a.Close()
	testfix.Eventually(t, "the slot to pass to the waiting client", func() bool { f, w := queueState(x); return f == 0 && w == 0 })
	mustCall(t, b, "echo", map[string]string{"text": "still works"})
	b.Close()
	testfix.Eventually(t, "the slot to come back", func() bool { f, w := queueState(x); return f == 1 && w == 0 })
}
