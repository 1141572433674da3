package store

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/redistest"
)

// subscribe runs s.Subscribe until the test ends and returns the channel
// of deleted IDs it delivers.
func subscribe(t *testing.T, s *Redis) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ids := make(chan string, 16)
	var wg sync.WaitGroup
	wg.Go(func() { s.Subscribe(ctx, func(id string) { ids <- id }) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return ids
}

// waitSubscribers waits until n clients are subscribed to the deletion
// channel, so a following Delete is sure to reach them.
func waitSubscribers(t *testing.T, addr string, n int64) {
	t.Helper()
	raw := redis.NewClient(&redis.Options{Addr: addr})
	defer raw.Close()
	for {
		got, err := raw.PubSubNumSub(t.Context(), "vmcp:deleted").Result()
		if err == nil && got["vmcp:deleted"] == n {
			return
		}
		if t.Context().Err() != nil {
			t.Fatalf("waiting for %d subscribers: %v", n, t.Context().Err())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func receive(t *testing.T, ids <-chan string, want string) {
	t.Helper()
	select {
	case got := <-ids:
		if got != want {
			t.Fatalf("deletion of %q delivered, want %q", got, want)
		}
	case <-t.Context().Done():
		t.Fatal("deletion never delivered")
	}
}

func TestRedisDeleteReachesEveryReplica(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := redistest.Start(t)
	a := newTestRedis(t, srv.Addr, RedisOptions{TTL: time.Hour})
	b := newTestRedis(t, srv.Addr, RedisOptions{TTL: time.Hour})
	fromA, fromB := subscribe(t, a), subscribe(t, b)
	waitSubscribers(t, srv.Addr, 2)

	if err := a.Create(ctx, sampleMetadata(testID)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Delete(ctx, testID); err != nil {
		t.Fatal(err)
	}
	receive(t, fromB, testID) // the replica that may hold the runtime
	receive(t, fromA, testID) // and the deleting replica itself
	if _, err := b.Get(ctx, testID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get on the other replica after Delete: got %v, want ErrNotFound", err)
	}
}

func TestRedisDownThenBack(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := redistest.Start(t)
	s := newTestRedis(t, srv.Addr, RedisOptions{TTL: time.Hour, TouchEvery: time.Nanosecond})
	if err := s.Create(ctx, sampleMetadata(otherID)); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	m := sampleMetadata(testID)
	for name, op := range map[string]func() error{
		"Create": func() error { return s.Create(ctx, m) },
		"Get":    func() error { _, err := s.Get(ctx, testID); return err },
		"Update": func() error { return s.Update(ctx, m) },
		"Delete": func() error { _, err := s.Delete(ctx, testID); return err },
		"Touch":  func() error { return s.Touch(ctx, testID) },
		"Ping":   func() error { return s.Ping(ctx) },
	} {
		err := op()
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s with Redis down: got %v, want ErrUnavailable", name, err)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, testID) {
			t.Errorf("%s error leaks a secret: %q", name, msg)
		}
	}

	// The same store value recovers on its own (the restarted server is
	// empty). Not necessarily at once: after as many failed dials as its
	// pool has connections, go-redis fails fast and probes once a second,
	// which with one P (10 connections) the outage above reaches.
	srv.Restart()
	fixture.Eventually(t, "Ping to succeed after Redis restarted", func() bool { return s.Ping(ctx) == nil })
	if err := s.Create(ctx, m); err != nil {
		t.Fatalf("Create after restart: %v", err)
	}
	if _, err := s.Get(ctx, testID); err != nil {
		t.Fatalf("Get after restart: %v", err)
	}
}

func TestRedisSubscribeReconnectsAfterRestart(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := redistest.Start(t)
	a := newTestRedis(t, srv.Addr, RedisOptions{})
	b := newTestRedis(t, srv.Addr, RedisOptions{})
	fromB := subscribe(t, b)
	waitSubscribers(t, srv.Addr, 1)

	srv.Stop()
	srv.Restart()
	waitSubscribers(t, srv.Addr, 1) // b has subscribed again by itself

	if _, err := a.Delete(ctx, testID); err != nil {
		t.Fatal(err)
	}
	receive(t, fromB, testID)
}

func TestRedisSubscribeReturnsOnClose(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s := newTestRedis(t, srv.Addr, RedisOptions{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Subscribe(context.Background(), func(string) {})
	}()
	waitSubscribers(t, srv.Addr, 1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-t.Context().Done():
		t.Fatal("Subscribe still running after Close")
	}
}

// Not parallel: goleak sees every goroutine in the process.
func TestRedisLeavesNoGoroutines(t *testing.T) {
	srv := redistest.Start(t)
	t.Run("use and close", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		ctx := t.Context()
		s, err := NewRedis(RedisOptions{Address: srv.Addr, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		subCtx, cancel := context.WithCancel(ctx)
		ids := make(chan string, 1)
		var wg sync.WaitGroup
		wg.Go(func() { s.Subscribe(subCtx, func(id string) { ids <- id }) })
		waitSubscribers(t, srv.Addr, 1)
		if err := s.Create(ctx, sampleMetadata(testID)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Delete(ctx, testID); err != nil {
			t.Fatal(err)
		}
		receive(t, ids, testID)
		cancel()
		wg.Wait()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	})
}
