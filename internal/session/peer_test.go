package session

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/vmcp/vmcp/internal/jsonrpc"
)

// recordingPeer is a client end that answers every request.
type recordingPeer struct{ requests []string }

func (p *recordingPeer) Notify(context.Context, string, json.RawMessage) {}
func (p *recordingPeer) Request(_ context.Context, method string, _ json.RawMessage) (json.RawMessage, error) {
	p.requests = append(p.requests, method)
	return json.RawMessage(`{}`), nil
}

func TestRelayRefusesRequestsTheClientCannotServe(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		method string
		caps   string
		relay  bool
	}{
		{"sampling/createMessage", `{}`, false},
		{"sampling/createMessage", `{"sampling":{}}`, true},
		{"elicitation/create", `{"sampling":{}}`, false},
		{"elicitation/create", `{"elicitation":{"form":{}}}`, true},
		{"roots/list", `{}`, false},
		{"roots/list", `{"roots":{"listChanged":true}}`, true},
		{"tools/call", `{"sampling":{}}`, false}, // not a client method at all
	} {
		p := &recordingPeer{}
		s := &Session{clientCap: parseClientCaps(json.RawMessage(tc.caps)), ready: make(chan struct{})}
		s.markReady()
		s.SetPeer(p)
		s.ClientInitialized()
		s.PeerOpened()
		r := &relay{s: s, backend: "b"}
		_, err := r.Request(context.Background(), tc.method, json.RawMessage(`{}`))
		if tc.relay {
			if err != nil || len(p.requests) != 1 {
				t.Errorf("%s with caps %s: err %v, relayed %v; want relayed", tc.method, tc.caps, err, p.requests)
			}
			continue
		}
		if e := jsonrpc.AsError(err); e == nil || e.Code != jsonrpc.CodeMethodNotFound || len(p.requests) != 0 {
			t.Errorf("%s with caps %s: err %v, relayed %v; want -32601 and nothing relayed", tc.method, tc.caps, err, p.requests)
		}
	}
	// Pings from a backend are answered by vmcp itself.
	s := &Session{}
	if res, err := (&relay{s: s}).Request(context.Background(), "ping", nil); err != nil || string(res) != "{}" {
		t.Errorf("ping = %s, %v", res, err)
	}
}
