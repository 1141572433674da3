package frontend

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/vmcp/vmcp/internal/jsonrpc"
)

func TestRetireBoundsReplay(t *testing.T) {
	t.Parallel()
	c := newClientSession(8)
	live := c.newStream() // a long call, still in flight
	var done []*stream
	for range maxStreams + 4 {
		st := c.newStream()
		st.finish([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
		c.retire(st, true, 0)
		done = append(done, st)
	}
	if c.stream(live.id) != live {
		t.Error("a stream in flight was dropped from replay")
	}
	for i, st := range done {
		want := i >= len(done)-maxStreams
		if got := c.stream(st.id) != nil; got != want {
			t.Errorf("finished stream %d of %d kept = %v, want %v", i+1, len(done), got, want)
		}
	}

	plain := c.newStream()
	plain.finish([]byte(`{}`))
	c.retire(plain, false, 0)
	if c.stream(plain.id) != nil {
		t.Error("a stream answered as plain JSON, which the client holds no ID of, was kept")
	}
	if c.stream(done[len(done)-1].id) == nil {
		t.Error("retiring a plain JSON stream dropped a kept one")
	}
}

// A request to the client still pending when its call ends is cancelled on
// the stream, and whoever waits for its answer hears so at once.
func TestAbandonEndsTheWait(t *testing.T) {
	t.Parallel()
	c := newClientSession(8)
	st := c.newStream()
	errs := make(chan error, 1)
	go func() {
		_, err := c.request(context.Background(), st, false, "roots/list", nil)
		errs <- err
	}()
	for {
		evs, _, wake := st.pending(0)
		if len(evs) > 0 {
			break
		}
		<-wake
	}
	c.abandon(st)
	if err := <-errs; err == nil || !strings.Contains(err.Error(), "has ended") {
		t.Errorf("waiting request ended with %v, want the call's end", err)
	}
	evs, _, _ := st.pending(0)
	if last := string(evs[len(evs)-1].data); !strings.Contains(last, "notifications/cancelled") {
		t.Errorf("last event on the stream %s, want the cancellation", last)
	}
}

// A request that belongs to no call, carried by a call's stream, does not
// end with that call: the client's answer still reaches it.
func TestOutlivingRequestSurvivesItsCarrier(t *testing.T) {
	t.Parallel()
	c := newClientSession(8)
	st := c.newStream()
	type answer struct {
		res json.RawMessage
		err error
	}
	done := make(chan answer, 1)
	go func() {
		res, err := (&callPeer{c: c, st: st}).RequestOutliving(context.Background(), "roots/list", nil)
		done <- answer{res, err}
	}()
	var req struct{ ID json.RawMessage }
	for {
		evs, _, wake := st.pending(0)
		if len(evs) > 0 {
			json.Unmarshal(evs[0].data, &req)
			break
		}
		<-wake
	}
	c.abandon(st) // the carrying call ends
	c.deliver(&jsonrpc.Message{ID: req.ID, Result: json.RawMessage(`{"roots":[]}`)})
	if a := <-done; a.err != nil || string(a.res) != `{"roots":[]}` {
		t.Errorf("request = %s, %v; want the client's answer", a.res, a.err)
	}
}
