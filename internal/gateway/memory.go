package gateway

import (
	"context"
	"runtime/debug"
	"time"
)

// Memory release after a burst of sessions.
const (
	releaseEvery   = 5 * time.Second
	releaseMinDrop = 100 // sessions ended since the peak
)

// releaseMemory returns freed heap to the operating system once a burst of
// sessions has ended. Go's background scavenger gives memory back slowly,
// and collects a quiet process's garbage only every two minutes, so a
// gateway whose sessions come in spikes would hold its peak RSS for
// minutes. Every interval it samples the live session count; see
// releasePolicy for when it calls debug.FreeOSMemory, a garbage collection
// that is rare by construction. It runs until ctx ends.
func (g *Gateway) releaseMemory(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var p releasePolicy
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if p.observe(g.manager.Len()) {
			// Twice: the first collection moves sync.Pool contents to
			// their victim caches; the second frees them.
			debug.FreeOSMemory()
			debug.FreeOSMemory()
		}
	}
}

// releasePolicy decides, from samples of the live session count, when to
// release memory: once at least releaseMinDrop sessions have ended since
// the peak, fewer than half remain, and the count has stopped falling. A
// release in the middle of a wind-down would leave the garbage of the
// sessions that end after it until Go's next collection.
type releasePolicy struct {
	peak, prev int
}

// observe takes the next sample and reports whether to release now.
func (p *releasePolicy) observe(n int) bool {
	falling := n < p.prev
	p.prev = n
	p.peak = max(p.peak, n)
	if falling || p.peak-n < releaseMinDrop || n >= p.peak/2 {
		return false
	}
	p.peak = n
	return true
}
