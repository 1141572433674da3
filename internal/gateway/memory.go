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
// sessions has ended. Go's background scavenger gives memory back slowly, so
// a gateway whose sessions come in spikes would hold its peak RSS for
// minutes. Every interval it compares the live session count with the peak
// seen since the last release; when at least releaseMinDrop sessions have
// ended and fewer than half remain, it calls debug.FreeOSMemory, a garbage
// collection that is rare by construction. It runs until ctx ends.
func (g *Gateway) releaseMemory(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	peak := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n := g.manager.Len()
		peak = max(peak, n)
		if peak-n >= releaseMinDrop && n < peak/2 {
			// Twice: the first collection moves sync.Pool contents to
			// their victim caches; the second frees them.
			debug.FreeOSMemory()
			debug.FreeOSMemory()
			peak = n
		}
	}
}
