package backend

import (
	"context"
	"errors"
	"strings"
	"testing"

	testfix "github.com/vmcp/vmcp/internal/fixture"
)

func TestBudget(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := NewBudget(8, "server.maxBufferedResponseBytes")
	a, c := &reservation{b: b}, &reservation{b: b}
	if err := a.reserve(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if err := c.reserve(ctx, 3); err != nil {
		t.Fatal(err)
	}
	// a waits to grow: c may still free room.
	grown := make(chan error, 1)
	go func() { grown <- a.reserve(ctx, 6) }()
	testfix.Eventually(t, "the grower to queue", func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.growers) == 1 })
	// c growing too would leave both waiting for ever: it fails at once,
	// naming the setting.
	err := c.reserve(ctx, 6)
	if !errors.Is(err, ErrOverBudget) || !strings.Contains(err.Error(), "server.maxBufferedResponseBytes") {
		t.Fatalf("second grower: %v, want ErrOverBudget naming the setting", err)
	}
	c.release()
	if err := <-grown; err != nil {
		t.Fatalf("first grower after the other released: %v", err)
	}
	// More than the whole budget never fits.
	d := &reservation{b: b}
	if err := d.reserve(ctx, 9); !errors.Is(err, ErrOverBudget) {
		t.Fatalf("reserve beyond the budget: %v", err)
	}
	// A first reservation waits for room, and gives up with its context.
	cctx, cancel := context.WithCancel(ctx)
	waited := make(chan error, 1)
	go func() { waited <- d.reserve(cctx, 4) }()
	testfix.Eventually(t, "the waiter to queue", func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.waiters) == 1 })
	cancel()
	if err := <-waited; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	go func() { waited <- d.reserve(ctx, 4) }()
	testfix.Eventually(t, "the waiter to queue", func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.waiters) == 1 })
	a.release()
	a.release() // released exactly once, however often called
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	d.release()
	if now, peak := b.Usage(); now != 0 || peak != 6 {
		t.Errorf("usage %d, peak %d; want 0 and 6", now, peak)
	}
}

// TestHoldKeepsTheBudgetUntilReleased: with a Hold in its context, a
// call's reservation outlives the call until the caller is done with the
// result.
func TestHoldKeepsTheBudgetUntilReleased(t *testing.T) {
	t.Parallel()
	budget := NewBudget(1<<20, "server.maxBufferedResponseBytes")
	_, c := filesClientWith(t, HTTPOptions{Budget: budget})
	ctx, hold := WithHold(context.Background())
	if _, err := callTool(ctx, c, "echo", map[string]string{"text": strings.Repeat("x", 100<<10)}, nil); err != nil {
		t.Fatal(err)
	}
	if now, _ := budget.Usage(); now < 100<<10 {
		t.Errorf("%d bytes reserved while the result is held, want at least the answer", now)
	}
	hold.Release()
	hold.Release()
	if now, _ := budget.Usage(); now != 0 {
		t.Errorf("%d bytes reserved after Release", now)
	}
	// Without a Hold the call gives it back as it returns.
	if _, err := callTool(context.Background(), c, "echo", map[string]string{"text": "x"}, nil); err != nil {
		t.Fatal(err)
	}
	if now, _ := budget.Usage(); now != 0 {
		t.Errorf("%d bytes reserved after a call without a Hold", now)
	}
}

// filesClientWith is filesClient with options.
func filesClientWith(t *testing.T, opts HTTPOptions) (*httpFixture, Client) {
	t.Helper()
	f := startHTTP(t, modeSSEResponses)
	opts.Name, opts.URL = "files", f.url()
	x := NewStreamableHTTP(opts)
	t.Cleanup(func() { x.Close() })
	c, _ := connect(t, x, ConnectOptions{})
	return f, c
}
