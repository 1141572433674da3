// Package maxprocs runs an I/O-bound process on one P while one is enough,
// and gives it Go's default GOMAXPROCS back as soon as its load needs more.
//
// A proxy spends most of each call waiting on sockets. With spare Ps, Go's
// scheduler wakes and parks extra threads around nearly every wait; on a
// small or virtualized host those context switches cost more CPU than the
// proxying does. One P removes them, but also caps the process at one core
// and, on a crowded machine, at one thread's share of the CPUs. So Run
// watches two signals and lifts the cap when either says one P is not
// enough: the process's CPU use, and how long runnable goroutines wait to
// run (which grows when the one thread is starved, however little CPU the
// process gets).
package maxprocs

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"time"
)

// Options configure Run. A zero field takes the default shown.
type Options struct {
	// Interval is the time between two samples. Default 250ms.
	Interval time.Duration
	// Up is the CPU use, in cores, at one P that restores Go's default.
	// Default 0.5: beyond it, calls start to queue for the one P.
	Up float64
	// UpWait is the 90th percentile of goroutine scheduling latency that
	// restores Go's default. Default 5ms: under a proxy's steady load on
	// one P it stays well under 1ms.
	UpWait time.Duration
	// Down and DownWait are the CPU use and scheduling latency under which
	// the process goes back to one P, once DownAfter samples in a row stay
	// under both. Defaults 0.25 cores, 1ms and 8 (two seconds): well apart
	// from Up and UpWait, so it does not flap.
	Down      float64
	DownWait  time.Duration
	DownAfter int
	// Logger receives a Debug record for each change. Default: discard.
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.Interval <= 0 {
		o.Interval = 250 * time.Millisecond
	}
	if o.Up <= 0 {
		o.Up = 0.5
	}
	if o.UpWait <= 0 {
		o.UpWait = 5 * time.Millisecond
	}
	if o.Down <= 0 {
		o.Down = 0.25
	}
	if o.DownWait <= 0 {
		o.DownWait = time.Millisecond
	}
	if o.DownAfter <= 0 {
		o.DownAfter = 8
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Enabled reports whether Run would adapt GOMAXPROCS in this process: not
// when the GOMAXPROCS environment variable fixes it, when Go's default is
// already one P, or when the system gives no CPU time to measure.
func Enabled() bool {
	_, ok := processCPU()
	return ok && os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) > 1
}

// Run adapts GOMAXPROCS until ctx ends, then restores Go's default. It
// starts at one P. It returns at once, changing nothing, unless Enabled.
// Only one Run may be active in a process; GOMAXPROCS is process-wide.
func Run(ctx context.Context, o Options) {
	if !Enabled() {
		return
	}
	o.defaults()
	g := governor{up: o.Up, upWait: o.UpWait, down: o.Down, downWait: o.DownWait, downAfter: o.DownAfter, one: true}
	setProcs(1)
	defer setProcs(0)
	t := time.NewTicker(o.Interval)
	defer t.Stop()
	var waits schedWaits
	waits.p90() // the baseline for the first interval
	last, _ := processCPU()
	lastAt := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		c, _ := processCPU()
		busy := float64(c-last) / float64(now.Sub(lastAt))
		last, lastAt = c, now
		wait := waits.p90()
		if g.observe(busy, wait) {
			n := 1
			if !g.one {
				n = 0
			}
			setProcs(n)
			o.Logger.Debug("GOMAXPROCS adapted", "gomaxprocs", runtime.GOMAXPROCS(0), "cores_busy", busy, "sched_wait_p90", wait)
		}
	}
}

// governor decides between one P and Go's default from samples of the
// process's CPU use and scheduling latency.
type governor struct {
	up, down         float64
	upWait, downWait time.Duration
	downAfter        int
	one              bool // running on one P
	low              int  // samples in a row under down and downWait, at the default
}

// observe takes one sample, CPU use in cores and the 90th percentile of
// scheduling latency, and reports whether the P count changes: to the
// default when one P is busy beyond up or its goroutines wait beyond
// upWait, back to one after downAfter samples in a row under both down
// and downWait.
func (g *governor) observe(busy float64, wait time.Duration) bool {
	if g.one {
		if busy >= g.up || wait >= g.upWait {
			g.one, g.low = false, 0
			return true
		}
		return false
	}
	if busy >= g.down || wait >= g.downWait {
		g.low = 0
		return false
	}
	g.low++
	if g.low < g.downAfter {
		return false
	}
	g.one, g.low = true, 0
	return true
}

// setProcs sets GOMAXPROCS to n, or to Go's default when n is 0.
func setProcs(n int) {
	if n == 0 {
		runtime.SetDefaultGOMAXPROCS()
		return
	}
	runtime.GOMAXPROCS(n)
}
