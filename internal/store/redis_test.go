package store

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/redistest"
)

// Session IDs in these tests look like real ones, so a leak into an error
// message is caught by a plain substring check.
const (
	testID  = "sess-5d4c1a7e9b2f4e0c8a6d3b1f"
	otherID = "sess-0e9f8d7c6b5a4b3c2d1e0f9a"
)

func newTestRedis(t *testing.T, addr string, opts RedisOptions) *Redis {
	t.Helper()
	opts.Address = addr
	r, err := NewRedis(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// rawClient is a plain go-redis client for looking behind the store's back.
func rawClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func sampleMetadata(id string) *Metadata {
	return &Metadata{
		ID: id, Created: time.Unix(100, 0).UTC(), LastSeen: time.Unix(200, 0).UTC(),
		Identity: "sha256:abc", ProtocolVersion: "2025-06-18",
		ClientInfo:         json.RawMessage(`{"name":"client","version":"1"}`),
		ClientCapabilities: json.RawMessage(`{"sampling":{}}`),
		Backends: []Backend{
			{Name: "files", SessionID: "backend-secret-1", Capabilities: json.RawMessage(`{"tools":{}}`), ProtocolVersion: "2025-06-18"},
			{Name: "browser"},
		},
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// countHook counts the commands a client sends, by name.
type countHook struct{ pexpire atomic.Int64 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "pexpire" {
			h.pexpire.Add(1)
		}
		return next(ctx, cmd)
	}
}

func TestRedisCreateIfAbsentUpdateIfPresent(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := redistest.Start(t)
	s := newTestRedis(t, srv.Addr, RedisOptions{TTL: time.Hour})
	raw := rawClient(t, srv.Addr)

	m := sampleMetadata(testID)
	if err := s.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, sampleMetadata(testID)); !errors.Is(err, ErrExists) {
		t.Fatalf("second Create: got %v, want ErrExists", err)
	}
	got, err := s.Get(ctx, testID)
	if err != nil {
		t.Fatal(err)
	}
	if mustJSON(t, got) != mustJSON(t, m) {
		t.Fatalf("Get returned\n%s\nwant\n%s", mustJSON(t, got), mustJSON(t, m))
	}

	got.Backends[0].SessionID = "backend-secret-2"
	if err := s.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	if again, err := s.Get(ctx, testID); err != nil || again.Backends[0].SessionID != "backend-secret-2" {
		t.Fatalf("after Update: %+v, %v", again, err)
	}

	if existed, err := s.Delete(ctx, testID); err != nil || !existed {
		t.Fatalf("Delete = %v, %v; want it found", existed, err)
	}
	if existed, err := s.Delete(ctx, testID); err != nil || existed {
		t.Fatalf("deleting an absent session = %v, %v; want not found, no error", existed, err)
	}
	if _, err := s.Get(ctx, testID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: got %v, want ErrNotFound", err)
	}
	// A late write from another replica must not bring the session back.
	if err := s.Update(ctx, got); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Update after Delete: got %v, want ErrNotFound", err)
	}
	if n := raw.Exists(ctx, "vmcp:session:"+testID).Val(); n != 0 {
		t.Fatal("Update after Delete recreated the key")
	}
	if _, err := s.Get(ctx, otherID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of unknown ID: got %v, want ErrNotFound", err)
	}
}

func TestRedisStoresJSONUnderPrefix(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := redistest.Start(t)
	a := newTestRedis(t, srv.Addr, RedisOptions{KeyPrefix: "tenant-a:"})
	b := newTestRedis(t, srv.Addr, RedisOptions{KeyPrefix: "tenant-b:"})
	raw := rawClient(t, srv.Addr)

	m := sampleMetadata(testID)
	if err := a.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	stored, err := raw.Get(ctx, "tenant-a:session:"+testID).Bytes()
	if err != nil {
		t.Fatalf("raw GET of the expected key: %v", err)
	}
	var back Metadata
	if err := json.Unmarshal(stored, &back); err != nil {
		t.Fatalf("stored value is not Metadata JSON: %v", err)
	}
	if mustJSON(t, &back) != mustJSON(t, m) {
		t.Fatalf("stored\n%s\nwant\n%s", stored, mustJSON(t, m))
	}
	// Prefixes separate deployments sharing one Redis.
	if _, err := b.Get(ctx, testID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("other prefix sees the session: %v", err)
	}
	if err := b.Create(ctx, m); err != nil {
		t.Fatalf("same ID under another prefix: %v", err)
	}
}

func TestRedisTTLSlidesOnUpdateAndTouch(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := redistest.Start(t)
	raw := rawClient(t, srv.Addr)
	clock := fixture.NewClock(time.Unix(1000, 0))
	s := newTestRedis(t, srv.Addr, RedisOptions{TTL: time.Hour, TouchEvery: time.Minute})
	s.now = clock.Now
	key := "vmcp:session:" + testID

	m := sampleMetadata(testID)
	if err := s.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	if ttl := raw.PTTL(ctx, key).Val(); ttl <= 59*time.Minute || ttl > time.Hour {
		t.Fatalf("PTTL after Create = %v, want about 1h", ttl)
	}

	// Shrink the TTL behind the store's back; each use must restore it.
	shrink := func() {
		t.Helper()
		if err := raw.PExpire(ctx, key, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
	}
	shrink()
	if err := s.Update(ctx, m); err != nil {
		t.Fatal(err)
	}
	if ttl := raw.PTTL(ctx, key).Val(); ttl <= 59*time.Minute {
		t.Fatalf("PTTL after Update = %v, want slid back to about 1h", ttl)
	}

	shrink()
	clock.Advance(time.Minute) // past the throttle set by Update
	if err := s.Touch(ctx, testID); err != nil {
		t.Fatal(err)
	}
	if ttl := raw.PTTL(ctx, key).Val(); ttl <= 59*time.Minute {
		t.Fatalf("PTTL after Touch = %v, want slid back to about 1h", ttl)
	}
}

func TestRedisWithoutTTLKeysDoNotExpire(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := redistest.Start(t)
	raw := rawClient(t, srv.Addr)
	s := newTestRedis(t, srv.Addr, RedisOptions{})
	m := sampleMetadata(testID)
	if err := s.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := s.Touch(ctx, testID); err != nil {
		t.Fatal(err)
	}
	if ttl := raw.PTTL(ctx, "vmcp:session:"+testID).Val(); ttl != -1 {
		t.Fatalf("PTTL = %v, want -1 (no expiry)", ttl)
	}
}

func TestRedisTouchIsThrottledPerSession(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := redistest.Start(t)
	clock := fixture.NewClock(time.Unix(1000, 0))
	s := newTestRedis(t, srv.Addr, RedisOptions{TTL: time.Hour, TouchEvery: time.Minute})
	s.now = clock.Now
	hook := &countHook{}
	s.client.AddHook(hook)

	for _, id := range []string{testID, otherID} {
		if err := s.Create(ctx, sampleMetadata(id)); err != nil {
			t.Fatal(err)
		}
	}
	// Create has just set the TTL: touching now would be a wasted write.
	if err := s.Touch(ctx, testID); err != nil || hook.pexpire.Load() != 0 {
		t.Fatalf("Touch right after Create: err %v, %d PEXPIRE sent, want 0", err, hook.pexpire.Load())
	}

	clock.Advance(time.Minute)
	for range 3 {
		if err := s.Touch(ctx, testID); err != nil {
			t.Fatal(err)
		}
	}
	if n := hook.pexpire.Load(); n != 1 {
		t.Fatalf("3 Touches within TouchEvery sent %d PEXPIRE, want 1", n)
	}
	// The throttle is per session.
	if err := s.Touch(ctx, otherID); err != nil {
		t.Fatal(err)
	}
	if n := hook.pexpire.Load(); n != 2 {
		t.Fatalf("Touch of another session: %d PEXPIRE in total, want 2", n)
	}

	clock.Advance(time.Minute)
	if err := s.Touch(ctx, testID); err != nil {
		t.Fatal(err)
	}
	if n := hook.pexpire.Load(); n != 3 {
		t.Fatalf("Touch after TouchEvery: %d PEXPIRE in total, want 3", n)
	}

	// A refresh that finds the session gone says so.
	if err := s.Touch(ctx, "sess-never-created-0000000000"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Touch of unknown session: got %v, want ErrNotFound", err)
	}
}

func TestRedisTouchMapIsPruned(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := redistest.Start(t)
	clock := fixture.NewClock(time.Unix(1000, 0))
	s := newTestRedis(t, srv.Addr, RedisOptions{TTL: time.Hour, TouchEvery: time.Minute})
	s.now = clock.Now
	for i := range 50 {
		id := testID + string(rune('a'+i%26)) + string(rune('a'+i/26))
		if err := s.Create(ctx, sampleMetadata(id)); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(2 * time.Minute)
	if err := s.Touch(ctx, testID+"aa"); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	n := len(s.touched)
	s.mu.Unlock()
	if n != 1 {
		t.Fatalf("throttle map holds %d sessions after they all went quiet, want 1", n)
	}
}

func TestRedisPasswordNeverInErrors(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := redistest.Start(t)
	const password = "correct-horse-battery-staple"
	if err := rawClient(t, srv.Addr).ConfigSet(ctx, "requirepass", password).Err(); err != nil {
		t.Fatal(err)
	}

	good := newTestRedis(t, srv.Addr, RedisOptions{Password: password})
	if err := good.Create(ctx, sampleMetadata(testID)); err != nil {
		t.Fatalf("with the right password: %v", err)
	}

	const wrong = "wrong-horse-battery-staple"
	bad := newTestRedis(t, srv.Addr, RedisOptions{Password: wrong})
	_, err := bad.Get(ctx, testID)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("with a wrong password: got %v, want ErrUnavailable", err)
	}
	if msg := err.Error(); strings.Contains(msg, wrong) || strings.Contains(msg, testID) {
		t.Fatalf("error leaks a secret: %q", msg)
	}
}

func TestNewRedisRejectsBadOptions(t *testing.T) {
	t.Parallel()
	for name, opts := range map[string]RedisOptions{
		"no address":     {},
		"no port":        {Address: "localhost"},
		"negative ttl":   {Address: "127.0.0.1:6379", TTL: -time.Second},
		"sub-ms ttl":     {Address: "127.0.0.1:6379", TTL: time.Microsecond},
		"negative touch": {Address: "127.0.0.1:6379", TouchEvery: -time.Second},
	} {
		if r, err := NewRedis(opts); err == nil {
			_ = r.Close()
			t.Errorf("%s: NewRedis accepted %+v", name, opts)
		}
	}
}
