package backend

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/vmcp/vmcp/internal/jsonrpc"
)

// panickingHandler is a fault injector: a handler with a bug.
type panickingHandler struct{}

func (panickingHandler) Notify(context.Context, string, json.RawMessage) { panic("handler bug") }
func (panickingHandler) Request(context.Context, string, json.RawMessage) (json.RawMessage, error) {
	panic("handler bug")
}

// A handler that panics on the reader's goroutine costs that message, not
// the process and not the backend: the call that caused the notifications
// completes and the client keeps working.
func TestPanickingHandlerDoesNotTakeDownTheBackend(t *testing.T) {
	t.Parallel()
	logs := &logBuffer{}
	c, _ := connect(t, newStdioFixture(t, logs, 0), ConnectOptions{Handler: panickingHandler{}})
	out, err := callTool(context.Background(), c, "progress", nil, map[string]any{"progressToken": "p1"})
	if err != nil || out != "done" {
		t.Fatalf("progress = %q, %v", out, err)
	}
	if got := mustCall(t, c, "echo", map[string]string{"text": "still here"}); got != "still here" {
		t.Fatalf("echo after the panic = %q", got)
	}
	log := logs.String()
	for _, want := range []string{"level=ERROR", "recovered from a panic", "backend=local", "handler bug", "panic_test.go"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

// A handler that panics while answering a backend's request answers it
// with an internal error.
func TestPanickingRequestHandlerAnswersAnError(t *testing.T) {
	t.Parallel()
	c := newClient("local", 0, (&logBuffer{}).logger(), panickingHandler{})
	defer c.cancel()
	m := &jsonrpc.Message{ID: json.RawMessage(`7`), Method: "roots/list"}
	out := string(c.answer(context.Background(), panickingHandler{}, m))
	if !strings.Contains(out, `"code":-32603`) || !strings.Contains(out, "roots/list") {
		t.Fatalf("answer = %s", out)
	}
}
