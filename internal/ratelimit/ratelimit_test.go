package ratelimit

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vmcp/vmcp/internal/redistest"
)

// clock is a fake clock for the in-process limiter.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestMemoryBucket(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1000, 0)}
	m := NewMemory(c.now)
	b := []Bucket{{Key: "a", Limit: Limit{Rate: 2, Burst: 3}}}
	ctx := context.Background()
	for i := range 3 {
		if ok, _, _ := m.Take(ctx, b); !ok {
			t.Fatalf("take %d of the burst refused", i)
		}
	}
	ok, wait, _ := m.Take(ctx, b)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("over the burst: ok=%v wait=%v, want refused with 500ms", ok, wait)
	}
	c.add(500 * time.Millisecond)
	if ok, _, _ := m.Take(ctx, b); !ok {
		t.Fatal("refused after refill")
	}
}

// TestMemoryAllOrNone: a take refused by one bucket costs nothing in the
// others.
func TestMemoryAllOrNone(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1000, 0)}
	m := NewMemory(c.now)
	ctx := context.Background()
	wide := Bucket{Key: "wide", Limit: Limit{Rate: 1, Burst: 2}}
	narrow := Bucket{Key: "narrow", Limit: Limit{Rate: 1, Burst: 1}}
	if ok, _, _ := m.Take(ctx, []Bucket{wide, narrow}); !ok {
		t.Fatal("first take refused")
	}
	if ok, _, _ := m.Take(ctx, []Bucket{wide, narrow}); ok {
		t.Fatal("narrow bucket should refuse")
	}
	if ok, _, _ := m.Take(ctx, []Bucket{wide}); !ok {
		t.Fatal("wide bucket lost a token to a refused take")
	}
}

func TestRedisSharedBucket(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	// Three limiters, as three replicas would have, on one server.
	var ls []*Redis
	for range 3 {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr})
		t.Cleanup(func() { c.Close() })
		ls = append(ls, NewRedis(c, "test:"))
	}
	// One token an hour: nothing refills while the test runs.
	b := []Bucket{{Key: "{id}:rule", Limit: Limit{Rate: 1.0 / 3600, Burst: 4}}}
	allowed := 0
	var wait time.Duration
	for i := range 12 {
		ok, w, err := ls[i%3].Take(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			allowed++
		} else {
			wait = w
		}
	}
	if allowed != 4 {
		t.Fatalf("allowed %d takes across 3 limiters, want the burst of 4", allowed)
	}
	if wait < 59*time.Minute || wait > time.Hour {
		t.Fatalf("wait = %v, want about an hour", wait)
	}
	// All or none, on Redis too.
	other := Bucket{Key: "{id}:other", Limit: Limit{Rate: 1.0 / 3600, Burst: 1}}
	if ok, _, _ := ls[0].Take(ctx, []Bucket{other, b[0]}); ok {
		t.Fatal("take from an empty bucket succeeded")
	}
	if ok, _, _ := ls[1].Take(ctx, []Bucket{other}); !ok {
		t.Fatal("the refused take consumed a token of the other bucket")
	}
}

func TestRedisDown(t *testing.T) {
	t.Parallel()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	ok, _, err := NewRedis(c, "x:").Take(context.Background(), []Bucket{{Key: "k", Limit: Limit{Rate: 1, Burst: 1}}})
	if ok || err == nil {
		t.Fatalf("ok=%v err=%v, want an error", ok, err)
	}
}
