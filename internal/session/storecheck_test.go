package session

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/redistest"
	"github.com/vmcp/vmcp/internal/store"
)

func newRedisStore(t *testing.T, addr string) *store.Redis {
	t.Helper()
	r, err := store.NewRedis(store.RedisOptions{Address: addr, TTL: time.Minute, TouchEvery: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestRedisOutage(t *testing.T) {
	rs := redistest.Start(t)
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	urls := map[string]string{"web": web.URL}
	logs := &fixture.Buffer{}
	withLogs := func(o *ManagerOptions) { o.Logger = slog.New(slog.NewTextHandler(logs, nil)) }
	a := newReplica(t, newRedisStore(t, rs.Addr), withLogs, urls)
	b := newReplica(t, newRedisStore(t, rs.Addr), nil, urls)
	held := create(t, a, "")
	count(t, a, held, "", "web_counter")

	rs.Stop()
	ctx := context.Background()
	if _, err := a.Create(ctx, CreateRequest{ProtocolVersion: "2025-06-18"}); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("create with Redis down = %v, want store.ErrUnavailable", err)
	}
	if n := web.Stats.Initializes(); n != 1 {
		t.Errorf("a refused initialize still reached the backend (%d initializes)", n)
	}
	// The replica holding the runtime keeps serving it.
	for _, want := range []string{"2", "3", "4"} {
		if got, _ := count(t, a, held, "", "web_counter"); got != want {
			t.Fatalf("held session during the outage: counter = %s, want %s", got, want)
		}
	}
	// A replica that would have to load it says the store is down, not
	// that the session is gone.
	if _, err := b.GetFor(ctx, held, ""); !errors.Is(err, store.ErrUnavailable) || errors.Is(err, ErrNotFound) {
		t.Errorf("takeover with Redis down = %v, want store.ErrUnavailable", err)
	}
	if n := strings.Count(logs.String(), `msg="session store unavailable`); n != 1 {
		t.Errorf("the outage was logged %d times, want once:\n%s", n, logs)
	}

	rs.Restart() // an empty Redis: the stored sessions are gone
	waitFor(t, "new sessions accepted again", func() bool {
		s, err := b.Create(ctx, CreateRequest{ProtocolVersion: "2025-06-18"})
		return err == nil && s != nil
	})
	// The restarted Redis forgot the held session; its holder notices on
	// use, closes it, and answers not found.
	waitFor(t, "the forgotten session ended", func() bool {
		_, err := a.GetFor(ctx, held, "")
		return errors.Is(err, ErrNotFound)
	})
	waitFor(t, "its backend session closed", func() bool { return web.Stats.SessionsClosed() >= 1 })
	if !strings.Contains(logs.String(), "session store reachable again") {
		t.Errorf("the end of the outage was not logged:\n%s", logs)
	}
}
