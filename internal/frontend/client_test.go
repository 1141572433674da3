package frontend

import "testing"

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
