package maxprocs

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/fixture"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestGovernor(t *testing.T) {
	t.Parallel()
	// Each step is a sample of cores busy and whether the governor is on
	// one P after it. Up 0.5, Down 0.25, DownAfter 3.
	type step struct {
		busy float64
		one  bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"stays on one P while light", []step{{0.1, true}, {0.49, true}, {0, true}}},
		{"busy one P restores the default", []step{{0.2, true}, {0.5, false}}},
		{"light samples in a row go back to one P", []step{{0.9, false}, {0.1, false}, {0.2, false}, {0.24, true}}},
		{"a busy sample restarts the count", []step{{0.9, false}, {0.1, false}, {0.1, false}, {0.3, false}, {0.1, false}, {0.1, false}, {0.1, true}}},
		{"between the thresholds holds either state", []step{{0.4, true}, {0.6, false}, {0.4, false}, {0.4, false}, {0.4, false}, {0.4, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := governor{up: 0.5, down: 0.25, downAfter: 3, one: true}
			for i, s := range tt.steps {
				was := g.one
				changed := g.observe(s.busy)
				if g.one != s.one || changed != (was != g.one) {
					t.Fatalf("step %d (busy %.2f): one=%v changed=%v, want one=%v", i, s.busy, g.one, changed, s.one)
				}
			}
		})
	}
}

func TestEnabledHonoursGOMAXPROCS(t *testing.T) {
	t.Setenv("GOMAXPROCS", "2")
	if Enabled() {
		t.Fatal("Enabled with GOMAXPROCS set in the environment")
	}
}

// TestRunAdaptsToLoad runs the governor on this test process: it must drop
// to one P while idle, restore the default under a CPU-bound goroutine, go
// back to one P when that stops, and restore the default when cancelled.
// Its thresholds sit far from both an idle process and a spinning one, so
// that other tests loading the machine do not blur them.
func TestRunAdaptsToLoad(t *testing.T) {
	if !Enabled() {
		t.Skip("GOMAXPROCS cannot adapt here: set in the environment, one CPU, or no CPU time")
	}
	def := runtime.GOMAXPROCS(0)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { Run(ctx, Options{Interval: 20 * time.Millisecond, Up: 0.3, Down: 0.1, DownAfter: 3}) })
	defer func() {
		cancel()
		wg.Wait()
		if got := runtime.GOMAXPROCS(0); got != def {
			t.Errorf("GOMAXPROCS after Run returned = %d, want the default %d", got, def)
		}
	}()
	procs := func(n int) func() bool { return func() bool { return runtime.GOMAXPROCS(0) == n } }

	fixture.Eventually(t, "one P while idle", procs(1))

	var stop atomic.Bool
	var spin sync.WaitGroup
	spin.Go(func() {
		for !stop.Load() {
		}
	})
	fixture.Eventually(t, "the default under load", procs(def))
	stop.Store(true)
	spin.Wait()

	fixture.Eventually(t, "one P again once idle", procs(1))
}
