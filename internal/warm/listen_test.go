package warm_test

import (
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/session"
	"github.com/vmcp/vmcp/internal/warm"
)

// closed reports whether s has closed.
func closed(s *session.Session) bool {
	select {
	case <-s.Done():
		return true
	default:
		return false
	}
}

// A session a listen stream holds serves its identity's calls, in
// preference to a more recently used idle one, so that the calls' backend
// state is where the stream listens. It is not reaped while held, however
// long idle, and is once released and idle for IdleTimeout.
func TestListenHoldLeavesTheSessionToCalls(t *testing.T) {
	leakCheck(t)
	web := startHTTP(t, "web")
	clock := fixture.NewClock(time.Unix(1_700_000_000, 0))
	p := newPool(t, warm.Options{Factory: newFactory(session.FactoryOptions{}, httpBackend(t, "web", web.URL)),
		IdleTimeout: time.Minute, Now: clock.Now, SweepInterval: time.Hour})
	ctx, id := caller("alice")
	listened, stopListening, err := p.Listen(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.Sessions != 1 || st.Listened != 1 || st.Busy != 0 {
		t.Errorf("stats while listening = %+v, want 1 session, listened, not busy", st)
	}
	call, release, err := p.Acquire(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if call != listened {
		t.Fatal("a call of the listening identity got another session than the listen stream's")
	}
	if n, err := counter(ctx, call, "web_counter"); err != nil || n != 1 {
		t.Fatalf("web_counter = %d, %v", n, err)
	}
	// A second call while the first runs gets another session; released
	// last, it is the most recently used idle one.
	other, releaseOther, err := p.Acquire(ctx, id)
	if err != nil || other == listened {
		t.Fatalf("an overlapping call: same session %v, err %v; want a second session", other == listened, err)
	}
	release()
	clock.Advance(time.Second)
	releaseOther()
	if n := acquireCount(t, p, ctx, id, "web_counter"); n != 2 {
		t.Errorf("web_counter = %d, want 2: the listen stream's session, not the more recent idle one", n)
	}

	clock.Advance(2 * time.Minute)
	if n := p.Sweep(); n != 1 || closed(listened) || !closed(other) {
		t.Fatalf("Sweep closed %d (listened closed: %v), want 1: the other session only", n, closed(listened))
	}
	stopListening()
	stopListening() // a second release does nothing
	if st := p.Stats(); st.Sessions != 1 || st.Listened != 0 || st.Busy != 0 {
		t.Errorf("stats after the stream = %+v, want 1 idle session", st)
	}
	if n := p.Sweep(); n != 0 {
		t.Errorf("Sweep right after the stream ended closed %d, want 0", n)
	}
	clock.Advance(time.Minute)
	if n := p.Sweep(); n != 1 || !closed(listened) {
		t.Errorf("Sweep after IdleTimeout closed %d, want the listen stream's session", n)
	}
	if st := p.Stats(); st.Misses != 2 || st.Reaped != 2 {
		t.Errorf("stats = %+v, want 2 misses, 2 reaped", st)
	}
}

// A reload does not retire a session a listen stream holds: the next call
// is served by it, brought to the new lineup, with its backend state.
func TestListenedSessionFollowsAReload(t *testing.T) {
	leakCheck(t)
	r := newReloadRig(t)
	p := r.pool
	ctx, id := caller("alice")
	listened, stopListening, err := p.Listen(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	defer stopListening()
	acquireCount(t, p, ctx, id, "web_counter")
	r.addMore(ctx)
	p.RetireAll()

	call, release, err := p.Acquire(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if call != listened {
		t.Fatal("after the reload a call got another session than the listen stream's")
	}
	if n, err := counter(ctx, call, "web_counter"); err != nil || n != 2 {
		t.Errorf("web_counter = %d, %v; want 2 (the backend state kept)", n, err)
	}
	if n, err := counter(ctx, call, "more_counter"); err != nil || n != 1 {
		t.Errorf("more_counter = %d, %v; want 1 (the reload's backend)", n, err)
	}
	if st := p.Stats(); st.Sessions != 1 || st.Misses != 1 {
		t.Errorf("stats = %+v, want 1 session after 1 miss", st)
	}
}
