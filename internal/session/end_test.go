package session

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/store"
)

// gatedStore is a real store whose Gets, once armed, wait until two
// callers are in one: two replicas then both load a session's metadata
// before either deletes it, the race of two DELETEs at once made certain.
type gatedStore struct {
	store.Store
	armed atomic.Bool
	mu    sync.Mutex
	in    int
	both  chan struct{}
}

func (g *gatedStore) Get(ctx context.Context, id string) (*store.Metadata, error) {
	m, err := g.Store.Get(ctx, id)
	if g.armed.Load() {
		g.mu.Lock()
		if g.in++; g.in == 2 {
			close(g.both)
		}
		g.mu.Unlock()
		<-g.both
	}
	return m, err
}

// TestConcurrentDeletesEndASessionOnce: two replicas that do not hold a
// session end it at once (a client's DELETE retried, say). Only the one
// whose Store delete found it reports the end (the audit trail's one
// session_closed) and ends its backend session.
func TestConcurrentDeletesEndASessionOnce(t *testing.T) {
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	st := &gatedStore{Store: store.NewMemory(), both: make(chan struct{})}
	var ended atomic.Int64
	hooked := func(o *ManagerOptions) {
		o.Factory.hooks = append(o.Factory.hooks, Hooks{
			StoredSessionEnded: func(context.Context, string, string, EndReason) { ended.Add(1) },
		})
	}
	urls := map[string]string{"web": web.URL}
	holder := newReplica(t, st, nil, urls)
	b, c := newReplica(t, st, hooked, urls), newReplica(t, st, hooked, urls)
	id := create(t, holder, "alice")
	count(t, holder, id, "alice", "web_counter")

	st.armed.Store(true)
	var wg sync.WaitGroup
	for _, r := range []*replica{b, c} {
		wg.Go(func() {
			if err := r.DeleteFor(context.Background(), id, "alice"); err != nil {
				t.Errorf("DeleteFor: %v", err)
			}
		})
	}
	wg.Wait()
	if n := ended.Load(); n != 1 {
		t.Errorf("the end was reported %d times, want once", n)
	}
	if n := web.Stats.Deletes(); n != 1 {
		t.Errorf("the backend got %d DELETEs, want 1", n)
	}
}
