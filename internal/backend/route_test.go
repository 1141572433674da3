package backend

import (
	"context"
	"encoding/json"
	"testing"
)

// answerAfter is a connect-time Handler that answers a request only once
// released, reporting whether the request was still live then.
type answerAfter struct {
	release chan struct{}
	live    chan bool
}

func (h *answerAfter) Notify(context.Context, string, json.RawMessage) {}

func (h *answerAfter) Request(ctx context.Context, method string, _ json.RawMessage) (json.RawMessage, error) {
	<-h.release
	h.live <- ctx.Err() == nil
	return json.RawMessage(`{}`), nil
}

// TestRequestOutsideACallOutlivesTheCallPendingMeanwhile: a stdio
// backend's request that no call claims (the call pending when it came
// carries no handler, as vmcp's own listing at session start does not) is
// the session's, and does not end when that call does.
func TestRequestOutsideACallOutlivesTheCallPendingMeanwhile(t *testing.T) {
	t.Parallel()
	h := &answerAfter{release: make(chan struct{}), live: make(chan bool, 1)}
	c, _ := connect(t, newStdioFixture(t, &logBuffer{}, 0), ConnectOptions{Handler: h})
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := callTool(ctx, c, "ping_later", nil, nil); err != nil {
		t.Fatal(err)
	}
	cancel() // the call is over, as a listing's context is
	close(h.release)
	if !<-h.live {
		t.Error("the backend's request was cancelled with the call that was pending when it came")
	}
}
