package warm_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/session"
	"github.com/vmcp/vmcp/internal/warm"
)

// Many requests of one caller cost one initialize at the backend, and the
// backend state (a counter) carries over from request to request.
func TestRequestsOfOneCallerReuseOneWarmSession(t *testing.T) {
	leakCheck(t)
	web := startHTTP(t, "web")
	p := newPool(t, warm.Options{Factory: newFactory(session.FactoryOptions{}, httpBackend(t, "web", web.URL))})
	ctx, id := caller("alice")
	const requests = 50
	for i := 1; i <= requests; i++ {
		if n := acquireCount(t, p, ctx, id, "web_counter"); n != i {
			t.Fatalf("request %d: counter = %d, want %d (the same backend session)", i, n, i)
		}
	}
	if n := web.Stats.Initializes(); n != 1 {
		t.Errorf("backend initializes = %d for %d requests, want 1", n, requests)
	}
	st := p.Stats()
	if st.Sessions != 1 || st.Misses != 1 || st.Hits != requests-1 || st.Busy != 0 {
		t.Errorf("stats = %+v, want 1 session, 1 miss, %d hits, none busy", st, requests-1)
	}
}

// Concurrent requests of one caller stay within MaxPerIdentity sessions,
// hence initializes, whatever the burst.
func TestConcurrentRequestsStayWithinTheIdentityBound(t *testing.T) {
	leakCheck(t)
	web := startHTTP(t, "web")
	const bound, workers, each = 3, 16, 10
	p := newPool(t, warm.Options{Factory: newFactory(session.FactoryOptions{}, httpBackend(t, "web", web.URL)), MaxPerIdentity: bound})
	ctx, id := caller("alice")
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for range workers {
		wg.Go(func() {
			for range each {
				s, release, err := p.Acquire(ctx, id)
				if err != nil {
					errs <- err
					return
				}
				_, err = counter(ctx, s, "web_counter")
				release()
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := p.Stats()
	if n := web.Stats.Initializes(); n > bound || n != int64(st.Sessions) {
		t.Errorf("backend initializes = %d, pooled sessions = %d, want the same and at most %d", n, st.Sessions, bound)
	}
	if got := st.Hits + st.Shared + st.Misses; got != workers*each {
		t.Errorf("acquires counted = %d, want %d (%+v)", got, workers*each, st)
	}
	if st.Busy != 0 || st.Building != 0 {
		t.Errorf("after the burst: %+v, want nothing busy or building", st)
	}
}

// Two callers never share a session: each has its own backend state.
func TestIdentitiesNeverShareASession(t *testing.T) {
	leakCheck(t)
	web := startHTTP(t, "web")
	p := newPool(t, warm.Options{Factory: newFactory(session.FactoryOptions{}, httpBackend(t, "web", web.URL))})
	actx, alice := caller("alice")
	bctx, bob := caller("bob")
	seen := map[*session.Session]string{}
	for i := 1; i <= 3; i++ {
		for _, c := range []struct {
			ctx context.Context
			id  string
		}{{actx, alice}, {bctx, bob}, {context.Background(), warm.Anonymous}} {
			s, release, err := p.Acquire(c.ctx, c.id)
			if err != nil {
				t.Fatal(err)
			}
			if owner, ok := seen[s]; ok && owner != c.id {
				t.Fatalf("a session of %q was handed to %q", owner, c.id)
			}
			seen[s] = c.id
			if s.Identity() != c.id {
				t.Errorf("session bound to %q, handed to %q", s.Identity(), c.id)
			}
			n, err := counter(c.ctx, s, "web_counter")
			release()
			if err != nil || n != i {
				t.Fatalf("%q's request %d: counter = %d, %v; want %d (its own state)", c.id, i, n, err, i)
			}
		}
	}
	if n := web.Stats.Initializes(); n != 3 {
		t.Errorf("backend initializes = %d, want 3 (one per identity)", n)
	}
	if st := p.Stats(); st.Identities != 3 || st.Sessions != 3 {
		t.Errorf("stats = %+v, want 3 identities with 1 session each", st)
	}
}

// An identity that is not the caller's is refused: a front end mistake
// must not hand out another caller's session.
func TestAcquireRefusesAnotherCallersIdentity(t *testing.T) {
	t.Parallel()
	web := startHTTP(t, "web")
	p := newPool(t, warm.Options{Factory: newFactory(session.FactoryOptions{}, httpBackend(t, "web", web.URL))})
	actx, _ := caller("alice")
	_, bob := caller("bob")
	for _, c := range []struct {
		name string
		ctx  context.Context
		id   string
	}{
		{"verified caller, other subject", actx, bob},
		{"verified caller, anonymous", actx, warm.Anonymous},
		{"anonymous caller, a subject", context.Background(), bob},
	} {
		if _, _, err := p.Acquire(c.ctx, c.id); !errors.Is(err, warm.ErrIdentityMismatch) {
			t.Errorf("%s: err = %v, want ErrIdentityMismatch", c.name, err)
		}
	}
	if n := web.Stats.Initializes(); n != 0 {
		t.Errorf("backend initializes = %d, want 0", n)
	}
}

// At the per-identity bound a busy session is shared; at the total bound
// another identity's idle session is evicted; with nothing to evict the
// pool says so.
func TestBounds(t *testing.T) {
	leakCheck(t)
	web := startHTTP(t, "web")
	p := newPool(t, warm.Options{Factory: newFactory(session.FactoryOptions{}, httpBackend(t, "web", web.URL)), MaxPerIdentity: 1, MaxSessions: 2})
	actx, alice := caller("alice")
	bctx, bob := caller("bob")
	cctx, carol := caller("carol")

	a1, releaseA1, err := p.Acquire(actx, alice)
	if err != nil {
		t.Fatal(err)
	}
	a2, releaseA2, err := p.Acquire(actx, alice) // alice is at her bound: shared
	if err != nil || a2 != a1 {
		t.Fatalf("second acquire at the identity bound: %v, same session %v; want the busy one shared", err, a2 == a1)
	}
	b, releaseB, err := p.Acquire(bctx, bob)
	if err != nil || b == a1 {
		t.Fatalf("bob: %v, got alice's session: %v", err, b == a1)
	}
	// Both sessions are busy and the pool is full: carol cannot be served.
	if _, _, err := p.Acquire(cctx, carol); !errors.Is(err, warm.ErrExhausted) {
		t.Fatalf("carol with the pool full and busy: err = %v, want ErrExhausted", err)
	}
	releaseB()
	// Bob's idle session makes room for carol.
	c, releaseC, err := p.Acquire(cctx, carol)
	if err != nil || c == b {
		t.Fatalf("carol after bob released: %v, got bob's session: %v", err, c == b)
	}
	fixture.Eventually(t, "evicted session closed", func() bool {
		select {
		case <-b.Done():
			return true
		default:
			return false
		}
	})
	if n, err := counter(cctx, c, "web_counter"); err != nil || n != 1 {
		t.Errorf("carol's counter = %d, %v; want 1 (a new backend session, not bob's)", n, err)
	}
	releaseA1()
	releaseA2()
	releaseA2() // a second call does nothing
	releaseC()
	st := p.Stats()
	want := warm.Stats{Sessions: 2, Identities: 2, MaxSessions: 2, MaxPerIdentity: 1, Hits: 0, Shared: 1, Misses: 2, Evicted: 1, Refused: 1}
	if st != want {
		t.Errorf("stats = %+v\nwant    %+v", st, want)
	}
	if n := web.Stats.Deletes(); n != 1 {
		t.Errorf("backend DELETEs = %d, want 1 (the evicted session)", n)
	}
}

// Idle sessions are reaped: each backend session ends exactly once, and a
// stdio child is gone and reaped.
func TestIdleSessionsAreReapedOnce(t *testing.T) {
	leakCheck(t)
	web := startHTTP(t, "web")
	clock := fixture.NewClock(time.Unix(1_700_000_000, 0))
	f := newFactory(session.FactoryOptions{}, httpBackend(t, "web", web.URL), stdioBackend(t, "notes"))
	p := newPool(t, warm.Options{Factory: f, IdleTimeout: time.Minute, Now: clock.Now, SweepInterval: time.Hour})
	actx, alice := caller("alice")
	bctx, bob := caller("bob")
	acquireCount(t, p, actx, alice, "notes_counter")
	clock.Advance(30 * time.Second)
	acquireCount(t, p, bctx, bob, "notes_counter")
	if pids, _ := fixture.Children("vmcp-example"); len(pids) != 2 {
		t.Fatalf("stdio children = %v, want 2", pids)
	}

	clock.Advance(31 * time.Second) // alice idle 61s, bob 31s
	if n := p.Sweep(); n != 1 {
		t.Fatalf("Sweep closed %d, want 1 (alice's)", n)
	}
	if n := web.Stats.Deletes(); n != 1 {
		t.Errorf("backend DELETEs after reaping alice's = %d, want 1", n)
	}
	if pids, _ := fixture.Children("vmcp-example"); len(pids) != 1 {
		t.Errorf("stdio children after reaping = %v, want 1", pids)
	}
	clock.Advance(time.Minute)
	p.Sweep()
	if st := p.Stats(); st.Sessions != 0 || st.Identities != 0 || st.Reaped != 2 {
		t.Errorf("stats = %+v, want empty, 2 reaped", st)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if n := web.Stats.Deletes(); n != 2 {
		t.Errorf("backend DELETEs = %d, want 2: one per backend session, none again on Close", n)
	}
	if pids, zombies := fixture.Children("vmcp-example"); len(pids) != 0 {
		t.Errorf("stdio children left: %v (zombies %v)", pids, zombies)
	}
}

// The reaper goroutine reaps on its own, and Close stops it.
func TestReaperRunsUntilClose(t *testing.T) {
	leakCheck(t)
	web := startHTTP(t, "web")
	clock := fixture.NewClock(time.Unix(1_700_000_000, 0))
	p := warm.New(warm.Options{Factory: newFactory(session.FactoryOptions{}, httpBackend(t, "web", web.URL)),
		IdleTimeout: time.Minute, Now: clock.Now, SweepInterval: time.Millisecond})
	ctx, id := caller("alice")
	acquireCount(t, p, ctx, id, "web_counter")
	clock.Advance(time.Minute)
	fixture.Eventually(t, "idle session reaped", func() bool { return web.Stats.Deletes() == 1 })
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

// Close closes every pooled session once, the ones requests hold
// included, and a second Close changes nothing.
func TestCloseClosesEverySessionOnce(t *testing.T) {
	leakCheck(t)
	web := startHTTP(t, "web")
	p := warm.New(warm.Options{Factory: newFactory(session.FactoryOptions{}, httpBackend(t, "web", web.URL))})
	ids := []string{"alice", "bob", "carol"}
	for _, sub := range ids {
		ctx, id := caller(sub)
		acquireCount(t, p, ctx, id, "web_counter")
	}
	ctx, id := caller("dave")
	s, release, err := p.Acquire(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := counter(ctx, s, "web_counter"); !errors.Is(err, session.ErrClosed) {
		t.Errorf("call on a held session after Close: %v, want session.ErrClosed", err)
	}
	release() // after Close: does nothing
	if _, _, err := p.Acquire(ctx, id); !errors.Is(err, warm.ErrClosed) {
		t.Errorf("Acquire after Close: %v, want ErrClosed", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if n := web.Stats.Deletes(); n != int64(len(ids)+1) {
		t.Errorf("backend DELETEs = %d, want %d: each backend session ended once", n, len(ids)+1)
	}
}

// Under contention from several identities over a small pool, a session
// never serves two identities, the bounds hold, and every backend session
// initialized is ended exactly once by the time the pool is closed.
func TestContentionAcrossIdentities(t *testing.T) {
	leakCheck(t)
	web := startHTTP(t, "web")
	const maxSessions, perIdentity, identities, workers, each = 3, 2, 4, 3, 8
	p := warm.New(warm.Options{Factory: newFactory(session.FactoryOptions{}, httpBackend(t, "web", web.URL)),
		MaxPerIdentity: perIdentity, MaxSessions: maxSessions})
	var mu sync.Mutex
	owner := map[*session.Session]string{}
	var wg sync.WaitGroup
	errs := make(chan error, identities*workers*each)
	for i := range identities {
		ctx, id := caller(string(rune('a' + i)))
		for range workers {
			wg.Go(func() {
				for range each {
					s, release, err := p.Acquire(ctx, id)
					if errors.Is(err, warm.ErrExhausted) {
						continue // the pool is full of busy sessions: a 503, fine here
					}
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					if o, ok := owner[s]; ok && o != id {
						errs <- errors.New("a session of " + o + " was handed to " + id)
					}
					owner[s] = id
					mu.Unlock()
					if st := p.Stats(); st.Sessions+st.Building > maxSessions {
						errs <- errors.New("pool over its bound")
					}
					_, err = counter(ctx, s, "web_counter")
					release()
					if err != nil {
						errs <- err
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := p.Stats()
	t.Logf("stats: %+v", st)
	if builds := st.Misses + st.Evicted; int64(builds) != web.Stats.Initializes() {
		t.Errorf("builds %d (%+v), backend initializes %d: want equal", builds, st, web.Stats.Initializes())
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if i, d := web.Stats.Initializes(), web.Stats.Deletes(); i != d {
		t.Errorf("backend sessions initialized %d, ended %d: want each ended once", i, d)
	}
}
