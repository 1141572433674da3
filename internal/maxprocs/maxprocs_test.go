package maxprocs

import (
	"context"
	"math"
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
	// Each step is a sample (cores busy, scheduling latency p90) and
	// whether the governor is on one P after it. Up 0.5 or 5ms; Down 0.25
	// and 1ms, 3 samples in a row.
	const ms = time.Millisecond
	type step struct {
		busy float64
		wait time.Duration
		one  bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"stays on one P while light", []step{{0.1, 0, true}, {0.49, 4 * ms, true}, {0, 0, true}}},
		{"busy one P restores the default", []step{{0.2, 0, true}, {0.5, 0, false}}},
		{"starved one P restores the default", []step{{0.1, 0, true}, {0.1, 5 * ms, false}}},
		{"light samples in a row go back to one P", []step{{0.9, 0, false}, {0.1, 0, false}, {0.2, 0, false}, {0.24, 0, true}}},
		{"a busy sample restarts the count", []step{{0.9, 0, false}, {0.1, 0, false}, {0.1, 0, false}, {0.3, 0, false}, {0.1, 0, false}, {0.1, 0, false}, {0.1, 0, true}}},
		{"a slow sample restarts the count", []step{{0.9, 0, false}, {0.1, 0, false}, {0.1, 0, false}, {0.1, ms, false}, {0.1, 0, false}, {0.1, 0, false}, {0.1, 0, true}}},
		{"between the thresholds holds either state", []step{{0.4, 2 * ms, true}, {0.6, 0, false}, {0.4, 0, false}, {0.1, 2 * ms, false}, {0.4, 0, false}, {0.4, 0, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := governor{up: 0.5, upWait: 5 * ms, down: 0.25, downWait: ms, downAfter: 3, one: true}
			for i, s := range tt.steps {
				was := g.one
				changed := g.observe(s.busy, s.wait)
				if g.one != s.one || changed != (was != g.one) {
					t.Fatalf("step %d (busy %.2f, wait %v): one=%v changed=%v, want one=%v", i, s.busy, s.wait, g.one, changed, s.one)
				}
			}
		})
	}
}

func TestQuantile(t *testing.T) {
	t.Parallel()
	inf := math.Inf(1)
	// Buckets in seconds: [0,1ms) [1ms,10ms) [10ms,100ms) [100ms,+Inf).
	buckets := []float64{0, 0.001, 0.01, 0.1, inf}
	tests := []struct {
		name         string
		counts, prev []uint64
		want         time.Duration
	}{
		{"no samples", []uint64{0, 0, 0, 0}, []uint64{0, 0, 0, 0}, 0},
		{"nothing new since prev", []uint64{5, 5, 0, 0}, []uint64{5, 5, 0, 0}, 0},
		{"all fast", []uint64{10, 0, 0, 0}, []uint64{0, 0, 0, 0}, time.Millisecond},
		{"90th in the second bucket", []uint64{85, 10, 5, 0}, []uint64{0, 0, 0, 0}, 10 * time.Millisecond},
		{"only the interval counts", []uint64{100, 10, 0, 0}, []uint64{100, 0, 0, 0}, 10 * time.Millisecond},
		{"unbounded bucket reports its lower edge", []uint64{1, 0, 0, 9}, []uint64{0, 0, 0, 0}, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := quantile(buckets, tt.counts, tt.prev, 0.9); got != tt.want {
				t.Errorf("quantile = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSchedWaitsSeesQueuedGoroutines checks that the runtime's histogram is
// read: goroutines released together onto busy Ps must wait to run.
func TestSchedWaitsSeesQueuedGoroutines(t *testing.T) {
	t.Parallel()
	var w schedWaits
	w.p90()
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range 200 * runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			<-start
			for end := time.Now().Add(200 * time.Microsecond); time.Now().Before(end); {
			}
		})
	}
	close(start)
	wg.Wait()
	if got := w.p90(); got <= 0 {
		t.Errorf("p90 scheduling latency after queueing goroutines = %v, want > 0", got)
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
// that other tests loading the machine do not blur them: a starved spinner
// still moves it up by the wait signal, and going down needs only low CPU
// use. TestGovernor covers both signals exactly.
func TestRunAdaptsToLoad(t *testing.T) {
	if !Enabled() {
		t.Skip("GOMAXPROCS cannot adapt here: set in the environment, one CPU, or no CPU time")
	}
	def := runtime.GOMAXPROCS(0)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		Run(ctx, Options{Interval: 20 * time.Millisecond, Up: 0.3, UpWait: 20 * time.Millisecond, Down: 0.1, DownWait: time.Second, DownAfter: 3})
	})
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
